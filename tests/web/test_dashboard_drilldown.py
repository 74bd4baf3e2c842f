"""The drill-down of one task: phases, steps, peaks, optimisations and, for a failure, the
error and its recovery suggestions; for a running task, the phase it is in."""

from __future__ import annotations

from web_support import (
    OOM_SUGGESTIONS,
    PHASES_720P,
    RUNNING_PHASE,
    RUNNING_TASK_ID,
    chart_datasets,
    open_dashboard,
)


def _open(page, task_id):
    page.click(f'#tasks-table tbody button[title^="{task_id}:"]')
    page.wait_for_selector("#task-dialog[open] #detail-overview")
    return page.locator("#task-dialog")


def test_a_failed_task_shows_its_error_and_what_to_do(service, open_page):
    page = open_page()
    open_dashboard(page, service.url)
    dialog = _open(page, "t2v-720p-oom")
    title = page.text_content("#task-dialog-title")
    assert "t2v-720p-oom" in title and "Failed" in title
    failure = dialog.locator("#detail-failure")
    assert "GPU out of memory" in failure.text_content()
    assert "denoise" in failure.locator("dl").text_content()
    assert (
        failure.locator(".error-message").text_content()
        == "CUDA out of memory. Tried to allocate 2.50 GiB"
    )
    assert failure.locator(".suggestions li").all_text_contents() == list(OOM_SUGGESTIONS)

    phases = dialog.locator("#detail-phases li")
    assert phases.count() == 3
    assert "failed here" in phases.nth(2).text_content()
    steps = chart_datasets(page, "#chart-steps")
    assert len(steps["step time"]["ys"]) == 21
    peaks = dialog.locator("#detail-peaks").text_content()
    assert "79.3 GiB (100% of 79.6 GiB)" in peaks

    page.click("#task-dialog-close")
    page.wait_for_selector("#task-dialog:not([open])", state="attached")


def test_a_completed_task_shows_phases_steps_peaks_and_optimisations(service, open_page):
    page = open_page()
    open_dashboard(page, service.url)
    dialog = _open(page, "t2v-720p-03")
    assert "Succeeded" in page.text_content("#task-dialog-title")
    assert dialog.locator("#detail-failure").count() == 0
    names = dialog.locator("#detail-phases li").evaluate_all(
        "(ls) => ls.map((l) => l.dataset.phase)"
    )
    assert names == [p.name for p in PHASES_720P]
    denoise = dialog.locator('#detail-phases li[data-phase="denoise"]').text_content()
    assert "3 min 20 s" in denoise and "VRAM 56.6 GiB" in denoise
    steps = chart_datasets(page, "#chart-steps")
    assert len(steps["step time"]["ys"]) == 40
    assert "40 steps" in dialog.locator("#detail-steps").text_content()
    chips = dialog.locator("#detail-optimisations .chip").all_text_contents()
    assert chips == ["dtype:bf16", "vae_tiling", "attention:sdpa"]
    overview = dialog.locator("#detail-overview").text_content()
    assert "1280x720 (720p)" in overview and "4 min 56 s" in overview
    page.keyboard.press("Escape")
    page.wait_for_selector("#task-dialog:not([open])", state="attached")


def test_a_running_task_shows_its_current_phase(service, open_page):
    page = open_page()
    open_dashboard(page, service.url)
    page.click("#running-table tbody button")
    page.wait_for_selector("#task-dialog[open] #detail-overview")
    title = page.text_content("#task-dialog-title")
    assert RUNNING_TASK_ID in title and "Running" in title and f"phase: {RUNNING_PHASE}" in title
    assert "Running for" in page.text_content("#detail-overview")
    chips = page.locator("#detail-optimisations .chip").all_text_contents()
    assert chips == ["dtype:bf16", "vae_tiling"]
