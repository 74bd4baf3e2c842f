"""The fleet on the dashboard: one row per node, coloured against the targets; a click (or the
node picker) filters the whole page to that node."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from web_support import SEEDS, Service, in_window, open_dashboard, running_service, wait_for_rows

from genperf.testing import make_task

OTHER = "gpu-node-2"
OTHER_TASKS = 3


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with running_service(tmp_path_factory.mktemp("fleet")) as service:
        for i in range(OTHER_TASKS):  # slow: 1.8x the 720p target, so its median is red
            service.store.save_task(
                make_task(
                    task_id=f"elsewhere-{i}",
                    node=OTHER,
                    started_at=service.now - timedelta(minutes=5 + i),
                    generation_time_seconds=540.0,
                )
            )
        service.monitor.flush()  # the server's own samples are stored
        yield service


def fleet_rows(page: Any) -> dict[str, dict[str, str]]:
    rows: list[dict[str, str]] = page.evaluate(
        """() => [...document.querySelectorAll('#fleet-table tbody tr')].map((tr) => ({
            node: tr.dataset.node, state: tr.dataset.state, text: tr.textContent,
            medians: [...tr.querySelectorAll('td.medians .badge')].map((b) => b.className)}))"""
    )
    return {r["node"]: r for r in rows}


def test_one_row_per_node_and_a_click_filters_the_page(fleet: Service, open_page: Any) -> None:
    page = open_page()
    open_dashboard(page, fleet.url)
    page.wait_for_function("() => document.querySelectorAll('#fleet-table tbody tr').length >= 3")
    rows = fleet_rows(page)
    assert set(rows) == {"gpu-node-1", OTHER, "test-node"}  # the seeds ran on test-node
    assert rows["gpu-node-1"]["state"] == "up"  # the server's monitor samples
    assert rows[OTHER]["state"] == "no_samples"
    assert rows[OTHER]["medians"] == ["badge badge-bad"]  # 540 s against 300 s (x1.5: 450)
    options = page.eval_on_selector_all("#node-filter option", "(os) => os.map((o) => o.value)")
    assert options == ["", "gpu-node-1", OTHER, "test-node"]

    page.click(f'#fleet-table tr[data-node="{OTHER}"]')
    rows_shown = wait_for_rows(page, OTHER_TASKS)
    assert {r["task"] for r in rows_shown} == {f"elsewhere-{i}" for i in range(OTHER_TASKS)}
    assert "node=gpu-node-2" in page.url
    assert page.input_value("#node-filter") == OTHER
    page.wait_for_function(
        "(n) => document.querySelector('[data-kpi=\"tasks\"] .kpi-value').textContent === n",
        arg=str(OTHER_TASKS),
    )

    page.select_option("#node-filter", "")
    wait_for_rows(page, len(in_window(SEEDS, 24)) + OTHER_TASKS + 1)  # + the running task
    assert "node=" not in page.url


def test_the_node_in_the_address_is_kept(fleet: Service, open_page: Any) -> None:
    page = open_page()
    open_dashboard(page, f"{fleet.url}?node=test-node")
    rows = wait_for_rows(page, len(in_window(SEEDS, 24)))
    assert OTHER not in {r["task"] for r in rows}
    assert page.input_value("#node-filter") == "test-node"
    selected = page.eval_on_selector_all(
        "#fleet-table tr.selected", "(trs) => trs.map((t) => t.dataset.node)"
    )
    assert selected == ["test-node"]
