"""Where shards go: a local directory (default) or any fsspec URL, with an atomic publish.

A shard is written and fsync'd under a temporary name in a hidden staging folder (`PATH/.tmp/WRITER/`
for a local directory; a local `staging_dir` for an fsspec URL), then published: `os.replace` into the
directory followed by an fsync of the directory (local), or a single upload (object stores make an object
visible only once its upload completes). Nothing whose name ends in `.parquet` / `.jsonl.gz` is ever
visible before it is complete.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Iterator, Optional

MANIFEST = "_manifest.jsonl"
TMP_DIR = ".tmp"
TMP_SUFFIX = ".tmp"


def is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


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
    def __init__(self, url: str, writer: str, staging_dir: Optional[str] = None):
        self.url = url
        self.writer = writer
        self.local = is_local(url)
        if self.local:
            self.root = Path(url[len("file://"):] if url.startswith("file://") else url)
            self.root.mkdir(parents=True, exist_ok=True)
            self.tmp_root = self.root / TMP_DIR
            self.fs = None
        else:
            import fsspec

            self.fs, self.remote_root = fsspec.core.url_to_fs(url)
            self.remote_root = self.remote_root.rstrip("/")
            self.fs.makedirs(self.remote_root, exist_ok=True)
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
        """Names of the visible files in the directory (shards and the manifest)."""
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
    def read_manifest(self) -> bytes:
        if self.local:
            path = self.root / MANIFEST
            return path.read_bytes() if path.exists() else b""
        path = self.location(MANIFEST)
        return self.fs.cat_file(path) if self.fs.exists(path) else b""

    def append_manifest(self, line: bytes) -> None:
        """Append one line durably. Local: O_APPEND + fsync (a torn last line from a crash is terminated
        first). Object store: rewrite the object (one writer per prefix)."""
        assert line.endswith(b"\n")
        if self.local:
            path = self.root / MANIFEST
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
                fsync_dir(self.root)
        else:
            existing = self.read_manifest()
            if existing and not existing.endswith(b"\n"):
                existing += b"\n"
            self.fs.pipe_file(self.location(MANIFEST), existing + line)
