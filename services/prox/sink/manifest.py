"""`manifest.jsonl` in the state folder (`PATH.state/`, never among the shards): one JSON line per published shard.

{"file", "kind", "format", "rows", "bytes", "sha256", "offsets": [{"topic", "partition", "first", "last"}],
 "duplicates", "writer", "created_at", "closed_at", "v"}

The line is appended (and fsync'd) *before* the shard is renamed into place, so a crash between the two
leaves a listed shard whose fsync'd temp file the next start publishes (`Storage` + `recover`). A reader
trusts only files listed here (with their checksum); a torn last line from a crash is skipped.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Optional

from ..common.logs import log_event
from .storage import Storage, sha256_file

log = logging.getLogger("prox.sink")


@dataclass
class OffsetRange:
    topic: str
    partition: int
    first: int
    last: int


@dataclass
class ManifestEntry:
    file: str
    kind: str
    format: str
    rows: int
    bytes: int
    sha256: str
    offsets: list[OffsetRange] = field(default_factory=list)
    duplicates: int = 0
    writer: str = ""
    created_at: float = 0.0
    closed_at: float = 0.0
    v: int = 1

    def line(self) -> bytes:
        return (json.dumps(asdict(self), sort_keys=True, separators=(",", ":")) + "\n").encode()

    @classmethod
    def parse(cls, text: str) -> Optional["ManifestEntry"]:
        try:
            data = json.loads(text)
            data["offsets"] = [OffsetRange(**r) for r in data.get("offsets", [])]
            return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
        except (ValueError, TypeError, KeyError):
            return None  # a torn line


class Manifest:
    def __init__(self, storage: Storage):
        self.storage = storage

    def entries(self) -> list[ManifestEntry]:
        text = self.storage.read_manifest().decode("utf-8", "replace")
        return [entry for line in text.splitlines() if line.strip() and (entry := ManifestEntry.parse(line))]

    def append(self, entry: ManifestEntry) -> None:
        self.storage.append_manifest(entry.line())

    def recover(self, stale_after_s: Optional[float] = None) -> dict[str, int]:
        """At start: move an earlier version's manifest and temp files out of the data folder (see
        `Storage.adopt_old_layout`); publish listed shards whose temp file survived a crash (checksum
        verified); delete this writer's unlisted temp files (an unfinished shard: its records were never
        acknowledged and are read again). Another writer's unlisted temp file is deleted only when untouched
        for `stale_after_s` (a live writer's open shard is younger than its age limit; a pod that got a new
        name left it)."""
        adopted = self.storage.adopt_old_layout()
        if any(adopted.values()):
            log_event(log, logging.WARNING, "sink moved an earlier version's manifest and temp files into the "
                      "state folder", service="sink", path=self.storage.url, state=self.storage.state_url, **adopted)
        listed = {entry.file: entry for entry in self.entries()}
        counts = {"rolled_forward": 0, "discarded": 0}
        for name, temp, own in list(self.storage.temp_files()):
            entry = listed.get(name)
            if entry is not None and not self.storage.exists(name):
                if sha256_file(temp) == entry.sha256:
                    self.storage.publish(temp, name)
                    counts["rolled_forward"] += 1
                    continue
            stale = stale_after_s is not None and time.time() - temp.stat().st_mtime > stale_after_s
            if entry is not None or own or stale:
                temp.unlink(missing_ok=True)
                counts["discarded"] += 1
        return counts
