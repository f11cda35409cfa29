"""What `prox local` may replace: only what an earlier run wrote.

An output file (`--output`, `--dropped`, `--dlq`) is replaced only when it is missing, empty, or JSON lines of
prox output or dead-letter messages (a run killed mid-line leaves a torn last line). A shards folder, its
state folder and the dropped-shards folders are cleared only when every file in them is the sink's: a
shard listed in a manifest (with its listed size), a manifest, or a staging temp file. Everything is
checked before anything is removed, and before anything is started.
"""
from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path
from typing import Iterable, Mapping, Optional, Union

import msgspec

from prox_proto import DeadLetter, RefinedDocument

from ..sink.manifest import ManifestEntry
from ..sink.settings import ShardSettings, SinkSettings
from ..sink.storage import LEGACY_MANIFEST, LEGACY_TMP_DIR, MANIFEST, TMP_DIR, TMP_SUFFIX

PathLike = Union[str, Path]


class OutputInUse(Exception):
    """An output path holds something no earlier run wrote (the message is one line)."""


def _required_keys(struct) -> frozenset[str]:
    return frozenset(f.encode_name for f in msgspec.inspect.type_info(struct).fields if f.required)


MESSAGE_SHAPES = (_required_keys(RefinedDocument), _required_keys(DeadLetter))


def prepare_outputs(files: Mapping[str, Optional[PathLike]], shards: Optional[Path]) -> None:
    """Check every output (`files`: flag -> path), then clear the earlier run's shard folders."""
    for flag, path in files.items():
        if path is not None:
            check_output_file(Path(path), flag)
    folders = shard_folders(shards) if shards is not None else []
    owned = [sink_files(data, state) for data, state in folders]
    for files_of_folder, (data, state) in zip(owned, folders):
        for path in files_of_folder:
            path.unlink()
        for staging in (data / LEGACY_TMP_DIR, state / TMP_DIR):
            _remove_empty_tree(staging)


# --- output files -----------------------------------------------------------------------------

def check_output_file(path: Path, flag: str) -> None:
    if not path.exists() and not path.is_symlink():
        return
    if path.is_symlink() or not path.is_file():
        raise OutputInUse(f"refusing to replace {path} ({flag}): it is not a regular file; choose another {flag}")
    if not is_earlier_output(path):
        raise OutputInUse(f"refusing to replace {path} ({flag}): it is not an earlier prox local run's output "
                          f"(JSON lines of prox messages); move it away or choose another {flag}")


def is_earlier_output(path: Path) -> bool:
    """Empty, or JSON lines that each have the shape of a refined/dropped or dead-letter message. A torn
    last line (or a cut gzip stream) after at least one whole message is a run killed while writing."""
    opener = gzip.open if path.name.endswith(".gz") else open
    whole = 0
    try:
        with opener(path, "rb") as handle:
            for line in handle:
                if is_message(line):
                    whole += 1
                elif line.strip() and not (whole and _torn(line)):
                    return False
    except EOFError:  # a gzip stream cut short
        return whole > 0
    except (OSError, zlib.error):  # not gzip at all, corrupt, or unreadable
        return False
    return True


def is_message(line: bytes) -> bool:
    try:
        value = msgspec.json.decode(line)
    except msgspec.DecodeError:
        return False
    return isinstance(value, dict) and any(shape <= value.keys() for shape in MESSAGE_SHAPES)


def _torn(line: bytes) -> bool:
    """The start of a message cut by a kill: unterminated (so the last line), an object's start, not JSON."""
    if line.endswith(b"\n") or not line.startswith(b'{"'):
        return False
    try:
        msgspec.json.decode(line)
    except msgspec.DecodeError:
        return True
    return False


# --- shard folders ----------------------------------------------------------------------------

def shard_folders(shards: Path) -> list[tuple[Path, Path]]:
    """(data folder, state folder) of the refined and the dropped shards, by the sink's own rule."""
    settings = SinkSettings(sink=ShardSettings(path=str(shards)))
    return [(shards, Path(settings.state_path())),
            (Path(settings.dropped_path()), Path(settings.dropped_state_path()))]


def sink_files(data: Path, state: Path) -> list[Path]:
    """Every file of a shards folder and its state folder, each one the sink's; OutputInUse otherwise."""
    listed = _listed_sizes([state / MANIFEST, data / LEGACY_MANIFEST], data)
    return (_files_of(data, staging=LEGACY_TMP_DIR, manifest=LEGACY_MANIFEST, listed=listed)
            + _files_of(state, staging=TMP_DIR, manifest=MANIFEST, listed={}))


def _files_of(folder: Path, *, staging: str, manifest: str, listed: dict[str, int]) -> list[Path]:
    if not folder.exists() and not folder.is_symlink():
        return []
    if folder.is_symlink() or not folder.is_dir():
        raise _foreign(folder, folder, "it is not a folder")
    files = []
    for entry in os.scandir(folder):
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False) and entry.name == staging:
            files += _staging_files(folder, path)
        elif not entry.is_file(follow_symlinks=False):
            raise _foreign(folder, path)
        elif entry.name == manifest or listed.get(entry.name) == entry.stat().st_size:
            files.append(path)
        else:
            raise _foreign(folder, path)
    return files


def _staging_files(folder: Path, staging: Path) -> list[Path]:
    """Temp files in STAGING/WRITER/NAME.tmp, nothing else."""
    files = []
    for writer in os.scandir(staging):
        if not writer.is_dir(follow_symlinks=False):
            raise _foreign(folder, Path(writer.path))
        for entry in os.scandir(writer.path):
            if not (entry.is_file(follow_symlinks=False) and entry.name.endswith(TMP_SUFFIX)):
                raise _foreign(folder, Path(entry.path))
            files.append(Path(entry.path))
    return files


def _listed_sizes(manifests: Iterable[Path], data: Path) -> dict[str, int]:
    """shard name -> its size, from the manifests that exist (each must be a sink manifest)."""
    sizes = {}
    for manifest in manifests:
        if not manifest.is_file() or manifest.is_symlink():
            continue
        lines = manifest.read_bytes().decode("utf-8", "replace").split("\n")
        for number, line in enumerate(lines, 1):
            entry = ManifestEntry.parse(line) if line.strip() else None
            if entry is None and line.strip() and number < len(lines):  # the last line may be torn
                raise _foreign(data, manifest, "it is not a sink manifest")
            if entry is not None:
                sizes[entry.file] = entry.bytes
    return sizes


def _foreign(folder: Path, path: Path, why: str = "no earlier prox local run wrote it") -> OutputInUse:
    return OutputInUse(f"refusing to replace {folder}: {path} is not an earlier run's shard or state ({why}); "
                       "move it away or choose another --shards")


def _remove_empty_tree(folder: Path) -> None:
    """Remove `folder` and its subfolders once they are empty (files would make rmdir fail: kept)."""
    if not folder.is_dir() or folder.is_symlink():
        return
    for sub in [Path(e.path) for e in os.scandir(folder) if e.is_dir(follow_symlinks=False)]:
        _remove_empty_tree(sub)
    try:
        folder.rmdir()
    except OSError:
        pass
