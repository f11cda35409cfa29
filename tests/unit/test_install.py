"""What `make run` installs: the embedded default needs no torch, transformers or test tools."""
from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def installed_extras(target: str, tmp_path: Path) -> set[str]:
    """The extras every `pip install -e .[...]` of `make -n TARGET` names, on a fresh virtualenv path."""
    plan = subprocess.run(["make", "-n", target, f"VENV={tmp_path / 'venv'}"], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout
    extras = set()
    for found in re.findall(r'pip install -q -e "\.\[([^\]]*)\]"', plan):
        extras.update(found.split(","))
    return extras


def test_make_run_installs_only_the_server_extra(tmp_path):
    assert installed_extras("run", tmp_path) == {"server"}


def test_make_test_installs_the_model_and_test_extras(tmp_path):
    assert {"server", "model", "test"} <= installed_extras("test", tmp_path)


def test_the_embedded_default_runs_with_torch_and_transformers_unimportable():
    """The model server's heuristic path and `prox local`'s modules, with torch and transformers blocked."""
    script = textwrap.dedent("""
        import sys
        for name in ("torch", "transformers", "tokenizers", "sentencepiece"):
            sys.modules[name] = None  # any import of them now raises ImportError
        import prox.cli.main, prox.cli.local, prox.cli.stack, prox.models.server, prox.models.cli
        from prox.models.backends import load_chunk_writer, load_doc_writer
        page = "Menu\\nHome | About\\n" + "A paragraph of real prose about gardens, written for readers. " * 8
        doc = load_doc_writer("heuristic").write([page])[0]
        chunk = load_chunk_writer("heuristic").write([page])[0]
        assert doc.program in ("keep_doc()", "drop_doc()") and chunk.program, (doc, chunk)
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]
