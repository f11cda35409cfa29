"""deploy/ against the running local stack: a real Prometheus scrapes every service and Triton.

Needs the Debian `prometheus` package (`make install-ops`); skips without it.
"""
from __future__ import annotations

import asyncio
import gzip
import itertools
import json
import re
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from prox.common import processes
from prox.common.broker import free_port
from tests.fixtures.paths import SAMPLE
from tests.helpers.promql import (
    dashboard_exprs, exposed_names, load_dashboards, load_rules, metric_names, recorded_names, rule_exprs,
)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
RULES_DIR = REPO / "deploy" / "prometheus" / "rules"
DASHBOARDS_DIR = REPO / "deploy" / "grafana" / "dashboards"
PROMETHEUS = shutil.which("prometheus")
SCRAPE_INTERVAL_S = 1
# Series only a GPU host exports; allowed to be missing when the scrape has none of them.
GPU_ONLY = re.compile(r"^nv_(gpu|energy)_")
PROMETHEUS_SYNTHETIC = {"up"}


def job_name(target: str) -> str:
    """Same job names as deploy/prometheus/prometheus.yml (replicas `executor-1` join their service's job)."""
    if target == "triton":
        return "prox-model-server"
    return "prox-" + re.sub(r"-\d+$", "", target)


def scrape_config(metrics_urls: dict[str, str]) -> dict:
    jobs: dict[str, list[str]] = {}
    for target, url in metrics_urls.items():
        jobs.setdefault(job_name(target), []).append(url)
    return {
        "global": {"scrape_interval": f"{SCRAPE_INTERVAL_S}s", "evaluation_interval": f"{SCRAPE_INTERVAL_S}s"},
        "rule_files": [str(path) for path in sorted(RULES_DIR.glob("*.yml"))],
        "scrape_configs": [
            {"job_name": job, "metrics_path": urllib.parse.urlsplit(urls[0]).path,
             "static_configs": [{"targets": [urllib.parse.urlsplit(url).netloc for url in urls]}]}
            for job, urls in jobs.items()
        ],
    }


