"""Where shards go: a local directory (default) or any fsspec URL, with an atomic publish.

The data folder PATH holds nothing but published shards, so a reader can open the folder itself
(datatrove, `datasets`, polars, pyarrow, duckdb). Everything else lives in the state folder, a sibling
(`PATH.state` by default, `sink.state_path`): the manifest `manifest.jsonl` and, for a local PATH, the
staging folder `tmp/WRITER/` (same filesystem, so the rename stays atomic).

A shard is written and fsync'd under a temporary name in the staging folder (a local `staging_dir` for an
fsspec URL), then published: `os.replace` into the data folder followed by an fsync of it (local), or a
single upload (object stores make an object visible only once its upload completes). Nothing whose name
ends in `.parquet` / `.jsonl.gz` is ever visible before it is complete.

Earlier versions kept `_manifest.jsonl` and `.tmp/` inside PATH; `adopt_old_layout` moves them out at start.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Iterator, Optional

MANIFEST = "manifest.jsonl"
TMP_DIR = "tmp"
TMP_SUFFIX = ".tmp"
STATE_SUFFIX = ".state"
LEGACY_MANIFEST = "_manifest.jsonl"  # inside PATH, before the state folder existed
LEGACY_TMP_DIR = ".tmp"


class LayoutConflict(RuntimeError):
    """An old-layout manifest in PATH and a different one in the state folder: which is right is unknowable."""


def is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


def local_path(url: str) -> Path:
    return Path(url[len("file://"):] if url.startswith("file://") else url)


def state_beside(url: str) -> str:
    """The default state folder of a data folder: its sibling `PATH.state` (never inside it, where folder
    readers would read it)."""
    if is_local(url):
        path = os.path.abspath(local_path(url))
        if path == os.path.dirname(path):
            raise ValueError(f"the sink path {url!r} is a root folder; set sink.state_path")
        return path + STATE_SUFFIX
    scheme, _, rest = url.rstrip("/").partition("://")
    if "/" not in rest:
        raise ValueError(f"the sink path {url!r} has no parent folder to hold its state beside it; "
                         "set sink.state_path")
    return f"{scheme}://{rest}{STATE_SUFFIX}"


def sha256_file(path: str | os.PathLike, chunk: int = 4 * 1024 * 1024) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def fsync_dir(path: str | os.PathLike) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Storage:
    def __init__(self, url: str, writer: str, staging_dir: Optional[str] = None, state_url: Optional[str] = None):
        self.url = url
        self.writer = writer
        self.local = is_local(url)
        self.state_url = state_url or state_beside(url)
        if self.local:
            self.root = local_path(url)
            self.state_root = local_path(self.state_url)
            _check_state_folder(self.root, self.state_root)
            self.tmp_root = self.state_root / TMP_DIR
            self.fs = None
        else:
            import fsspec

            self.fs, self.remote_root = fsspec.core.url_to_fs(url)
            self.remote_root = self.remote_root.rstrip("/")
            self.fs.makedirs(self.remote_root, exist_ok=True)
            self.state_fs, self.remote_state = fsspec.core.url_to_fs(self.state_url)
            self.remote_state = self.remote_state.rstrip("/")
            if (self.remote_state + "/").startswith(self.remote_root + "/"):
                raise ValueError(f"sink.state_path {self.state_url!r} must be outside the data folder {url!r}")
            self.state_fs.makedirs(self.remote_state, exist_ok=True)
            base = Path(staging_dir) if staging_dir else Path(tempfile.gettempdir()) / "prox-sink-staging"
            self.tmp_root = base / hashlib.sha1(url.encode()).hexdigest()[:12]
        self.tmp_dir = self.tmp_root / writer

    # --- names -----------------------------------------------------------------------------
    def temp_path(self, name: str) -> Path:
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        return self.tmp_dir / (name + TMP_SUFFIX)

    def location(self, name: str) -> str:
        return str(self.root / name) if self.local else f"{self.remote_root}/{name}"

    def exists(self, name: str) -> bool:
        return (self.root / name).exists() if self.local else self.fs.exists(self.location(name))

    def listing(self) -> list[str]:
        """Names of the files in the data folder: the published shards."""
        if self.local:
            return sorted(p.name for p in self.root.iterdir() if p.is_file())
        return sorted(Path(p).name for p in self.fs.ls(self.remote_root, detail=False))

    def open_read(self, name: str):
        return open(self.root / name, "rb") if self.local else self.fs.open(self.location(name), "rb")

    # --- publish -----------------------------------------------------------------------------
    def publish(self, temp: Path, name: str) -> None:
        """Make an fsync'd temp file visible under its final name, atomically."""
        if self.local:
            os.replace(temp, self.root / name)
            fsync_dir(self.root)
        else:
            self.fs.put_file(str(temp), self.location(name))
            temp.unlink()

    def temp_files(self) -> Iterator[tuple[str, Path, bool]]:
        """(shard name, temp path, written by this writer) of every temp file under the staging folder."""
        if not self.tmp_root.exists():
            return
        for folder in self.tmp_root.iterdir():
            if folder.is_dir():
                for temp in folder.glob("*" + TMP_SUFFIX):
                    yield temp.name[: -len(TMP_SUFFIX)], temp, folder.name == self.writer

    # --- manifest ----------------------------------------------------------------------------
    def manifest_location(self) -> str:
        return str(self.state_root / MANIFEST) if self.local else f"{self.remote_state}/{MANIFEST}"

    def read_manifest(self) -> bytes:
        if self.local:
            path = self.state_root / MANIFEST
            return path.read_bytes() if path.exists() else b""
        path = self.manifest_location()
        return self.state_fs.cat_file(path) if self.state_fs.exists(path) else b""

    def append_manifest(self, line: bytes) -> None:
        """Append one line durably. Local: O_APPEND + fsync (a torn last line from a crash is terminated
        first). Object store: rewrite the object (one writer per prefix)."""
        assert line.endswith(b"\n")
        if self.local:
            path = self.state_root / MANIFEST
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                size = os.fstat(fd).st_size
                if size:
                    with open(path, "rb") as handle:
                        handle.seek(size - 1)
                        if handle.read(1) != b"\n":
                            line = b"\n" + line
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
            if size == 0:
                fsync_dir(self.state_root)
        else:
            existing = self.read_manifest()
            if existing and not existing.endswith(b"\n"):
                existing += b"\n"
            self.state_fs.pipe_file(self.manifest_location(), existing + line)

    # --- the layout of earlier versions ------------------------------------------------------
    def adopt_old_layout(self) -> dict[str, int]:
        """Move what an earlier version kept inside PATH into the state folder: its staging files first
        (a listed one may still need rolling forward), then `_manifest.jsonl`. Each step can be repeated
        after a crash; nothing is deleted unless an identical copy is already in the state folder."""
        moved = {"old_temp_files": self._adopt_old_temp_files() if self.local else 0}
        moved["old_manifest"] = int(self._adopt_old_manifest())
        return moved

    def _adopt_old_temp_files(self) -> int:
        old_root = self.root / LEGACY_TMP_DIR
        if not old_root.is_dir():
            return 0
        count = 0
        for folder in [p for p in old_root.iterdir() if p.is_dir()]:
            target = self.tmp_root / folder.name
            for temp in folder.glob("*" + TMP_SUFFIX):
                target.mkdir(parents=True, exist_ok=True)
                try:
                    os.replace(temp, target / temp.name)
                except FileNotFoundError:
                    continue  # another writer of this path moved it first
                count += 1
            if target.exists():
                fsync_dir(target)
            _remove_if_empty(folder)
        _remove_if_empty(old_root)
        return count

    def _adopt_old_manifest(self) -> bool:
        old = self.location(LEGACY_MANIFEST)
        if not self.exists(LEGACY_MANIFEST):
            return False
        current = self.read_manifest()
        try:
            with self.open_read(LEGACY_MANIFEST) as handle:
                content = handle.read()
        except FileNotFoundError:
            return False  # another writer of this path moved it first
        if current and current != content:
            raise LayoutConflict(
                f"{old} (written by an earlier version) and {self.manifest_location()} both exist and differ; "
                f"merge them into the second one (keep every line) and remove the first, then start the sink again")
        if self.local:
            if current:
                os.unlink(old)  # an identical copy is already in place
            else:
                os.replace(old, self.state_root / MANIFEST)
                fsync_dir(self.state_root)
            fsync_dir(self.root)
        else:
            if not current:
                self.state_fs.pipe_file(self.manifest_location(), content)
            self.fs.rm_file(old)  # only once the copy is complete: a crash before leaves two equal files
        return True


def _check_state_folder(root: Path, state: Path) -> None:
    """The state folder: outside the data folder (readers read every file in it) and on its filesystem
    (a shard is published by renaming it from the staging folder)."""
    if state.resolve() == root.resolve() or root.resolve() in state.resolve().parents:
        raise ValueError(f"sink.state_path {state} must be outside the data folder {root}")
    root.mkdir(parents=True, exist_ok=True)
    if not state.exists():
        state.mkdir(parents=True)
        fsync_dir(state.parent)
    if os.stat(root).st_dev != os.stat(state).st_dev:
        raise ValueError(f"sink.state_path {state} must be on the same filesystem as {root} "
                         "(shards are published by an atomic rename)")


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass  # not empty: whatever is left there is not ours to delete
