"""The embedded default refiner: learned line and document scorers that write ProX programs (CPU, numpy)."""
from .writers import HeuristicChunkWriter, HeuristicDocWriter

__all__ = ["HeuristicChunkWriter", "HeuristicDocWriter"]
