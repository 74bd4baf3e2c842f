"""The dashboard over a real server and store: live status, running tasks, the charts (their
points, reference lines, axes and tooltips), bottlenecks, recommendations, benchmarks and the
recent tasks, each checked against what was stored and what the API answers."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import httpx
from web_support import (
    RUNNING_PHASE,
    RUNNING_TASK_ID,
    SEEDS,
    chart_datasets,
    in_window,
    open_dashboard,
    resolution_class_of,
    task_rows,
)

from genperf.records import TaskStatus

P = "/api/v1/performance"


def _api(service, path, **params):
    return httpx.get(f"{service.url}{P}/{path}", params=params, timeout=10).json()


def test_generation_time_charts_have_a_point_per_task_and_the_target_lines(service, open_page):
    page = open_page()
    open_dashboard(page, service.url)
    seeds = in_window(SEEDS, 24)
    shown = page.eval_on_selector_all(
        "#gentime-charts figure", "(fs) => fs.map((f) => f.dataset.class)"
    )
    assert shown == ["480p", "720p", "1080p"]  # every class of the window, by size
    targets = {"720p": 300.0, "1080p": 900.0}  # the spec's defaults; 480p has none
    for cls in shown:
        data = chart_datasets(page, f'#gentime-charts figure[data-class="{cls}"]')
        assert data is not None
        of_class = [s for s in seeds if resolution_class_of(s) == cls]
        completed = [
            s.fields["generation_time_seconds"]
            for s in of_class
            if s.status is TaskStatus.COMPLETED
        ]
        failed = [
            s.fields["generation_time_seconds"]
            for s in of_class
            if s.status is not TaskStatus.COMPLETED and s.fields.get("generation_time_seconds")
        ]
        assert sorted(data[f"{cls} completed"]["ys"]) == sorted(completed)
        if failed:
            assert sorted(data["failed (time to failure)"]["ys"]) == sorted(failed)
        lines = {label: d["ys"] for label, d in data.items() if d["role"] == "line"}
        if cls in targets:
            target = targets[cls]
            assert sorted(lines.values()) == [[target, target], [1.5 * target, 1.5 * target]]
            assert any(label.startswith("target ") for label in lines)
            assert any(label.startswith("acceptable ") for label in lines)
        else:
            assert lines == {}


def test_charts_have_axes_with_units(service, open_page):
    page = open_page()
    open_dashboard(page, service.url)
    axes = page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('figure.chart')]
            .filter((f) => f.querySelector('canvas') && Chart.getChart(f.querySelector('canvas')))
            .map((f) => {
              const c = Chart.getChart(f.querySelector('canvas'));
              return [f.id || f.dataset.class, {
                x: c.options.scales.x.title.text, y: c.options.scales.y.title.text,
                xTicks: c.scales.x.ticks.map((t) => t.label),
                yTicks: c.scales.y.ticks.map((t) => t.label),
              }];
            }))"""
    )
    assert set(axes) == {"480p", "720p", "1080p", "chart-success", "chart-vram", "chart-load"}
    for name, axis in axes.items():
        assert axis["x"] == "Started (local time)", name
        assert all(":" in t or t[0].isdigit() for t in axis["xTicks"] if t), axis["xTicks"]
        assert len(axis["xTicks"]) >= 2
    assert axes["720p"]["y"] == "Generation time"
    assert any(t.endswith("min") for t in axes["720p"]["yTicks"]), axes["720p"]["yTicks"]
    assert axes["chart-vram"]["y"] == "Peak VRAM (GiB)"
    assert any(t.endswith("GiB") for t in axes["chart-vram"]["yTicks"])
    assert axes["chart-success"]["y"].startswith("Succeeded (%")
    assert all(t.endswith("%") for t in axes["chart-success"]["yTicks"])
    assert any(t.endswith(" s") for t in axes["chart-load"]["yTicks"])


