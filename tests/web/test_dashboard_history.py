"""What the history says, on the dashboard: predicted against actual for a real tiny-Wan2.2
generation queued through the real generation service (the prediction it answered when it
was queued, the run's real time and peak RSS), each optimisation's impact, the forecast and
a configuration change's window before against after."""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from web_support import LiveServer, Service, open_dashboard, require_browser

from genperf.api import create_app
from genperf.config import Settings
from genperf.monitor import PerformanceMonitor
from genperf.records import utc_now
from genperf.storage import SqlStore
from genperf.storage.changes import record_change
from genperf.storage.engine import make_engine

pytestmark = pytest.mark.filterwarnings("ignore:unclosed file.*safetensors:ResourceWarning")

GENERATIONS = "/api/v1/generation/tasks"
REQUEST = {"prompt": "a heron at dawn", "resolution": "64x64", "steps": 2, "frames": 5}


def _history() -> Any:
    """The prediction tests' history of known truth (tests/prediction/history_support.py)."""
    path = Path(__file__).parents[1] / "prediction" / "history_support.py"
    spec = importlib.util.spec_from_file_location("history_support", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.history


@dataclasses.dataclass
class Generated:
    url: str
    task: dict[str, Any]  # GET /generation/tasks/{id}: the request, its kept prediction
    changed_at: Any


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Generated]:
    require_browser()
    pytest.importorskip("diffusers")
    from genperf.api.routers.generation import make_router
    from genperf.generation import TINY_WAN, GenerationService, ModelRegistry

    tmp = tmp_path_factory.mktemp("history")
    settings = Settings(
        data_dir=tmp / "data",
        database_url=f"sqlite:///{tmp / 'genperf.db'}",
        monitoring_interval_seconds=0.5,
        enable_gpu_monitoring=False,
        node_name="gen-node",
    )
    ModelRegistry(settings).ensure_ready(TINY_WAN)
    store = SqlStore(settings.resolved_database_url)
    now = utc_now()
    # A learnt history of this model, with and without VAE tiling, over the last 72 minutes,
    # and a tuned preset recorded in the middle of it.
    past = _history()(repeats=1, steps=(2, 4), tiling=(False, True))
    for i, record in enumerate(past):
        store.save_task(dataclasses.replace(record, started_at=now - timedelta(minutes=1 + i)))
    changed_at = now - timedelta(minutes=1 + len(past) // 2, seconds=30)
    engine = make_engine(settings.resolved_database_url)
    try:
        change = {"key": f"tuned_presets.{TINY_WAN}", "old_value": None, "new_value": "tiled"}
        record_change(engine, {**change, "changed_at": changed_at, "source": "genperf tune"})
    finally:
        engine.dispose()
    monitor = PerformanceMonitor(settings, store=store)
    service = GenerationService(monitor, poll_seconds=0.1)
    service.start()
    app = create_app(settings, monitor=monitor, extra_routers=[make_router(service)], environ={})
    server = LiveServer(app).start()
    try:
        answer = httpx.post(f"{server.url}{GENERATIONS}", json={**REQUEST, "model_type": TINY_WAN})
        assert answer.status_code == 202, answer.text
        assert answer.json()["prediction"]["answerable"], answer.json()["prediction"]
        assert service.wait_idle(300)
        task = httpx.get(f"{server.url}{GENERATIONS}/{answer.json()['task_id']}").json()
        assert task["status"] == "completed", task
        assert task["prediction"] == answer.json()["prediction"]
        yield Generated(server.url, task, changed_at)
    finally:
        server.stop()
        service.close()
        monitor.close()
        store.close()


def _formatted(page: Any, fn: str, value: float) -> str:
    """The page's own formatting of a number (format.js), to compare cells with the API."""
    text: str = page.evaluate(
        "([fn, v]) => import('/static/js/format.js').then((f) => f[fn](v))", [fn, value]
    )
    return text


def test_predicted_against_actual_shows_the_kept_prediction_and_the_real_run(
    generated: Generated, open_page: Any
) -> None:
    page = open_page()
    open_dashboard(page, generated.url)
    task = generated.task
    row = f'#predicted-table tr[data-task-id="{task["task_id"]}"]'
    page.wait_for_selector(row)
    cells = page.eval_on_selector_all(f"{row} td", "(tds) => tds.map((td) => td.innerText)")
    predicted, metrics = task["prediction"], task["metrics"]
    time, ram = predicted["generation_time_seconds"], predicted["peak_ram_mb"]
    actual_time, actual_ram = metrics["generation_time_seconds"], metrics["peak_process_rss_mb"]
    assert actual_time > 0 and actual_ram > 0  # measured on the real run
    assert cells[2] == "64x64 · 5 f · 2 steps"
    assert cells[4].splitlines()[0] == _formatted(page, "duration", time["value"])
    assert cells[5] == _formatted(page, "duration", actual_time)
    assert cells[7].splitlines()[0] == _formatted(page, "mib", ram["value"])
    assert cells[8] == _formatted(page, "mib", actual_ram)
    errors = page.eval_on_selector_all(
        f"{row} td[data-error]", "(tds) => tds.map((td) => [td.dataset.error, td.dataset.within])"
    )
    for (shown, inside), (estimate, actual) in zip(
        errors, ((time, actual_time), (ram, actual_ram)), strict=True
    ):
        assert float(shown) == pytest.approx(100 * (estimate["value"] - actual) / actual, abs=0.06)
        assert inside == str(estimate["low"] <= actual <= estimate["high"]).lower()


def test_impact_forecast_and_the_configuration_change(generated: Generated, open_page: Any) -> None:
    page = open_page()
    open_dashboard(page, generated.url)
    page.wait_for_selector('#impact-table tr[data-token="vae_tiling"]')
    shown = page.eval_on_selector_all(
        "#impact-table tbody tr", "(trs) => trs.map((t) => t.innerText.split('\\t'))"
    )
    served = httpx.get(f"{generated.url}/api/v1/performance/impact?time_window_hours=24").json()
    assert [(r[0], r[1], r[4]) for r in shown] == [
        (
            i["token"],
            f"{i['model_type']} {i['resolution_class']}",
            f"{i['count_with']} / {i['count_without']}",
        )
        for i in served["optimizations"]
    ]
    assert sum(i["count_with"] for i in served["optimizations"] if i["token"] == "vae_tiling") == 36
    classes = page.eval_on_selector_all(
        "#forecast-table tbody tr", "(trs) => trs.map((t) => t.dataset.class)"
    )
    forecast = httpx.get(f"{generated.url}/api/v1/performance/forecast?time_window_hours=24")
    assert classes == [c["resolution_class"] for c in forecast.json()["classes"]]
    capacity = forecast.json()["capacity"]
    assert capacity["tasks_per_hour"] > 0 and capacity["nodes"] == 2  # history's + the run's
    assert page.inner_text("#forecast-capacity") == (
        f"Capacity {capacity['tasks_per_hour']:.1f} tasks/hour on 2 nodes; queue 0."
    )
    groups = page.eval_on_selector_all(
        "#changes-table tbody tr", "(trs) => trs.map((t) => [t.dataset.group, t.innerText])"
    )
    assert groups, page.inner_text("#changes-empty")
    assert all("tuned_presets.tiny-wan-t2v: not set → tiled" in text for _, text in groups)
    assert {group.split()[0] for group, _ in groups} == {"tiny-wan-t2v"}


def test_without_a_generation_service_the_card_says_so(service: Service, open_page: Any) -> None:
    page = open_page()
    open_dashboard(page, service.url)
    assert page.is_hidden("#predicted-table")
    assert "runs no generation service" in page.inner_text("#predicted-empty")


def test_a_source_that_fails_is_said_in_its_own_card(service: Service, open_page: Any) -> None:
    page = open_page()
    page.route(
        "**/api/v1/performance/impact*",
        lambda route: route.fulfill(
            status=500, json={"error": {"code": "internal", "message": "impact broke"}}
        ),
    )
    open_dashboard(page, service.url)
    assert page.inner_text("#impact-error") == "Cannot read this: impact broke"
    assert page.is_hidden("#impact-table") and page.is_hidden("#impact-empty")
    assert page.is_visible("#forecast-table")  # the other cards are drawn
    assert page.is_hidden("#banner")
