"""Auto-tune on real out-of-memory failures of the tiny Wan2.2 model in a worker subprocess.

832x480, 17 frames under 64 MiB of address-space headroom runs out of memory in the VAE
decode (as shared/reference's ``--fail oom``), with or without VAE tiling: the service retries
once with the next lighter preset, both runs are recorded and linked, and the next request of
that configuration does not start with the preset that ran out.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from genperf.generation import TINY_WAN, GenerationService
from genperf.generation.request import RequestStatus
from genperf.monitor import PerformanceMonitor

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