def test_success_vram_and_load_charts_count_their_points(service, open_page):
    page = open_page()
    open_dashboard(page, service.url)
    seeds = in_window(SEEDS, 24)
    # success rate: one point per hour (the page runs in UTC) with a finished task
    hours = {
        int((service.now - timedelta(minutes=s.minutes_ago)).timestamp() // 3600) for s in seeds
    }
    success = chart_datasets(page, "#chart-success")
    assert len(success["success rate"]["ys"]) == len(hours)
    assert success["target 98%"]["ys"] == [98.0, 98.0]
    assert success["acceptable 95%"]["ys"] == [95.0, 95.0]

    vram = chart_datasets(page, "#chart-vram")
    completed = [s for s in seeds if s.status is TaskStatus.COMPLETED]
    assert len(vram["completed"]["ys"]) == len(completed)
    assert len(vram["failed"]["ys"]) == len(seeds) - len(completed)
    gpu_line = next(d for label, d in vram.items() if label.startswith("GPU memory"))
    assert gpu_line["ys"][0] == 81_559 / 1024

    load = chart_datasets(page, "#chart-load")
    with_load = [s for s in seeds if s.fields.get("model_load_time_seconds", 20.0) is not None]
    assert len(load["model load"]["ys"]) == len(with_load)
    assert page.get_attribute("#chart-load", "data-points") == str(len(with_load))


def test_a_point_has_a_tooltip_and_opens_its_task(service, open_page):
    page = open_page()
    open_dashboard(page, service.url)
    figure = '#gentime-charts figure[data-class="1080p"]'
    point = page.evaluate(
        """(sel) => {
          const canvas = document.querySelector(sel + ' canvas');
          const chart = Chart.getChart(canvas);
          const i = chart.data.datasets.findIndex((d) => d.genperfRole === 'completed');
          const el = chart.getDatasetMeta(i).data[0];
          const box = canvas.getBoundingClientRect();
          const task = chart.data.datasets[i].data[0].task.task_id;
          return {x: box.left + el.x, y: box.top + el.y, task};
        }""",
        figure,
    )
    page.mouse.move(point["x"], point["y"])
    tooltip = page.wait_for_function(
        """(sel) => {
          const t = Chart.getChart(document.querySelector(sel + ' canvas')).tooltip;
          return t.opacity > 0 && t.body && t.body.length
            ? {title: t.title, lines: t.body.flatMap((b) => b.lines), footer: t.footer} : null;
        }""",
        arg=figure,
    ).json_value()
    assert tooltip["lines"][0].startswith("1080p took ")
    assert "min" in tooltip["lines"][0]
    assert tooltip["footer"][0].startswith("Task ")
    page.mouse.click(point["x"], point["y"])
    page.wait_for_selector("#task-dialog[open]")
    assert point["task"] in page.text_content("#task-dialog-title")


def test_live_status_shows_host_and_each_gpu(service, open_page):
    page = open_page()
    open_dashboard(page, service.url)
    assert "42%" in page.text_content('[data-metric="cpu"]')
    assert "32 cores" in page.text_content('[data-metric="cpu"]')
    assert "35%" in page.text_content('[data-metric="ram"]')
    disk = page.text_content('[data-metric="disk"]')
    assert "75%" in disk and "free on /srv/models" in disk
    gpus = page.eval_on_selector_all("#gpu-status .gpu", "(gs) => gs.map((g) => g.dataset.metric)")
    assert gpus == ["gpu-0", "gpu-1"]
    assert "60.0 GiB / 79.6 GiB" in page.text_content('[data-metric="gpu-0-vram"]')
    assert "97%" in page.text_content('[data-metric="gpu-0-util"]')
    assert "71 °C" in page.text_content('[data-metric="gpu-0-temp"]')
    assert "34 °C" in page.text_content('[data-metric="gpu-1-temp"]')
    assert page.get_attribute("#live-indicator", "data-state") == "live"
    assert page.get_attribute('[data-metric="gpu-0-vram"] [role="meter"]', "aria-valuenow") == "75"


def test_running_tasks_show_their_phase(service, open_page):
    page = open_page()
    open_dashboard(page, service.url)
    row = page.locator("#running-table tbody tr")
    assert row.count() == 1
    assert RUNNING_TASK_ID in row.locator("button").get_attribute("title")
    assert row.locator(".badge").text_content() == RUNNING_PHASE
    assert "/ 40" in row.text_content()


def test_recent_tasks_show_outcome_and_error_category(service, open_page):
    page = open_page()
    open_dashboard(page, service.url)
    rows = task_rows(page)
    seeds = in_window(SEEDS, 24)
    assert len(rows) == len(seeds) + 1  # and the running one
    assert rows[0]["task"] == RUNNING_TASK_ID  # newest first
    assert Counter(r["status"] for r in rows) == Counter(
        [s.status.value for s in seeds] + ["running"]
    )
    by_task = {r["task"]: r["text"] for r in rows}
    assert "GPU out of memory in denoise" in by_task["t2v-720p-oom"]
    assert "Failed" in by_task["t2v-720p-oom"]
    assert "Model load error in model_load" in by_task["t2v-720p-load-error"]
    assert "Timeout in denoise" in by_task["t2v-1080p-timeout"]
    assert "Interrupted" in by_task["t2v-720p-interrupted"]
    assert "Succeeded" in by_task["t2v-720p-00"]
    assert page.text_content("#tasks-count") == f"{len(rows)} tasks"


def test_bottlenecks_recommendations_and_benchmarks_follow_the_analysis(service, open_page):
    page = open_page()
    open_dashboard(page, service.url)
    analysis = _api(service, "analysis", time_window_hours=24)

    resources = page.eval_on_selector_all(
        "#bottleneck-list li", "(ls) => ls.map((l) => l.dataset.resource)"
    )
    assert resources == [b["resource"] for b in analysis["bottleneck_analysis"]["bottlenecks"]]
    checks = page.eval_on_selector_all(
        "#bottleneck-checks li", "(ls) => ls.map((l) => l.dataset.check)"
    )
    assert checks == list(analysis["bottleneck_analysis"]["checks"])

    recs = page.eval_on_selector_all(
        "#recs-list li", "(ls) => ls.map((l) => [l.dataset.id, l.dataset.priority])"
    )
    assert recs, "the seeded failures and slow tasks call for advice"
    assert recs == [[r["id"], r["priority"]] for r in analysis["optimization_recommendations"]]
    rank = {"high": 0, "medium": 1, "low": 2}
    assert [rank[p] for _, p in recs] == sorted(rank[p] for _, p in recs)

    rows = page.eval_on_selector_all(
        "#bench-table tbody tr",
        """(rs) => rs.map((r) => [r.dataset.benchmark, r.dataset.status,
            getComputedStyle(r.querySelector('td.value')).backgroundColor])""",
    )
    assert [(n, s) for n, s, _ in rows] == [
        (b["name"], b["status"]) for b in analysis["benchmarks"]
    ]
    colour = {}
    # Beyond the limit is one grade whichever way is worse: "over_limit" (usage, time) and
    # "below_minimum" (success rate, efficiency) share the alarm colour.
    beyond = {"over_limit": "beyond_limit", "below_minimum": "beyond_limit"}
    for _, status, background in rows:
        colour.setdefault(beyond.get(status, status), set()).add(background)
    assert all(len(c) == 1 for c in colour.values())  # one colour per status ...
    assert len({next(iter(c)) for c in colour.values()}) == len(colour)  # ... each its own
    assert len(colour) >= 3, colour

    failures = page.eval_on_selector_all(
        "#failures-list li.failure", "(ls) => ls.map((l) => l.dataset.category)"
    )
    assert failures == [g["category"] for g in analysis["failures"]["groups"]]


def test_a_loopback_user_without_tokens_is_admin_and_sees_export(service, open_page):
    page = open_page()
    open_dashboard(page, service.url)
    page.wait_for_selector("body[data-role='admin']")
    assert page.is_visible("#export-json") and page.is_visible("#export-csv")
    assert not page.is_visible("#sign-out")  # no token to forget


def test_the_status_bars_use_the_servers_bands(service, open_page):
    """The CPU and RAM bands come from the server's targets (GET /benchmarks), not from a
    copy of the config defaults in the page."""
    page = open_page()
    open_dashboard(page, service.url)
    targets = _api(service, "benchmarks")["targets"]
    for metric, key in (("cpu", "cpu_usage_percent"), ("ram", "ram_usage_percent")):
        b = targets[key]
        title = page.get_attribute(f'.tile[data-metric="{metric}"] .bar', "title")
        expected = f"optimal < {b['optimal']:g}%, acceptable < {b['acceptable']:g}%, "
        assert title == expected + f"limit {b['maximum']:g}%"
