"""deploy/ without a running stack: promtool on the rules and config, dashboards, container files.

The live counterpart (names from real /metrics scrapes, a real Prometheus) is
tests/integration/test_ops_live.py.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

import prox.common.metrics as prox_metrics
from tests.helpers.promql import (
    dashboard_exprs, load_dashboards, load_rules, metric_names, recorded_names, rule_exprs,
)

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
RULES_DIR = DEPLOY / "prometheus" / "rules"
RULE_TESTS_DIR = DEPLOY / "prometheus" / "tests"
DASHBOARDS_DIR = DEPLOY / "grafana" / "dashboards"
DOCKER_DIR = DEPLOY / "docker"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian package `prometheus`; `make install-ops`)"
)

# Triton's documented series (server docs, user_guide/metrics.md); the live test checks them for real.
TRITON_SERIES = frozenset("""
nv_inference_request_success nv_inference_request_failure nv_inference_count nv_inference_exec_count
nv_inference_pending_request_count nv_inference_request_duration_us nv_inference_queue_duration_us
nv_inference_compute_input_duration_us nv_inference_compute_infer_duration_us
nv_inference_compute_output_duration_us nv_gpu_utilization nv_gpu_memory_total_bytes nv_gpu_memory_used_bytes
nv_gpu_power_usage nv_gpu_power_limit nv_energy_consumption nv_cpu_utilization nv_cpu_memory_total_bytes
nv_cpu_memory_used_bytes
""".split())
PROMETHEUS_SYNTHETIC = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})
# prometheus_client's exposition suffixes per metric type (the `_created` samples are never queried).
EXPOSED_SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}


def prox_series_names() -> set[str]:
    """Sample names prox.common.metrics exports, by the Python client's suffix rules."""
    names = set()
    for metric in vars(prox_metrics).values():
        if isinstance(metric, MetricWrapperBase):
            names.update(metric._name + suffix for suffix in EXPOSED_SUFFIXES[metric._type])
    return names


RULES = load_rules(RULES_DIR)
DASHBOARDS = load_dashboards(DASHBOARDS_DIR)
KNOWN_NAMES = prox_series_names() | TRITON_SERIES | PROMETHEUS_SYNTHETIC | {
    name for document in RULES.values() for name in recorded_names(document)
}


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120)


# --- the PromQL name extractor itself ------------------------------------------------------------

@pytest.mark.parametrize("expr, expected", [
    ('sum by (service) (rate(prox_documents_in_total{topic="prox.raw"}[5m]))', {"prox_documents_in_total"}),
    ("histogram_quantile(0.95, sum by (le) (rate(prox_end_to_end_seconds_bucket[$__rate_interval])))",
     {"prox_end_to_end_seconds_bucket"}),
    ("a_total / on (model) group_left (version) b_total > bool 0.5", {"a_total", "b_total"}),
    ("x and on () y or ignoring (le) z unless w offset 30m", {"x", "y", "z", "w"}),
    ('label_replace(up, "dst", "$1", "job", "(.*)") * 1e-3', {"up"}),
    ("prox:drop_fraction:ratio_rate30m - avg_over_time(prox:drop_fraction:ratio_rate30m[1d] offset 30m)",
     {"prox:drop_fraction:ratio_rate30m"}),
    ("sum(rate(log10_total[${interval}])) by (service)", {"log10_total"}),
])
def test_metric_names_keeps_series_and_drops_functions_labels_and_variables(expr, expected):
    assert metric_names(expr) == expected


def test_metric_names_rejects_unknown_functions():
    with pytest.raises(ValueError, match="rates"):
        metric_names("rates(prox_documents_in_total[5m])")


# --- Prometheus ----------------------------------------------------------------------------------

