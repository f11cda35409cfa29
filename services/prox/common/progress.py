"""A one-line progress display on stderr (redrawn on a terminal, periodic lines otherwise)."""
from __future__ import annotations

import sys
import time
from typing import Optional


class Progress:
    def __init__(self, label: str, total: Optional[int] = None, every_s: float = 0.5, stream=sys.stderr):
        self.label, self.total, self.every_s, self.stream = label, total, every_s, stream
        self.started = time.monotonic()
        self.last = 0.0
        self.tty = stream.isatty()
        if not self.tty:
            self.every_s = max(every_s, 5.0)

    def update(self, done: int, extra: str = "", force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < self.every_s:
            return
        self.last = now
        elapsed = max(now - self.started, 1e-9)
        if self.total:
            width = 30
            filled = int(width * min(done, self.total) / self.total)
            bar = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total}"
        else:
            bar = f"{done}"
        line = f"{self.label} {bar} {done / elapsed:,.1f}/s {extra}".rstrip()
        self.stream.write(("\r" + line + "\033[K") if self.tty else line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
