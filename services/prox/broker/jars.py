"""The embedded broker's jars: exactly those of `kafka-jars.lock`, each checked against its sha256.

Fetched with Maven (`mvn`, honouring the user's ~/.m2 settings: mirrors, proxies) where it is installed, else
with jgo's pure-Python Maven client; both share the local repository ~/.m2/repository. The lock holds the whole
runtime closure that mvn resolved for deploy/kafka/pom.xml (`scripts/lock_kafka_jars.py`), so no resolution
happens here: a file whose checksum differs is deleted and the fetch fails, naming it.
"""
from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

LOCK = Path(__file__).with_name("kafka-jars.lock")
KAFKA_VERSION = "3.9.1"
VERIFIED_STAMP = ".verified"


class JarProblem(RuntimeError):
    pass


@dataclass(frozen=True)
class LockedJar:
    coordinate: str  # group:artifact:version[:classifier]
    sha256: str

    @property
    def filename(self) -> str:
        _, artifact, version, *classifier = self.coordinate.split(":")
        return f"{artifact}-{version}" + (f"-{classifier[0]}" if classifier else "") + ".jar"


def locked_jars(lock: Path = LOCK) -> list[LockedJar]:
    lines = [line.split() for line in lock.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return [LockedJar(coordinate, digest) for coordinate, digest in lines]


def default_libs() -> Path:
    """Where the jars live unless PROX_KAFKA_LIBS says otherwise: the user's cache, one folder per version."""
    if os.environ.get("PROX_KAFKA_LIBS"):
        return Path(os.environ["PROX_KAFKA_LIBS"])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "prox-stream" / f"kafka-{KAFKA_VERSION}" / "libs"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def ensure_jars(libs: Optional[Path] = None, use_mvn: Optional[bool] = None) -> Path:
    """`libs` holding every locked jar with its checksum (fetching what is missing); returns `libs`."""
    libs = Path(libs or default_libs())
    jars = locked_jars()
    stamp = libs / VERIFIED_STAMP
    if stamp.exists() and stamp.read_text() == _stamp_text(libs, jars):
        return libs
    libs.mkdir(parents=True, exist_ok=True)
    missing = [jar for jar in jars if not _verified(libs / jar.filename, jar)]
    if missing:
        _fetch(missing, libs, shutil.which("mvn") is not None if use_mvn is None else use_mvn)
    stamp.write_text(_stamp_text(libs, jars))
    return libs


def _stamp_text(libs: Path, jars: list[LockedJar]) -> str:
    """The lock's digest and each jar's size and mtime: a changed file is checked again."""
    def state(jar: LockedJar) -> str:
        path = libs / jar.filename
        return f"{path.stat().st_size}:{path.stat().st_mtime_ns}" if path.exists() else "missing"

    return sha256_of(LOCK) + "\n" + "\n".join(f"{jar.filename} {state(jar)}" for jar in jars) + "\n"


def _verified(path: Path, jar: LockedJar) -> bool:
    return path.exists() and sha256_of(path) == jar.sha256


def _fetch(jars: list[LockedJar], libs: Path, use_mvn: bool) -> None:
    from jgo.maven import MavenContext, MvnResolver, PythonResolver

    context = MavenContext(resolver=MvnResolver("mvn") if use_mvn else PythonResolver())
    for jar in jars:
        group, artifact, version, *classifier = jar.coordinate.split(":")
        component = context.project(group, artifact).at_version(version)
        source = component.artifact(classifier=classifier[0] if classifier else "", packaging="jar").resolve()
        target = libs / jar.filename
        shutil.copyfile(source, target)
        if sha256_of(target) != jar.sha256:
            target.unlink()
            raise JarProblem(f"{jar.coordinate}: the fetched jar's sha256 is not the locked {jar.sha256} "
                             f"({source}); refusing it")
