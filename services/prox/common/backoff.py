"""Exponential backoff shared by every retry loop (Triton calls, produce retries, batch retries)."""
from __future__ import annotations

import random


class Backoff:
    """Delays initial, 2x, 4x ... capped at maximum, each with jitter in its upper half."""

    def __init__(self, initial_s: float, maximum_s: float, jitter: bool = True):
        self.initial_s, self.maximum_s, self.next_s, self.jitter = initial_s, maximum_s, initial_s, jitter

    def delay(self) -> float:
        delay = self.next_s * (random.uniform(0.5, 1.0) if self.jitter else 1.0)
        self.next_s = min(self.next_s * 2, self.maximum_s)
        return delay

    def reset(self) -> None:
        self.next_s = self.initial_s
