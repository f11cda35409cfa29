"""Write the ProX Stream Grafana dashboards (deploy/grafana/dashboards/*.json) from one description.

    python deploy/grafana/generate_dashboards.py          # rewrite the JSON files
    python deploy/grafana/generate_dashboards.py --check  # exit 1 if the committed files are stale

Edit the panels here, not the JSON: the JSON is generated so that every panel shares one layout,
datasource variable and style.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

DASHBOARD_DIR = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"
PANEL_HEIGHT = 8
GRID_WIDTH = 24


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    title: str
    queries: tuple[Query, ...]
    unit: str = "short"
    description: str = ""
    width: int = 12
    kind: str = "timeseries"
    stack: bool = False


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    panels: tuple[Panel, ...] = field(default_factory=tuple)


def quantiles(histogram: str, by: str, legend: str, qs=(0.5, 0.95, 0.99)) -> tuple[Query, ...]:
    """p50/p95/p99 of a Prometheus histogram, one series per `by` value."""
    return tuple(
        Query(
            f"histogram_quantile({q}, sum by (le, {by}) (rate({histogram}_bucket[{RATE}])))",
            f"{legend} p{round(q * 100)}",
        )
        for q in qs
    )


def per_second(metric: str, by: str, legend: str, selector: str = "") -> Query:
    return Query(f"sum by ({by}) (rate({metric}{selector}[{RATE}]))", legend)


def ratio(numerator: str, denominator: str, by: str, legend: str) -> Query:
    return Query(
        f"sum by ({by}) (rate({numerator}[{RATE}])) / sum by ({by}) (rate({denominator}[{RATE}]))", legend
    )


PIPELINE = Dashboard(
    uid="prox-pipeline",
    title="ProX Stream / Pipeline overview",
    description="Throughput, outcomes, latency and consumer lag of doc-refiner -> executor -> chunk-refiner -> executor.",
    panels=(
        Panel("Documents in per second, by stage", (per_second("prox_documents_in_total", "service", "{{service}}"),),
              unit="reqps"),
        Panel("Documents out per second, by stage and outcome",
              (per_second("prox_documents_out_total", "service, outcome", "{{service}} {{outcome}}"),), unit="reqps"),
        Panel("Pipeline outcomes: refined vs dropped vs dead-letter",
              (per_second("prox_documents_out_total", "outcome", "{{outcome}}",
                          '{outcome=~"refined|dropped|dead_letter"}'),),
              unit="reqps", stack=True),
        Panel("Drop fraction",
              (Query(f'sum(rate(prox_documents_out_total{{outcome="dropped"}}[{RATE}])) / '
                     f'sum(rate(prox_documents_out_total{{outcome=~"dropped|refined"}}[{RATE}]))', "dropped"),
               Query("prox:drop_fraction:ratio_rate30m", "dropped (30m, alert input)")),
              unit="percentunit"),
        Panel("Words kept per second, by stage", (per_second("prox_words_kept_total", "service", "{{service}}"),),
              unit="short"),
        Panel("Share of words kept, by stage",
              (ratio("prox_words_kept_total", "prox_words_in_total", "service", "{{service}}"),), unit="percentunit"),
        Panel("End-to-end latency (ingest to output)", quantiles("prox_end_to_end_seconds", "service", "{{service}}"),
              unit="s"),
        Panel("Processing time per message, by stage", quantiles("prox_processing_seconds", "service", "{{service}}"),
              unit="s"),
        Panel("Consumer lag, by group", (Query("sum by (service) (prox_consumer_lag)", "prox-{{service}}"),),
              unit="short", description="High watermark minus position, summed over partitions."),
        Panel("Consumer lag, by group and partition",
              (Query("sum by (service, topic, partition) (prox_consumer_lag)",
                     "prox-{{service}} {{topic}}/{{partition}}"),), unit="short"),
        Panel("Dead letters per second, by reason",
              (per_second("prox_dead_letters_total", "service, reason", "{{service}} {{reason}}"),), unit="reqps"),
        Panel("In flight and back-pressure",
              (Query("sum by (service) (prox_in_flight)", "{{service}} in flight"),
               Query("max by (service) (prox_consumer_paused)", "{{service}} paused")), unit="short"),
        Panel("Fetched batch size", quantiles("prox_batch_size", "service", "{{service}}", qs=(0.5, 0.95)),
              unit="short"),
        Panel("Commits per second and uncommitted offsets",
              (per_second("prox_commits_total", "service", "{{service}} commits/s"),
               Query("sum by (service) (prox_commit_lag)", "{{service}} uncommitted")), unit="short"),
        Panel("Partitions committing nothing while lagging",
              (Query("max by (service, topic, partition) (prox_commit_stalled_seconds) > 0",
                     "prox-{{service}} {{topic}}/{{partition}}"),),
              unit="s", description="Seconds a lagging partition's committed offset has not moved "
                                    "(alert ProxPartitionCommitStalled above 5 minutes)."),
        Panel("Sink: rows and shards written per second, duplicates dropped",
              (per_second("prox_sink_rows_total", "kind", "{{kind}} rows/s"),
               per_second("prox_sink_shards_total", "kind", "{{kind}} shards/s"),
               per_second("prox_sink_duplicates_dropped_total", "kind", "{{kind}} duplicates/s"),
               Query('sum(prox_consumer_lag{service="sink"})', "records not yet durable (lag)")),
              unit="short", description="prox service sink: rows in published (durable) shards; duplicates by id."),
        Panel("Sink: bytes written per second", (per_second("prox_sink_bytes_total", "kind", "{{kind}}"),),
              unit="Bps", description="Compressed shard bytes on storage."),
        Panel("Sink: open shard age and time since the last shard",
              (Query("max by (kind) (prox_sink_open_shard_age_seconds)", "{{kind}} open shard age"),
               Query("time() - max by (kind) (prox_sink_last_shard_closed_timestamp_seconds)",
                     "{{kind}} since last shard")),
              unit="s", description="Alert ProxSinkNoShardClosed: no shard for 30 minutes while lag > 0."),
    ),
)


def per_request_ms(counter_us: str, legend: str) -> Query:
    """Triton's cumulative microsecond counters as milliseconds per successful request."""
    return Query(
        f"sum by (model) (rate({counter_us}[{RATE}])) / sum by (model) (rate(nv_inference_request_success[{RATE}])) / 1000",
        legend,
    )


