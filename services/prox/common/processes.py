"""Child processes that never outlive the command that started them.

Every child gets PR_SET_PDEATHSIG: the kernel kills it when the thread that started it dies, even by SIGKILL
(so a `prox local` or a pytest run that is killed leaves no broker, Triton or service behind). Each child
leads its own process group, so stopping it also reaps what it started (e.g. tritonserver and its stubs).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Optional, Sequence

# Sets PR_SET_PDEATHSIG (1), then becomes the command. A wrapper, not `preexec_fn`: running Python code in a
# forked child of a process with gRPC threads (the Triton client) aborts in gRPC's fork handlers.
_EXEC_DYING_WITH_PARENT = (
    "import ctypes, os, sys; ctypes.CDLL(None).prctl(1, int(sys.argv[2])); "
    "os.getppid() == int(sys.argv[1]) or os._exit(137); os.execvp(sys.argv[3], sys.argv[3:])"
)


def spawn(command: Sequence[str], env: Optional[dict] = None, log_path: Optional[Path] = None,
          on_parent_death: Optional[int] = signal.SIGKILL) -> subprocess.Popen:
    """Start `command` in its own session and process group, its output appended to `log_path`.

    `on_parent_death=None` starts a daemon that outlives this process (`make kafka`)."""
    if on_parent_death is not None:
        command = [sys.executable, "-S", "-c", _EXEC_DYING_WITH_PARENT, str(os.getpid()), str(int(on_parent_death)),
                   *command]
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    try:
        return subprocess.Popen(list(command), env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    finally:
        if log is not subprocess.DEVNULL:
            log.close()


def stop(process: Optional[subprocess.Popen], timeout_s: float = 20.0) -> None:
    """SIGTERM, then SIGKILL after `timeout_s`; then SIGKILL whatever is left of its process group."""
    if process is None:
        return
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    kill_group(process)


def kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
