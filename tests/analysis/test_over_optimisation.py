"""Advice against savings that cost time on a GPU that does not need them: sequential offload
or quantisation with GPU memory mostly free, VAE tiling where the decode never nears the limit."""

from __future__ import annotations

from genperf.analysis.recommendations import recommend
from genperf.config import Settings
from genperf.records import PhaseRecord, TaskStatus

from .conftest import history, vary

GPU_MB = 81_920.0


def ids(tasks: list, settings: Settings) -> dict[str, object]:  # type: ignore[type-arg]
    return {r.id: r for r in recommend(tasks, settings)}


def test_sequential_offload_with_memory_mostly_free(settings: Settings) -> None:
    free = history(
        10, optimizations_applied=("offload:sequential",), peak_vram_usage_mb=0.2 * GPU_MB
    )
    rec = ids(free, settings).get("drop_sequential_offload")
    assert rec is not None and rec.affected_count == 10  # type: ignore[attr-defined]
    assert "20%" in rec.evidence  # type: ignore[attr-defined]
    busy = history(
        10, optimizations_applied=("offload:sequential",), peak_vram_usage_mb=0.6 * GPU_MB
    )
    assert "drop_sequential_offload" not in ids(busy, settings)
    plain = history(10, peak_vram_usage_mb=0.2 * GPU_MB)  # no offload: nothing to drop
    assert "drop_sequential_offload" not in ids(plain, settings)


def test_no_saving_is_questioned_once_memory_ran_out(settings: Settings) -> None:
    tasks = history(
        10, optimizations_applied=("offload:sequential",), peak_vram_usage_mb=0.2 * GPU_MB
    )
    tasks = vary(tasks, 0.1, status=TaskStatus.FAILED, error_category="out_of_memory_gpu")
    assert "drop_sequential_offload" not in ids(tasks, settings)


def test_quantisation_with_memory_mostly_free(settings: Settings) -> None:
    tasks = history(
        10, optimizations_applied=("quantization:int8",), peak_vram_usage_mb=0.3 * GPU_MB
    )
    assert "drop_quantization" in ids(tasks, settings)
    tight = history(
        10, optimizations_applied=("quantization:int8",), peak_vram_usage_mb=0.5 * GPU_MB
    )
    assert "drop_quantization" not in ids(tight, settings)


def decode(peak_fraction: float) -> tuple[PhaseRecord, ...]:
    return (
        PhaseRecord("denoise", 0.0, 200.0, peak_vram_mb=0.4 * GPU_MB),
        PhaseRecord("vae_decode", 200.0, 40.0, peak_vram_mb=peak_fraction * GPU_MB),
    )


def test_vae_tiling_where_the_decode_never_nears_the_limit(settings: Settings) -> None:
    roomy = history(10, optimizations_applied=("vae_tiling",), phases=decode(0.10))
    rec = ids(roomy, settings).get("drop_vae_tiling")
    assert rec is not None and rec.affected_count == 10  # type: ignore[attr-defined]
    near = history(10, optimizations_applied=("vae_tiling",), phases=decode(0.30))  # 4x: 120 %
    assert "drop_vae_tiling" not in ids(near, settings)
    untiled = history(10, phases=decode(0.10))
    assert "drop_vae_tiling" not in ids(untiled, settings)
