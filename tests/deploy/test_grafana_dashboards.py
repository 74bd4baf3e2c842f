"""Grafana dashboards: the committed JSON is what genperf.exporters.grafana builds, it is sound
(variables, panels, grid), and every panel's query, with its variables filled in as Grafana
would, runs on the real Prometheus holding a real genperf's data and returns series.

Grafana itself cannot be installed here (neither Debian nor PyPI has it), so what Grafana adds
(rendering) is not tested; what can break in a dashboard (its queries) is."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
import yaml
from deploy_support import DASHBOARDS_DIR, DEPLOY
from stack_support import NODE, Stack, wait_for

from genperf.exporters.grafana import dashboards, render

P = "/api/v1/performance"
MODEL = "t2v-A14B"
BUILTINS = {"__rate_interval": "1m", "__range": "1h", "__interval": "15s"}
PANEL_TYPES = {"timeseries", "stat", "bargauge", "table"}
_VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)\}")


def _committed() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARDS_DIR.glob("*.json"))}


def test_the_committed_dashboards_are_what_the_builder_makes():
    built = dashboards()
    assert sorted(built) == sorted(_committed())
    for name, doc in built.items():
        assert (DASHBOARDS_DIR / name).read_text() == render(doc), (
            f"{name} is stale: run `python -m genperf.exporters.grafana deploy/grafana/dashboards`"
        )


def _targets(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(panel["title"], t) for panel in doc["panels"] for t in panel["targets"]]


def test_every_dashboard_is_sound():
    docs = _committed()
    assert len(docs) == 6
    assert len({d["uid"] for d in docs.values()}) == 6
    for name, doc in docs.items():
        for key in ("uid", "title", "schemaVersion", "panels", "templating", "time"):
            assert doc.get(key), f"{name}: no {key}"
        variables = {v["name"]: v for v in doc["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        assert "node" in variables, name
        for var in variables.values():
            if var["type"] == "query":
                assert var["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        ids = [p["id"] for p in doc["panels"]]
        assert len(ids) == len(set(ids)), f"{name}: panel ids repeat"
        cells: set[tuple[int, int]] = set()
        for panel in doc["panels"]:
            assert panel["type"] in PANEL_TYPES
            assert panel["datasource"]["uid"] == "${datasource}"
            grid = panel["gridPos"]
            assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0
            area = {
                (x, y)
                for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])
            }
            assert not area & cells, f"{name}: {panel['title']!r} overlaps another panel"
            cells |= area
            refs = [t["refId"] for t in panel["targets"]]
            assert refs and len(refs) == len(set(refs))
        for title, target in _targets(doc):
            assert target["expr"].strip(), f"{name}: {title!r} has no query"
            for match in _VARIABLE.finditer(target["expr"]):
                used = match.group(1) or match.group(2)
                assert used in variables or used in BUILTINS, f"{name}: {title!r} uses ${used}"


def test_the_provisioning_files_point_at_the_dashboards_and_prometheus():
    datasources = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/datasources/genperf-prometheus.yml").read_text()
    )
    assert datasources["apiVersion"] == 1
    assert datasources["datasources"][0]["type"] == "prometheus"
    providers = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/genperf.yml").read_text())
    assert providers["providers"][0]["type"] == "file"
    assert providers["providers"][0]["options"]["path"]


def _fill(expr: str, values: dict[str, str]) -> str:
    return _VARIABLE.sub(lambda m: values[m.group(1) or m.group(2)], expr)


def _seed(stack: Stack) -> None:
    """Completed tasks with phases, steps and peaks, and failures of two kinds."""
    phases = [
        {"name": "model_load", "started_offset_seconds": 0, "duration_seconds": 30},
        {"name": "text_encode", "started_offset_seconds": 30, "duration_seconds": 2},
        {"name": "denoise", "started_offset_seconds": 32, "duration_seconds": 200},
        {"name": "vae_decode", "started_offset_seconds": 232, "duration_seconds": 20},
    ]
    with stack.genperf() as client:
        for i in range(4):
            task = {
                "task_id": f"grafana-{i}",
                "model_type": MODEL,
                "resolution": "1920x1080",  # 720p is the end-to-end alert test's class
                "generation_time_seconds": 252.0,
                "phases": phases,
                "step_times_seconds": [9.5, 10.0, 10.5],
                "peak_vram_usage_mb": 60_000,
                "vram_total_mb": 81_920,
                "peak_ram_usage_mb": 20_000,
                "ram_total_mb": 65_536,
            }
            assert client.post(f"{P}/tasks", json=task).status_code == 201
            assert client.post(f"{P}/tasks/grafana-{i}/complete").status_code == 200
        for i, category in enumerate(("out_of_memory_gpu", "timeout")):
            task = {"task_id": f"grafana-f{i}", "model_type": MODEL, "resolution": "720p"}
            assert client.post(f"{P}/tasks", json=task).status_code == 201
            failure = {"success": False, "error": "failed", "error_category": category}
            assert client.post(f"{P}/tasks/grafana-f{i}/complete", json=failure).status_code == 200


@pytest.mark.slow
def test_every_panel_and_variable_query_returns_series_from_real_prometheus(stack):
    _seed(stack)
    wait_for(
        "the seeded phases in Prometheus",
        lambda: stack.query('genperf_task_phase_duration_seconds_count{phase="vae_decode"}'),
        stack,
    )
    values = {"node": NODE, "model": MODEL, "datasource": "", **BUILTINS}
    queries = [
        (name, title, _fill(target["expr"], values))
        for name, doc in _committed().items()
        for title, target in _targets(doc)
    ]
    # Recording rules evaluate once a second on the scraped data: allow a few rounds, then
    # every query must have answered with at least one series.
    deadline = time.monotonic() + 20
    pending = queries
    errors: list[str] = []
    while pending:
        failed = []
        for name, title, expr in pending:
            try:
                if not stack.query(expr):
                    failed.append((name, title, expr))
            except AssertionError as exc:  # a query Prometheus refuses: no retry helps
                errors.append(f"{name}: {title!r}: {exc}")
        pending = failed
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert not errors, "\n".join(errors)
    assert not pending, "no series for:\n" + "\n".join(f"{n}: {t!r}: {e}" for n, t, e in pending)

    for name, doc in _committed().items():
        for var in doc["templating"]["list"]:
            if var["type"] != "query":
                continue
            m = re.fullmatch(r"label_values\((.+), (\w+)\)", var["query"]["query"])
            assert m, f"{name}: ${var['name']} is not label_values(metric, label)"
            metric, label = _fill(m.group(1), values), m.group(2)
            found = {r["metric"].get(label) for r in stack.query(f"group by ({label}) ({metric})")}
            assert values[var["name"]] in found, f"{name}: ${var['name']} offers {found}"
