"""A one-line progress display on stderr (redrawn on a terminal, periodic lines otherwise)."""
from __future__ import annotations

import sys
import time
from typing import Optional


class Progress:
    def __init__(self, label: str, total: Optional[int] = None, every_s: float = 0.5, stream=sys.stderr):
        self.label, self.total, self.every_s, self.stream = label, total, every_s, stream
        self.first: Optional[tuple[float, int]] = None  # (time, done) at the first update: the rate's origin
        self.last = 0.0
        self.tty = stream.isatty()
        if not self.tty:
            self.every_s = max(every_s, 5.0)

    def update(self, done: int, extra: str = "", force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < self.every_s:
            return
        self.last = now
        if self.first is None:  # work done before the display existed must not count as done in no time
            self.first = (now, done)
        if self.total:
            width = 30
            filled = int(width * min(done, self.total) / self.total)
            bar = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total}"
        else:
            bar = f"{done}"
        line = " ".join(part for part in (self.label, bar, self._rate(now, done), extra) if part)
        self.stream.write(("\r" + line + "\033[K") if self.tty else line + "\n")
        self.stream.flush()

    def _rate(self, now: float, done: int) -> str:
        since, done_then = self.first
        return f"{(done - done_then) / (now - since):,.1f}/s" if now > since else ""

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
