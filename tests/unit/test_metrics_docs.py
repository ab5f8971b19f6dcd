"""The Grafana dashboard and the alert rules in docs/ use the metric names the supervisor
and ``jobtui metrics`` expose, and the dashboard is a document Grafana 10 imports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytest.importorskip("prometheus_client", reason="jobtui[metrics] not installed")

from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

DOCS = Path(__file__).resolve().parents[2] / "docs"
NAME = re.compile(r"\bjobtui_[a-z_]+\b")


def exposed_names() -> set[str]:
    """Every sample name of a supervisor's endpoint with one series of each kind."""
    from jobtui.supervisor.metrics import SupervisorMetrics

    metrics = SupervisorMetrics("sup")
    metrics.started("q", "t", "2026-01-01 00:00:00")
    metrics.ended("q", "t", "completed", None, 0.1)
    metrics.depth.labels("q", "sup").set(1)
    metrics.latency.labels("q", "sup").set(1)
    text = metrics.client.generate_latest(metrics.registry).decode()
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


def test_the_dashboard_is_an_importable_grafana_document():
    board = json.loads((DOCS / "grafana-dashboard.json").read_text())
    assert board["schemaVersion"] >= 36 and board["uid"] and board["title"]
    assert board["__inputs"][0]["pluginId"] == "prometheus"
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)) >= 8
    kinds = {panel["type"] for panel in board["panels"]}
    assert kinds <= {"timeseries", "heatmap", "stat", "bargauge"}, kinds
    for panel in board["panels"]:
        assert panel["targets"] and all(t["expr"] and t["refId"] for t in panel["targets"])
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24


def test_the_dashboard_and_alerts_name_exposed_metrics():
    names = exposed_names()
    board = (DOCS / "grafana-dashboard.json").read_text()
    alerts = (DOCS / "prometheus-alerts.yml").read_text()
    used = set(NAME.findall(board)) | set(NAME.findall(alerts))
    assert used and used <= names, sorted(used - names)
    for wanted in ("jobtui_jobs_completed_total", "jobtui_job_wait_seconds_bucket",
                   "jobtui_job_run_seconds_bucket", "jobtui_queue_depth",
                   "jobtui_queue_latency_seconds", "jobtui_workers_busy"):  # fmt: skip
        assert wanted in board, wanted
