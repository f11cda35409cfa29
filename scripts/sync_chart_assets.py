#!/usr/bin/env python3
"""Copy the Prometheus rules and Grafana dashboards from deploy/ into the Helm chart.

A chart cannot read files outside its directory, so helm/prox-stream/files/ holds copies:
deploy/prometheus/rules/*.yml  -> helm/prox-stream/files/rules/       (PrometheusRule spec.groups)
deploy/grafana/dashboards/*.json -> helm/prox-stream/files/dashboards/ (Grafana sidecar ConfigMaps)

    python scripts/sync_chart_assets.py          # copy, and delete copies whose source is gone
    python scripts/sync_chart_assets.py --check  # exit 1 if the copies differ from deploy/
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# (source folder under deploy/, destination folder under the chart, file patterns)
ASSETS = (
    ("prometheus/rules", "files/rules", ("*.yml", "*.yaml")),
    ("grafana/dashboards", "files/dashboards", ("*.json",)),
)


def _matching(folder: Path, patterns: tuple[str, ...]) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    return {path.name: path for pattern in patterns for path in folder.glob(pattern) if path.is_file()}


def differences(deploy_dir: Path, chart_dir: Path) -> list[str]:
    """What a sync would change, as 'copy SRC -> DST' / 'delete DST' lines; empty when in sync."""
    changes = []
    for source_sub, dest_sub, patterns in ASSETS:
        sources = _matching(deploy_dir / source_sub, patterns)
        copies = _matching(chart_dir / dest_sub, patterns)
        for name, source in sorted(sources.items()):
            copy = chart_dir / dest_sub / name
            if name not in copies or copy.read_bytes() != source.read_bytes():
                changes.append(f"copy {source} -> {copy}")
        changes.extend(f"delete {copies[name]}" for name in sorted(copies.keys() - sources.keys()))
    return changes


def sync(deploy_dir: Path, chart_dir: Path) -> list[str]:
    """Make the chart's copies equal to deploy/; returns the changes made."""
    changes = differences(deploy_dir, chart_dir)
    for change in changes:
        action, _, rest = change.partition(" ")
        if action == "copy":
            source, destination = (Path(part) for part in rest.split(" -> "))
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, destination)
        else:
            Path(rest).unlink()
    return changes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only report differences; exit 1 if any")
    parser.add_argument("--deploy-dir", type=Path, default=REPO / "deploy")
    parser.add_argument("--chart-dir", type=Path, default=REPO / "helm" / "prox-stream")
    args = parser.parse_args(argv)
    changes = (differences if args.check else sync)(args.deploy_dir, args.chart_dir)
    for change in changes:
        print(change)
    if args.check and changes:
        print("chart assets are out of date: run scripts/sync_chart_assets.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
