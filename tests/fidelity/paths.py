"""Where the fidelity tier finds the Llama-2 tokenizer (test use only) and the original stack's venv."""
from tests.fixtures.paths import REPO

LLAMA2_TOKENIZER = REPO.parent / "shared" / "llama2-tokenizer"
FIDELITY_PYTHON = REPO / ".venv-fidelity" / "bin" / "python"
HUB_FILES = ("tokenizer.model", "tokenizer_config.json", "special_tokens_map.json")
