"""A configuration change's impact: the window before it against the window after, per model
type x resolution class, from the API (``GET /config-changes``) and the CLI (``genperf
changes``), over a real SQLite store."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from genperf.analysis.impact import change_impact
from genperf.api import create_app
from genperf.cli.app import app as cli
from genperf.config import Settings
from genperf.monitor import PerformanceMonitor
from genperf.records import TaskStatus, utc_now
from genperf.storage import SqlStore
from genperf.storage.changes import record_change
from genperf.storage.engine import make_engine
from genperf.testing import make_task

URL = "/api/v1/performance/config-changes"
MODEL = "tiny-wan-t2v"


def seed(store: SqlStore, url: str):
    """Ten tasks an hour before a tuned preset (100 s), ten after (80 s, one failed), an
    unrelated model's tasks around it, and an older change of every model."""
    now = utc_now()
    changed_at = now - timedelta(hours=2)

    def at(minutes: float):
        return changed_at + timedelta(minutes=minutes)

    for i in range(10):
        store.save_task(
            make_task(
                task_id=f"before-{i}",
                model_type=MODEL,
                started_at=at(-50 + i),
                generation_time_seconds=100.0 + i,
                peak_process_rss_mb=900.0,
                peak_vram_usage_mb=None,
            )
        )
        store.save_task(
            make_task(
                task_id=f"after-{i}",
                model_type=MODEL,
                started_at=at(10 + i),
                status=TaskStatus.FAILED if i == 0 else TaskStatus.COMPLETED,
                generation_time_seconds=80.0 + i,
                peak_process_rss_mb=600.0,
                peak_vram_usage_mb=None,
            )
        )
        for side in (-30, 30):  # another model: not this change's business
            store.save_task(
                make_task(task_id=f"other-{side}-{i}", model_type="t2v-A14B", started_at=at(side))
            )
    engine = make_engine(url)
    try:
        for when, key, old, new in (
            (changed_at, f"tuned_presets.{MODEL}", None, "tiled"),
            (changed_at - timedelta(days=3), "monitoring_interval_seconds", "5", "1"),
        ):
            record_change(
                engine,
                {
                    "changed_at": when,
                    "key": key,
                    "old_value": old,
                    "new_value": new,
                    "source": "genperf tune",
                    "before_time_seconds": 101.0,
                    "after_time_seconds": 84.0,
                    "before_peak_mb": None,
                    "after_peak_mb": None,
                },
            )
    finally:
        engine.dispose()
    return changed_at


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for name in ("GENPERF_URL", "GENPERF_TOKEN", "GENPERF_CONFIG", "GENPERF_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    data = tmp_path / "data"
    monkeypatch.setenv("GENPERF_DATA_DIR", str(data))
    url = f"sqlite:///{data / 'genperf.db'}"
    store = SqlStore(url)
    changed_at = seed(store, url)
    yield store, changed_at, data
    store.close()


def test_the_api_sets_the_window_before_against_the_window_after(db):
    store, _changed_at, data = db
    monitor = PerformanceMonitor(Settings(data_dir=data, enable_gpu_monitoring=False), store=store)
    app = create_app(monitor.settings, monitor=monitor, store=store, environ={})
    try:
        with TestClient(app, base_url="http://localhost", client=("127.0.0.1", 5000)) as client:
            r = client.get(URL, params={"compare_hours": 1})
            assert r.status_code == 200, r.text
            body = r.json()
            bad = client.get(URL, params={"compare_hours": 0})
            too_many = client.get(URL, params={"limit": 101})
    finally:
        monitor.close()
    assert (body["time_window_hours"], body["compare_hours"]) == (720.0, 1.0)
    newest, older = body["changes"]  # newest first
    assert (newest["key"], newest["new_value"], newest["model_type"]) == (
        f"tuned_presets.{MODEL}",
        "tiled",
        MODEL,
    )
    assert newest["before_time_seconds"] == 101.0  # what tune measured, kept
    (group,) = newest["groups"]  # the other model's tasks are left out
    assert (group["model_type"], group["resolution_class"]) == (MODEL, "720p")
    before, after = group["before"], group["after"]
    assert (before["tasks"], before["completed"], before["success_rate"]) == (10, 10, 1.0)
    assert (after["tasks"], after["completed"], after["success_rate"]) == (10, 9, 0.9)
    assert before["median_time_seconds"] == 104.5
    assert after["median_time_seconds"] == 85.0  # 81..89: the failed run is no time
    assert after["p95_time_seconds"] == pytest.approx(88.6)
    assert (before["median_peak_rss_mb"], after["median_peak_rss_mb"]) == (900.0, 600.0)
    assert group["time_change_percent"] == pytest.approx(100 * (85.0 / 104.5 - 1))
    assert group["peak_metric"] == "peak_process_rss_mb"
    assert group["peak_change_percent"] == pytest.approx(-100 / 3)
    assert older["model_type"] is None and older["groups"] == []  # no task around it
    assert bad.status_code == 422 and "compare_hours" in bad.text
    assert too_many.status_code == 422 and "limit" in too_many.text


def test_a_change_of_every_model_compares_each_of_them(db):
    _store, changed_at, _data = db
    records = [
        make_task(model_type=m, started_at=changed_at + timedelta(minutes=s))
        for m in ("a", "b")
        for s in (-5, 5)
    ]
    groups = change_impact(records, changed_at, timedelta(hours=1))
    assert [(g.model_type, g.before.tasks, g.after.tasks) for g in groups] == [
        ("a", 1, 1),
        ("b", 1, 1),
    ]
    assert groups[0].comparison.time_change_percent is None  # one task a side: no median
    only_a = change_impact(records, changed_at, timedelta(hours=1), model_type="a")
    assert [g.model_type for g in only_a] == ["a"]


def test_the_cli_lists_the_changes_and_its_json_is_the_apis(db):
    result = CliRunner().invoke(cli, ["changes", "--compare-hours", "1"])
    assert result.exit_code == 0, result.output
    assert f"tuned_presets.{MODEL}: not set -> tiled" in result.output
    lines = result.output.splitlines()
    assert max(map(len, lines)) <= 80
    (before,) = [line.split() for line in lines if line.split()[:1] == ["before"]]
    (after,) = [line.split() for line in lines if line.split()[:1] == ["after"]]
    assert before == ["before", "10/10", "100", "%", "1m", "44s", "1m", "49s", "900.0", "MiB"]
    assert after[1:3] == ["9/10", "90"] and after[-4:] == ["−19", "%", "−33", "%"]
    assert "no task finished both 1 h before and 1 h after it" in result.output
    data = json.loads(CliRunner().invoke(cli, ["changes", "--compare-hours", "1", "--json"]).output)
    assert [c["key"] for c in data["changes"]] == [
        f"tuned_presets.{MODEL}",
        "monitoring_interval_seconds",
    ]
    none = CliRunner().invoke(cli, ["changes", "--hours", "1"], terminal_width=160)
    assert "No configuration change recorded in the last 1 h" in none.output