def http_get(url: str, timeout_s: float = 5.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return response.read().decode()


class PrometheusServer:
    def __init__(self, workdir: Path, config: dict):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config_path = workdir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config))
        self.log = workdir / "prometheus.log"
        self.process = processes.spawn(
            [PROMETHEUS, f"--config.file={config_path}", f"--storage.tsdb.path={workdir / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}"], log_path=self.log,
        )

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"prometheus exited; see {self.log}"
            try:
                http_get(f"{self.url}/-/ready", timeout_s=2)
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.3)
        raise AssertionError(f"prometheus not ready after {timeout_s}s; see {self.log}")

    def api(self, path: str, **params) -> dict:
        body = json.loads(http_get(f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"))
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> dict[tuple, float]:
        """Instant query: label set (sorted items, __name__ left out) -> value."""
        data = self.api("query", query=expr)
        return {tuple(sorted((k, v) for k, v in s["metric"].items() if k != "__name__")): float(s["value"][1])
                for s in data["result"]}

    def stop(self) -> None:
        processes.stop(self.process)


@pytest.fixture(scope="module")
async def prometheus(local_stack, tmp_path_factory):
    if PROMETHEUS is None:
        pytest.skip("prometheus not installed (Debian package `prometheus`; `make install-ops`)")
    server = PrometheusServer(tmp_path_factory.mktemp("prometheus"), scrape_config(local_stack.metrics_urls))
    try:
        await asyncio.to_thread(server.wait_ready)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
async def documents_sent(local_stack, prometheus):
    """Real pages (and one too short to keep) sent through while Prometheus is scraping."""
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as handle:
        pages = [json.loads(line) for line in itertools.islice(handle, 30)]
    docs = [{"id": f"ops-{p['id']}", "text": p["text"], "url": p["url"]} for p in pages]
    docs.append({"id": "ops-short", "text": "too short to keep"})
    ids = await local_stack.produce(docs)
    return await local_stack.wait_for_outputs(ids)


# Key series: expression -> label values that must each show a value > 0.
KEY_SERIES = {
    'up{job=~"prox-.*"}': ("job", {"prox-doc-refiner", "prox-chunk-refiner", "prox-executor", "prox-model-server"}),
    "sum by (service) (prox_documents_in_total)": ("service", {"doc-refiner", "chunk-refiner", "executor"}),
    "sum by (service) (prox_documents_out_total)": ("service", {"doc-refiner", "chunk-refiner", "executor"}),
    "sum by (service) (prox_processing_seconds_count)": ("service", {"doc-refiner", "chunk-refiner", "executor"}),
    'sum by (outcome) (prox_documents_out_total{outcome=~"refined|dropped"})': ("outcome", {"refined", "dropped"}),
    "sum by (service) (prox_words_in_total)": ("service", {"executor"}),
    "sum by (service) (prox_words_kept_total)": ("service", {"executor"}),
    "sum by (service) (prox_end_to_end_seconds_count)": ("service", {"executor"}),
    "sum by (level) (prox_executor_programs_total)": ("level", {"doc", "chunk"}),
    "sum by (model) (prox_triton_request_seconds_count)": ("model", {"prox_doc", "prox_chunk"}),
    "sum by (model) (nv_inference_request_success)": ("model", {"prox_doc", "prox_chunk"}),
    "sum by (model) (nv_inference_count)": ("model", {"prox_doc", "prox_chunk"}),
    "sum by (model) (nv_inference_exec_count)": ("model", {"prox_doc", "prox_chunk"}),
    "sum by (model) (nv_inference_compute_infer_duration_us)": ("model", {"prox_doc", "prox_chunk"}),
}


def missing_key_series(server: PrometheusServer) -> dict[str, set[str]]:
    missing = {}
    for expr, (label, wanted) in KEY_SERIES.items():
        nonzero = {dict(labels).get(label) for labels, value in server.query(expr).items() if value > 0}
        if wanted - nonzero:
            missing[expr] = wanted - nonzero
    return missing


async def test_prometheus_sees_non_zero_key_series_from_every_target(prometheus, documents_sent):
    assert documents_sent["refined"] or documents_sent["dropped"]
    missing: dict[str, set[str]] = {}
    for _ in range(40):  # a few scrape intervals after the last output
        missing = await asyncio.to_thread(missing_key_series, prometheus)
        if not missing:
            break
        await asyncio.sleep(SCRAPE_INTERVAL_S)
    assert missing == {}


async def test_real_prometheus_evaluates_every_rule_and_dashboard_query(prometheus, documents_sent):
    await asyncio.sleep(3 * SCRAPE_INTERVAL_S)  # let every rule group evaluate on scraped data
    groups = (await asyncio.to_thread(prometheus.api, "rules"))["groups"]
    loaded = {rule["name"]: rule for group in groups for rule in group["rules"]}
    expected = {name for document in load_rules(RULES_DIR).values() for name, _ in rule_exprs(document)}
    assert set(loaded) == expected
    assert {name: rule.get("lastError") for name, rule in loaded.items() if rule["health"] != "ok"} == {}
    for path, dashboard in load_dashboards(DASHBOARDS_DIR).items():
        for title, expr in dashboard_exprs(dashboard):
            await asyncio.to_thread(prometheus.query, expr.replace("$__rate_interval", "1m"))  # raises on error


async def test_dashboards_and_rules_use_only_names_the_live_targets_export(local_stack, documents_sent):
    scrapes = {name: await asyncio.to_thread(http_get, url) for name, url in local_stack.metrics_urls.items()}
    live = set().union(*(exposed_names(text) for text in scrapes.values()))
    rules = load_rules(RULES_DIR)
    allowed = live | PROMETHEUS_SYNTHETIC | {name for document in rules.values() for name in recorded_names(document)}
    used = {
        (f"{path.name}: {title}", name)
        for path, dashboard in load_dashboards(DASHBOARDS_DIR).items()
        for title, expr in dashboard_exprs(dashboard) for name in metric_names(expr)
    } | {
        (f"{path.name}: {rule}", name)
        for path, document in rules.items() for rule, expr in rule_exprs(document) for name in metric_names(expr)
    }
    gpu_scraped = any(GPU_ONLY.match(name) for name in live)
    unknown = {(where, name) for where, name in used
               if name not in allowed and (gpu_scraped or not GPU_ONLY.match(name))}
    assert unknown == set()
    assert any(name.startswith("nv_inference_") for name in live), "no Triton series in the scrapes"
