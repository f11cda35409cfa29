"""The sink's Helm objects (off by default): Deployment, Service, PVC, PDB, NetworkPolicy, all valid."""
from __future__ import annotations

import kubernetes_validate
import pytest

from tests.unit.test_helm_chart import CHART, KUBE_VERSION, _env, _of_kind, _one, _render, _selects, chart  # noqa: F401

helm_python = pytest.importorskip("helm_python")

ON_PVC = {"sink": {"enabled": True}}
ON_OBJECT_STORE = {"sink": {"enabled": True, "path": "s3://bucket/prox/shards",
                            "persistence": {"enabled": False}, "envFromSecret": "s3-credentials",
                            "objectStoreEgress": [{"ports": [{"port": 443, "protocol": "TCP"}]}]}}


def test_sink_is_off_by_default(chart):
    docs = _render(chart, {})
    assert not [d for d in docs if d["metadata"]["labels"].get("app.kubernetes.io/component") == "sink"]


@pytest.mark.parametrize("values", [ON_PVC, ON_OBJECT_STORE], ids=["pvc", "object-store"])
def test_sink_lints_and_every_object_matches_the_kubernetes_schema(chart, values):
    report = helm_python.lint(CHART, values, strict=True, kube_version=f"v{KUBE_VERSION}")
    assert [m for m in report["messages"] if m["severity"] >= 2] == []
    docs = [d for d in _render(chart, values) if d["metadata"]["labels"].get("app.kubernetes.io/component") == "sink"]
    assert {d["kind"] for d in docs} >= {"Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy"}
    for doc in docs:
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


def test_sink_on_a_pvc_runs_its_own_group_with_probes_and_recreate_strategy(chart):
    docs = _render(chart, ON_PVC)
    deployment = _one(docs, "Deployment", "sink")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = _env(container)
    assert container["command"] == ["prox", "service", "sink"]
    assert env["PROX_GROUP_ID"]["value"] == "prox-sink"
    assert env["PROX_SINK_PATH"]["value"] == "/data/shards"
    assert env["PROX_SINK_WRITER_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert {p["httpGet"]["path"] for p in (container["livenessProbe"], container["readinessProbe"])} == \
        {"/healthz", "/readyz"}
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    (claim,) = _of_kind(docs, "PersistentVolumeClaim")
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["shards"]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert {"/data", "/tmp"} <= {m["mountPath"] for m in container["volumeMounts"]}
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert [p for p in _of_kind(docs, "NetworkPolicy") if _selects(p["spec"]["podSelector"], labels)]
    service = _one(docs, "Service", "sink")
    assert service["metadata"]["labels"]["prox-stream.io/job"] == "prox-sink"


def test_sink_on_an_object_store_has_no_volume_and_reads_credentials_from_a_secret(chart):
    docs = _render(chart, ON_OBJECT_STORE)
    assert _of_kind(docs, "PersistentVolumeClaim") == []
    deployment = _one(docs, "Deployment", "sink")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["envFrom"] == [{"secretRef": {"name": "s3-credentials"}}]
    assert _env(container)["PROX_SINK_PATH"]["value"] == "s3://bucket/prox/shards"
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    egress = _one(docs, "NetworkPolicy", "sink")["spec"]["egress"]
    assert {"port": 443, "protocol": "TCP"} in [p for rule in egress for p in rule.get("ports", [])]