MODEL_SERVING = Dashboard(
    uid="prox-model-serving",
    title="ProX Stream / Model serving",
    description="Triton (prox model-server) queue and compute time, batching, GPU, and the services' client view.",
    panels=(
        Panel("Triton queue vs compute time per request",
              (per_request_ms("nv_inference_queue_duration_us", "{{model}} queue"),
               per_request_ms("nv_inference_compute_infer_duration_us", "{{model}} compute")),
              unit="ms", description="Queue much above compute: model instances are saturated."),
        Panel("Triton request time per request",
              (per_request_ms("nv_inference_request_duration_us", "{{model}}"),),
              unit="ms"),
        Panel("Triton requests per second, success and failure",
              (per_second("nv_inference_request_success", "model", "{{model}} success"),
               per_second("nv_inference_request_failure", "model", "{{model}} failure")), unit="reqps"),
        Panel("Triton batch size (documents per model execution)",
              (ratio("nv_inference_count", "nv_inference_exec_count", "model", "{{model}}"),), unit="short",
              description="Inferences divided by executions: how well dynamic batching fills batches."),
        Panel("Client batch size (documents per request)",
              quantiles("prox_triton_batch_size", "model", "{{model}}", qs=(0.5, 0.95)), unit="short"),
        Panel("Pending requests", (Query("sum by (model) (nv_inference_pending_request_count)", "{{model}}"),),
              unit="short"),
        Panel("Client request latency", quantiles("prox_triton_request_seconds", "model", "{{model}}"), unit="s"),
        Panel("Client errors and retries per second",
              (per_second("prox_triton_errors_total", "model, kind", "{{model}} {{kind}}"),
               per_second("prox_triton_retries_total", "model", "{{model}} retries")), unit="reqps"),
        Panel("GPU utilisation", (Query("nv_gpu_utilization", "{{gpu_uuid}}"),), unit="percentunit",
              description="Only present when the model server runs on a GPU."),
        Panel("GPU memory used", (Query("nv_gpu_memory_used_bytes", "{{gpu_uuid}}"),), unit="bytes",
              description="Only present when the model server runs on a GPU."),
    ),
)

