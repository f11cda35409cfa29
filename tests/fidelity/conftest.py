"""The fidelity tier: our prompt ids against the original ProX inference's, rebuilt in .venv-fidelity."""
import shutil
from pathlib import Path

import pytest

from tests.fidelity.paths import FIDELITY_PYTHON, HUB_FILES, LLAMA2_TOKENIZER


def pytest_configure(config):
    config.addinivalue_line("markers", "fidelity: prompt ids against the original ProX stack (make fidelity-venv)")


@pytest.fixture(scope="session")
def llama2_tokenizer() -> Path:
    if not (LLAMA2_TOKENIZER / "tokenizer.model").exists():
        pytest.skip(f"the Llama-2 tokenizer is not at {LLAMA2_TOKENIZER} (see its NOTICE.md; test use only)")
    return LLAMA2_TOKENIZER


@pytest.fixture(scope="session")
def fidelity_python() -> Path:
    if not FIDELITY_PYTHON.exists():
        pytest.skip(f"{FIDELITY_PYTHON} is missing: run `make fidelity-venv` (transformers 4.39.1 from PyPI)")
    return FIDELITY_PYTHON


@pytest.fixture(scope="session")
def hub_layout(tmp_path_factory, llama2_tokenizer) -> Path:
    """A model folder as the released repos ship it (config.json, tokenizer.model, no tokenizer.json)."""
    folder = tmp_path_factory.mktemp("hub-layout")
    for name in HUB_FILES:
        shutil.copy(llama2_tokenizer / name, folder / name)
    (folder / "config.json").write_text('{"model_type": "llama", "max_position_embeddings": 2048}')
    (folder / "generation_config.json").write_text('{"bos_token_id": 1, "eos_token_id": 2}')
    return folder


@pytest.fixture(scope="session")
def save_pretrained_layout(tmp_path_factory, llama2_tokenizer, hub_layout) -> Path:
    """What transformers 5's save_pretrained writes for the Llama-2 tokenizer: tokenizer.json, no tokenizer.model."""
    from transformers import AutoTokenizer

    folder = tmp_path_factory.mktemp("save-pretrained-layout")
    AutoTokenizer.from_pretrained(str(llama2_tokenizer), local_files_only=True).save_pretrained(str(folder))
    shutil.copy(hub_layout / "config.json", folder / "config.json")
    assert not (folder / "tokenizer.model").exists()
    return folder
