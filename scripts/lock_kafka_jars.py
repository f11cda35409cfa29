"""Write the lock file of the embedded Apache Kafka broker's jars: `services/prox/broker/kafka-jars.lock`.

mvn resolves deploy/kafka/pom.xml (the pinned broker and Kafka's console tools) and copies the jars; each line
of the lock is `group:artifact:version[:classifier] sha256` of one of them. `prox.broker.jars` fetches exactly these (with mvn
where installed, else jgo's Python Maven client) and refuses any file whose checksum differs. Run after changing
the pom:

    python scripts/lock_kafka_jars.py
"""
from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POM = ROOT / "deploy" / "kafka" / "pom.xml"
LOCK = ROOT / "services" / "prox" / "broker" / "kafka-jars.lock"


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        listing = Path(folder) / "list.txt"
        maven = ["mvn", "-q", "-B", "-f", str(POM)]
        subprocess.run([*maven, "dependency:list", "-DincludeScope=runtime", f"-DoutputFile={listing}"], check=True)
        subprocess.run([*maven, "dependency:copy-dependencies", "-DincludeScope=runtime",
                        f"-DoutputDirectory={folder}/libs"], check=True)
        # group:artifact:jar[:classifier]:version:scope
        pattern = r"^\s+([^:\s]+):([^:\s]+):jar:(?:([^:\s]+):)?([^:\s]+):(?:compile|runtime)\b"
        lines = []
        for group, artifact, classifier, version in sorted(re.findall(pattern, listing.read_text(), re.M)):
            name = f"{artifact}-{version}" + (f"-{classifier}" if classifier else "") + ".jar"
            digest = hashlib.sha256((Path(folder) / "libs" / name).read_bytes()).hexdigest()
            coordinate = f"{group}:{artifact}:{version}" + (f":{classifier}" if classifier else "")
            lines.append(f"{coordinate} {digest}")
    LOCK.write_text("# group:artifact:version sha256 (scripts/lock_kafka_jars.py from deploy/kafka/pom.xml)\n"
                    + "\n".join(lines) + "\n")
    print(f"{LOCK}: {len(lines)} jars")
    return 0


if __name__ == "__main__":
    sys.exit(main())