EXECUTOR = Dashboard(
    uid="prox-executor",
    title="ProX Stream / Executor",
    description="Programs the refining models wrote: outcomes, statement errors, calls per program.",
    panels=(
        Panel("Statement errors per second, by level and kind",
              (per_second("prox_executor_errors_total", "level, kind", "{{level}} {{kind}}"),), unit="reqps",
              stack=True),
        Panel("Statement errors per program, by level",
              (ratio("prox_executor_errors_total", "prox_executor_programs_total", "level", "{{level}}"),),
              unit="short"),
        Panel("Programs per second, by level and outcome",
              (per_second("prox_executor_programs_total", "level, outcome", "{{level}} {{outcome}}"),),
              unit="reqps", stack=True),
        Panel("Calls per program", quantiles("prox_executor_calls", "level", "{{level}}", qs=(0.5, 0.95)),
              unit="short"),
        Panel("Mean calls per program",
              (ratio("prox_executor_calls_sum", "prox_executor_calls_count", "level", "{{level}}"),), unit="short"),
        Panel("Lines removed per second",
              (Query(f"sum(rate(prox_executor_lines_removed_total[{RATE}]))", "lines"),), unit="short"),
    ),
)

DASHBOARDS = (PIPELINE, MODEL_SERVING, EXECUTOR)


def panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict:
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": PANEL_HEIGHT, "w": panel.width, "x": x, "y": y},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": q.expr, "legendFormat": q.legend,
             "range": True}
            for i, q in enumerate(panel.queries)
        ],
        "fieldConfig": {
            "defaults": {"unit": panel.unit,
                         "custom": {"stacking": {"mode": "normal" if panel.stack else "none", "group": "A"}}},
            "overrides": [],
        },
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                    "tooltip": {"mode": "multi", "sort": "desc"}},
    }


def layout(panels: tuple[Panel, ...]) -> list[dict]:
    """Left-to-right, top-to-bottom on Grafana's 24-column grid."""
    placed, x, y = [], 0, 0
    for panel_id, panel in enumerate(panels, start=1):
        if x + panel.width > GRID_WIDTH:
            x, y = 0, y + PANEL_HEIGHT
        placed.append(panel_json(panel, panel_id, x, y))
        x += panel.width
    return placed


def dashboard_json(dashboard: Dashboard) -> dict:
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": ["prox"],
        "editable": True,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "timezone": "browser",
        "templating": {"list": [{
            "name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
            "current": {}, "hide": 0, "refresh": 1, "options": [],
        }]},
        "annotations": {"list": []},
        "links": [{"type": "dashboards", "tags": ["prox"], "asDropdown": True, "title": "ProX Stream"}],
        "panels": layout(dashboard.panels),
    }


def rendered() -> dict[Path, str]:
    return {DASHBOARD_DIR / f"{d.uid}.json": json.dumps(dashboard_json(d), indent=2) + "\n" for d in DASHBOARDS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only report stale or missing files")
    args = parser.parse_args(argv)
    stale = [path for path, text in rendered().items() if not path.exists() or path.read_text() != text]
    if args.check:
        for path in stale:
            print(f"stale: {path} (run {Path(__file__).name})", file=sys.stderr)
        return 1 if stale else 0
    DASHBOARD_DIR.mkdir(parents=True, exist_ok=True)
    for path, text in rendered().items():
        path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
