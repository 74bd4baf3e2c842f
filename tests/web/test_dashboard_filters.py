"""The time window and the filters change what the page asks for and what it shows."""

from __future__ import annotations

from web_support import (
    RUNNING_TASK_ID,
    SEEDS,
    chart_datasets,
    in_window,
    open_dashboard,
    resolution_class_of,
    wait_for_rows,
)

from genperf.records import TaskStatus


def _completed_720p(seeds):
    return sorted(
        s.fields["generation_time_seconds"]
        for s in seeds
        if resolution_class_of(s) == "720p" and s.status is TaskStatus.COMPLETED
    )


def test_the_model_filter_shows_only_that_model(service, open_page):
    page = open_page()
    open_dashboard(page, service.url)
    options = page.eval_on_selector_all("#model-filter option", "(os) => os.map((o) => o.value)")
    assert options == ["", "i2v-5B", "t2v-A14B"]  # learnt from the window's tasks

    page.select_option("#model-filter", "i2v-5B")
    expected = in_window(SEEDS, 24, model_type="i2v-5B")
    rows = wait_for_rows(page, len(expected))
    assert {r["model"] for r in rows} == {"i2v-5B"}
    assert {r["task"] for r in rows} == {s.name for s in expected}
    classes = page.eval_on_selector_all(
        "#gentime-charts figure", "(fs) => fs.map((f) => f.dataset.class)"
    )
    assert classes == ["480p"]
    assert "model=i2v-5B" in page.url
    kpi = page.text_content('[data-kpi="tasks"] .kpi-value')
    assert kpi == str(len(expected))

    page.select_option("#model-filter", "")
    rows = wait_for_rows(page, len(in_window(SEEDS, 24)) + 1)
    assert {r["model"] for r in rows} == {"i2v-5B", "t2v-A14B"}
    assert "model=" not in page.url


def test_success_only_hides_failures(service, open_page):
    page = open_page()
    open_dashboard(page, service.url)
    page.check("#success-filter")
    expected = in_window(SEEDS, 24, success_only=True)
    rows = wait_for_rows(page, len(expected))
    assert {r["status"] for r in rows} == {"completed"}
    data = chart_datasets(page, '#gentime-charts figure[data-class="720p"]')
    assert "failed (time to failure)" not in data
    assert sorted(data["720p completed"]["ys"]) == _completed_720p(expected)
    assert page.text_content('[data-kpi="success"] .kpi-value') == "100%"
    assert "success=1" in page.url


def test_the_time_window_selector(service, open_page):
    page = open_page()
    open_dashboard(page, service.url)
    assert page.get_attribute('#window-buttons [data-hours="24"]', "aria-pressed") == "true"

    page.click('#window-buttons [data-hours="1"]')
    hour = in_window(SEEDS, 1)
    rows = wait_for_rows(page, len(hour) + 1)
    assert {r["task"] for r in rows} == {s.name for s in hour} | {RUNNING_TASK_ID}
    assert page.get_attribute('#window-buttons [data-hours="1"]', "aria-pressed") == "true"
    assert page.text_content("#window-label") == "hour"
    assert "window=1" in page.url

    page.click('#window-buttons [data-hours="168"]')
    week = in_window(SEEDS, 168)
    rows = wait_for_rows(page, len(week) + 1)
    data = chart_datasets(page, '#gentime-charts figure[data-class="720p"]')
    assert sorted(data["720p completed"]["ys"]) == _completed_720p(week)
    assert len(week) > len(in_window(SEEDS, 24))  # the older tasks are in
    assert page.text_content("#window-label") == "7 days"


def test_filters_survive_a_reload_through_the_url(service, open_page):
    page = open_page()
    open_dashboard(page, f"{service.url}/?window=1&model=t2v-A14B&success=1")
    expected = in_window(SEEDS, 1, model_type="t2v-A14B", success_only=True)
    rows = wait_for_rows(page, len(expected))
    assert {r["task"] for r in rows} == {s.name for s in expected}
    assert page.is_checked("#success-filter")
    assert page.input_value("#model-filter") == "t2v-A14B"
    assert page.get_attribute('#window-buttons [data-hours="1"]', "aria-pressed") == "true"
