"""scripts/sync_chart_assets.py keeps the chart's copies of deploy/ rules and dashboards in sync."""
from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "sync_chart_assets.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("sync_chart_assets", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sync_chart_assets = _load_script()


def test_chart_copies_match_deploy():
    changes = sync_chart_assets.differences(REPO / "deploy", REPO / "helm" / "prox-stream")
    assert changes == [], "run: python scripts/sync_chart_assets.py"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_sync_copies_new_and_changed_files_and_removes_stale_ones(tmp_path):
    deploy, chart = tmp_path / "deploy", tmp_path / "chart"
    _write(deploy / "prometheus/rules/a.yml", "groups: []\n")
    _write(deploy / "grafana/dashboards/d.json", '{"title": "new"}')
    _write(chart / "files/dashboards/d.json", '{"title": "old"}')
    stale = _write(chart / "files/rules/gone.yml", "groups: []\n")
    keep = _write(chart / "files/rules/.gitkeep", "")

    assert len(sync_chart_assets.differences(deploy, chart)) == 3
    sync_chart_assets.sync(deploy, chart)

    assert (chart / "files/rules/a.yml").read_text() == "groups: []\n"
    assert (chart / "files/dashboards/d.json").read_text() == '{"title": "new"}'
    assert not stale.exists() and keep.exists()
    assert sync_chart_assets.differences(deploy, chart) == []


def test_check_mode_exits_nonzero_only_when_out_of_sync(tmp_path, capsys):
    deploy, chart = tmp_path / "deploy", tmp_path / "chart"
    _write(deploy / "grafana/dashboards/d.json", "{}")
    args = ["--check", "--deploy-dir", str(deploy), "--chart-dir", str(chart)]
    assert sync_chart_assets.main(args) == 1
    assert not (chart / "files/dashboards/d.json").exists()
    assert sync_chart_assets.main(args[1:]) == 0
    assert sync_chart_assets.main(args) == 0