@needs_promtool
def test_promtool_accepts_the_rules():
    result = promtool("check", "rules", *map(str, RULES))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_rule_unit_tests_pass():
    rule_tests = sorted(RULE_TESTS_DIR.glob("*.yml"))
    assert rule_tests
    result = subprocess.run([PROMTOOL, "test", "rules", *(p.name for p in rule_tests)],
                            cwd=RULE_TESTS_DIR, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_accepts_the_scrape_config():
    result = promtool("check", "config", str(DEPLOY / "prometheus" / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def _alert_checks() -> dict[str, list[bool]]:
    """alertname -> [expects firing?] over every alert_rule_test in deploy/prometheus/tests."""
    checks: dict[str, list[bool]] = {}
    for path in RULE_TESTS_DIR.glob("*.yml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                checks.setdefault(check["alertname"], []).append(bool(check.get("exp_alerts")))
    return checks


def test_every_alert_has_a_firing_and_a_quiet_unit_test():
    alerts = {rule["alert"] for document in RULES.values() for group in document["groups"]
              for rule in group["rules"] if "alert" in rule}
    checks = _alert_checks()
    assert alerts
    assert {a for a in alerts if True not in checks.get(a, [])} == set(), "alerts never shown firing"
    assert {a for a in alerts if False not in checks.get(a, [])} == set(), "alerts never shown quiet"


def test_scrape_config_scrapes_every_service_and_the_model_server():
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert jobs >= {"prox-doc-refiner", "prox-chunk-refiner", "prox-executor", "prox-model-server"}


# --- Grafana -------------------------------------------------------------------------------------

def test_the_three_dashboards_exist_with_unique_uids():
    uids = [dashboard["uid"] for dashboard in DASHBOARDS.values()]
    assert sorted(uids) == ["prox-executor", "prox-model-serving", "prox-pipeline"]


@pytest.mark.parametrize("path", sorted(DASHBOARDS), ids=lambda p: p.name)
def test_dashboard_panels_query_prometheus_through_the_datasource_variable(path):
    dashboard = DASHBOARDS[path]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert dashboard["panels"]
    for panel in dashboard["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"]), panel["title"]
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, panel["title"]


@pytest.mark.parametrize("path", sorted(DASHBOARDS), ids=lambda p: p.name)
def test_dashboards_use_only_exported_metric_names(path):
    unknown = {
        (title, name) for title, expr in dashboard_exprs(DASHBOARDS[path]) for name in metric_names(expr)
        if name not in KNOWN_NAMES
    }
    assert unknown == set()


def test_alert_rules_use_only_exported_metric_names():
    unknown = {
        (rule, name) for document in RULES.values() for rule, expr in rule_exprs(document)
        for name in metric_names(expr) if name not in KNOWN_NAMES
    }
    assert unknown == set()


def test_pipeline_dashboard_covers_the_required_views():
    used = {name for _, expr in dashboard_exprs(DASHBOARDS[DASHBOARDS_DIR / "prox-pipeline.json"])
            for name in metric_names(expr)}
    assert used >= {"prox_documents_in_total", "prox_documents_out_total", "prox_words_kept_total",
                    "prox_end_to_end_seconds_bucket", "prox_consumer_lag"}


def test_committed_dashboards_match_their_generator():
    result = subprocess.run([sys.executable, str(DEPLOY / "grafana" / "generate_dashboards.py"), "--check"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_grafana_provisioning_points_at_the_dashboards_and_prometheus():
    provisioning = DEPLOY / "grafana" / "provisioning"
    providers = yaml.safe_load((provisioning / "dashboards" / "prox.yml").read_text())["providers"]
    datasources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert [p["type"] for p in providers] == ["file"] and providers[0]["options"]["path"]
    assert [d["type"] for d in datasources] == ["prometheus"]


# --- container files -----------------------------------------------------------------------------

def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of every build stage, continuation lines joined, comments left out."""
    text = re.sub(r"\\\n\s*", " ", dockerfile.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(op.upper(), args) for op, args in (line.split(None, 1) for line in lines)]


def _final_stage(dockerfile: Path) -> list[tuple[str, str]]:
    instructions = _instructions(dockerfile)
    last_from = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    return instructions[last_from:]


@pytest.mark.parametrize("name", ["Dockerfile.services", "Dockerfile.model-server"])
def test_images_run_as_a_non_root_user_with_a_healthcheck(name):
    stage = _final_stage(DOCKER_DIR / name)
    users = [args for op, args in stage if op == "USER"]
    assert users and users[-1] not in {"root", "0"}
    assert any(op == "HEALTHCHECK" and "CMD" in args for op, args in stage)


def test_services_image_is_slim_and_has_no_model_extras():
    stage = _final_stage(DOCKER_DIR / "Dockerfile.services")
    assert "slim" in stage[0][1]
    assert not any("[model" in args for _, args in _instructions(DOCKER_DIR / "Dockerfile.services"))
    assert any(op == "HEALTHCHECK" and "/healthz" in args for op, args in stage)


def test_model_server_image_is_cuda_based_and_never_bakes_in_models():
    stage = _final_stage(DOCKER_DIR / "Dockerfile.model-server")
    assert stage[0][1].startswith(("nvidia/cuda:", "nvcr.io/nvidia/"))
    assert any(op == "RUN" and ".[server,model]" in args for op, args in stage)
    assert not any(op in {"COPY", "ADD"} and "model" in args.split()[0].lower() for op, args in stage)
    assert any(op == "HEALTHCHECK" and "/v2/health/ready" in args for op, args in stage)
