"""Reading gold and prediction files (JSON lines, optionally gzipped)."""
from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Iterator, Optional


def read_jsonl(path: str | Path) -> Iterator[dict]:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def read_predictions(path: str | Path) -> tuple[dict[str, Optional[str]], dict[str, float]]:
    """(id → text or None, id → keep_prob for the rows that carry one)."""
    outputs: dict[str, Optional[str]] = {}
    keep_probs: dict[str, float] = {}
    for row in read_jsonl(path):
        outputs[str(row["id"])] = row.get("text")
        if row.get("keep_prob") is not None:
            keep_probs[str(row["id"])] = float(row["keep_prob"])
    return outputs, keep_probs
