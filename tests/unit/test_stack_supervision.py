"""The local stack's supervisor gives up on a child that dies on every start, with its log in the error."""
import sys
import time

import pytest

from prox.cli.stack import MAX_QUICK_EXITS, Child, CrashLoop


def _child(tmp_path, code: str) -> Child:
    return Child("model-server", [sys.executable, "-c", code], {}, tmp_path / "model-server.log")


def _wait_dead(child: Child) -> None:
    child.process.wait(timeout=30)


def test_child_that_dies_on_every_start_is_reported_with_its_log(tmp_path):
    child = _child(tmp_path, "import sys; print('error: --doc-model: no such file'); sys.exit(2)")
    with pytest.raises(CrashLoop) as caught:
        for _ in range(MAX_QUICK_EXITS):
            child.start()
            _wait_dead(child)
            child.record_exit()
    message = str(caught.value)
    assert "model-server" in message and "code 2" in message
    assert "--doc-model: no such file" in message


def test_child_that_ran_for_a_while_before_dying_is_restarted(tmp_path):
    child = _child(tmp_path, "import sys; sys.exit(1)")
    for _ in range(MAX_QUICK_EXITS * 2):
        child.start()
        _wait_dead(child)
        child.started_at = time.monotonic() - 60  # as if it had served for a minute
        child.record_exit()
    assert child.quick_exits == 0
