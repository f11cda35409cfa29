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


def test_a_child_stopped_cleanly_right_after_start_is_no_crash_loop(tmp_path):
    child = _child(tmp_path, "import sys; sys.exit(0)")  # e.g. a model server SIGTERM'd and restarted on purpose
    for _ in range(MAX_QUICK_EXITS * 2):
        child.start()
        _wait_dead(child)
        child.record_exit()
    assert child.quick_exits == 0


def test_a_child_dies_with_the_process_that_started_it(tmp_path):
    """PR_SET_PDEATHSIG: a supervisor killed with SIGKILL leaves no child behind."""
    import os
    import signal
    import subprocess

    script = ("import sys, time; from pathlib import Path; from prox.cli.stack import Child; "
              "c = Child('sleeper', [sys.executable, '-c', 'import time; time.sleep(120)'], {}, Path(sys.argv[1])); "
              "c.start(); print(c.process.pid, flush=True); time.sleep(120)")
    parent = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "sleeper.log")], stdout=subprocess.PIPE,
                              text=True)
    child_pid = int(parent.stdout.readline())
    os.kill(child_pid, 0)  # alive
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _alive(child_pid):
        time.sleep(0.1)
    assert not _alive(child_pid)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"  # a zombie waiting for init counts as gone
    except FileNotFoundError:
        return False
