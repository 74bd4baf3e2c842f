"""Auto-tune on real out-of-memory failures of the tiny Wan2.2 model in a worker subprocess.

832x480, 17 frames under 64 MiB of address-space headroom runs out of memory in the VAE
decode (as shared/reference's ``--fail oom``), with or without VAE tiling: the service retries
once with the next lighter preset, both runs are recorded and linked, and the next request of
that configuration does not start with the preset that ran out.

Where VAE tiling does fit: at 832x480 the untiled decode holds full-frame buffers (about 800
MiB above the loaded model, measured) and the tiled one 256-pixel tiles (about 260 MiB). The
headroom is put halfway between the two, measured on this machine, so the default preset
really runs out of memory and the one auto-tune picks really completes.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from genperf.generation import TINY_WAN, GenerationService, ModelRegistry
from genperf.generation.isolated import IsolatedRunner
from genperf.generation.request import GenerationRequest, RequestStatus
from genperf.monitor import PerformanceMonitor
from genperf.records import TaskRecord

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:unclosed file.*safetensors:ResourceWarning"),
]


@pytest.fixture
def tuned(monitor: PerformanceMonitor) -> Iterator[GenerationService]:
    svc = GenerationService(monitor, poll_seconds=0.1, auto_tune=True)
    svc.start()
    yield svc
    svc.close()


def test_an_out_of_memory_is_retried_once_lighter_and_not_repeated(tuned, monitor):
    first = tuned.submit(TINY_WAN, "a cat", "832x480", 4, 17, memory_headroom_mib=64)
    assert tuned.wait_idle(900)
    task = tuned.get(first)
    assert task.status is RequestStatus.FAILED
    run, retry = task.tuning
    assert run.preset is None and "genperf tune" in run.reason  # no history: as configured
    assert retry.preset == "vae_tiling" and retry.retry_of_run_id == run.run_id
    assert "retry after running out of memory" in retry.reason
    assert task.request.run_id == retry.run_id
    for decision, tokens in ((run, ()), (retry, ("vae_tiling",))):
        record = monitor.store.get_run(decision.run_id)
        assert record.error_category == "out_of_memory_host"
        assert tuple(t for t in record.optimizations_applied if t == "vae_tiling") == tokens
    # The same configuration again: default and tiling ran out here; the choice says so.
    # Stopped first, so the worker cannot claim the next request before this test does.
    tuned.stop(0)  # look at the choice only: run it no more
    second = tuned.submit(TINY_WAN, "a cat", "832x480", 4, 17, memory_headroom_mib=64)
    choice = tuned._choose(tuned.queue.claim_next())
    assert second and choice.preset is not None
    assert choice.preset.name == "vae_tiling+vae_slicing"
    assert "ran out of memory here with default, vae_tiling" in choice.reason


def _growth(record: TaskRecord) -> float:
    """What the generation added to its process's peak above the loaded model, in MiB."""
    encode = record.phase("text_encode")
    assert record.success and record.peak_process_rss_mb and encode and encode.peak_ram_mb
    return record.peak_process_rss_mb - encode.peak_ram_mb


def test_auto_tune_picks_the_preset_that_fits_where_the_default_runs_out(tuned, monitor):
    size, steps, frames = (832, 480), 2, 5
    runner = IsolatedRunner(monitor, ModelRegistry(monitor.settings))

    def measured(preset: str) -> TaskRecord:
        """One unlimited run in a worker subprocess (recorded in the history like any)."""
        request = GenerationRequest(
            f"measure-{preset}", TINY_WAN, "a cat", *size, steps, frames, preset=preset
        )
        return runner.run(request, lambda run_id: None)

    default, tiled = _growth(measured("default")), _growth(measured("vae_tiling"))
    assert default > 2 * tiled, (default, tiled)  # the premise: tiling saves most of it
    headroom = round((default + tiled) / 2)

    first = tuned.submit(TINY_WAN, "a cat", "832x480", steps, frames, memory_headroom_mib=headroom)
    assert tuned.wait_idle(900)
    task = tuned.get(first)
    assert task.status is RequestStatus.COMPLETED, task.tuning
    run, retry = task.tuning
    failed = monitor.store.get_run(run.run_id)
    assert (failed.error_category, failed.failed_phase) == ("out_of_memory_host", "vae_decode")
    assert "vae_tiling" not in failed.optimizations_applied  # the default preset ran out
    assert (retry.preset, retry.retry_of_run_id) == ("vae_tiling", run.run_id)
    assert task.metrics.success and "vae_tiling" in task.metrics.optimizations_applied

    # The same request again: auto-tune starts with the preset that fits, which completes.
    second = tuned.submit(TINY_WAN, "a cat", "832x480", steps, frames, memory_headroom_mib=headroom)
    assert tuned.wait_idle(900)
    task = tuned.get(second)
    (choice,) = task.tuning
    assert choice.preset == "vae_tiling"
    assert "ran out of memory here with default" in choice.reason
    assert task.status is RequestStatus.COMPLETED
    assert task.metrics.success and "vae_tiling" in task.metrics.optimizations_applied
