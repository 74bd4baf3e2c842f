"""Auto-tune: for each request, the fastest preset predicted to fit memory and the time target.

Each preset is predicted from the history (:meth:`PerformanceMonitor.predict` with the
preset's tokens). A preset fits when the top of its 90 % interval of peak memory is within
what the request may use: for a request with ``memory_headroom_mib`` (a worker subprocess
whose address space may grow by that much once the model is loaded), the memory the
generation adds above the loaded model; otherwise the GPU's free VRAM, or on a CPU service
the host's available RAM plus what this process holds. Among presets that fit, the fastest
that meets the resolution class's time target wins; if none meets it, the fastest that fits.
None fits: the lightest preset. The history cannot predict any preset: the request runs as
it is, and the reason says which runs would help (``genperf tune``).

After an out-of-memory, :func:`next_lighter` gives the preset to retry with: the next on the
ladder that saves memory on this request (VAE slicing alone only splits a batch, and a
request is one video, so it is skipped).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

from genperf import optimizations as opt
from genperf.generation.presets import PRESETS, Preset
from genperf.generation.request import GenerationRequest
from genperf.monitor import PerformanceMonitor
from genperf.records import MIB, resolution_class
from genperf.storage.base import TaskQuery

logger = logging.getLogger("genperf.generation")


@dataclass(frozen=True, slots=True)
class Choice:
    """The preset a request runs with, and why."""

    preset: Preset | None  # None: as the pipeline is (the history could not say)
    reason: str


def memory_limit_mb(monitor: PerformanceMonitor, request: GenerationRequest) -> float | None:
    """What the request may use, in MiB (see the module's docstring); None if unknown."""
    if request.memory_headroom_mib is not None:
        return float(request.memory_headroom_mib)
    sample = monitor.current_sample()
    gpu = sample.busiest_gpu
    if gpu is not None and gpu.memory_total_bytes and gpu.memory_used_bytes is not None:
        return (gpu.memory_total_bytes - gpu.memory_used_bytes) / MIB
    if sample.ram_total_bytes is not None and sample.ram_used_bytes is not None:
        held = sample.process_rss_bytes or 0
        return (sample.ram_total_bytes - sample.ram_used_bytes + held) / MIB
    return None


def choose(
    monitor: PerformanceMonitor,
    request: GenerationRequest,
    candidates: Sequence[Preset],
) -> Choice:
    """The fastest preset predicted to fit (see the module's docstring)."""
    limit = memory_limit_mb(monitor, request)
    targets = monitor.settings.performance_thresholds.generation_time_targets()
    target = targets.get(resolution_class(request.resolution))
    isolated = request.memory_headroom_mib is not None
    fits: list[tuple[float, Preset, bool]] = []
    unanswered: list[str] = []
    too_big: list[str] = []
    ran_out = out_of_memory_before(monitor, request)
    for p in candidates:
        if frozenset(p.tokens) in ran_out:  # measured, not predicted: it ran out here before
            too_big.append(p.name)
            continue
        prediction = monitor.predict(
            request.model_type,
            request.resolution,
            request.frames,
            request.steps,
            optimizations=p.tokens,
        )
        time = prediction.generation_time_seconds
        if not prediction.answerable or time is None:
            unanswered.append(p.name)
            continue
        peak = (
            prediction.peak_ram_growth_mb
            if isolated
            else prediction.peak_vram_mb or prediction.peak_ram_mb
        )
        if limit is not None and (peak is None or peak.high > limit):
            too_big.append(p.name)
            continue
        fits.append((time.value, p, target is None or time.value <= target))
    where = f"{limit:.0f} MiB" if limit is not None else "unknown memory"
    if fits:
        on_target = [f for f in fits if f[2]]
        value, chosen, met = min(on_target or fits, key=lambda f: f[0])
        reason = f"{chosen.name}: fastest preset predicted to fit {where} ({value:.1f} s"
        reason += ", within the time target)" if met and target else ")"
        if not met:
            reason += f"; none is predicted within the {target:g} s target"
        if too_big:
            reason += f"; predicted not to fit: {', '.join(too_big)}"
        return Choice(chosen, reason)
    if ran_out:
        # It ran out of memory here before: one step lighter than the lightest that did,
        # predicted or not (measured beats predicted).
        tried = [p for p in candidates if frozenset(p.tokens) in ran_out]
        lighter = next_lighter(tried[-1].name, candidates) if tried else None
        if lighter is not None:
            return Choice(
                lighter,
                f"{lighter.name}: this configuration ran out of memory here with "
                f"{tried[-1].name}; the next lighter preset",
            )
    if too_big:
        lightest = candidates[-1]
        why = f"{lightest.name}: the lightest preset; "
        if ran_out:
            names = ", ".join(p.name for p in candidates if frozenset(p.tokens) in ran_out)
            why += f"this configuration ran out of memory here with {names}"
        else:
            why += f"no preset is predicted to fit {where}"
        return Choice(lightest, why)
    return Choice(
        None,
        "no preset can be predicted for this request yet (too little history: "
        f"{', '.join(unanswered)}); ran as configured. `genperf tune` measures them",
    )


def out_of_memory_before(
    monitor: PerformanceMonitor, request: GenerationRequest, limit: int = 500
) -> set[frozenset[str]]:
    """The optimisation sets that ran out of memory on this node for this very configuration
    (model, resolution, frames, steps) and never succeeded since: the same configuration
    does not run out of memory twice."""
    store = monitor.store
    if store is None:
        return set()
    from genperf.prediction import tunable

    query = TaskQuery(model_type=request.model_type, node=monitor.node, finished_only=True)
    failed: set[frozenset[str]] = set()
    succeeded: set[frozenset[str]] = set()
    for r in store.query_tasks(replace(query, newest_first=True, limit=limit)):
        same = (r.resolution, r.frames, r.steps) == (
            request.resolution,
            request.frames,
            request.steps,
        )
        if not same:
            continue
        tokens = tunable(r.optimizations_applied)
        if r.success:
            succeeded.add(tokens)
        elif (r.error_category or "").startswith("out_of_memory") and tokens not in succeeded:
            failed.add(tokens)  # newest first: a later success already cleared it
    return failed


def next_lighter(current: str | None, candidates: Sequence[Preset] = PRESETS) -> Preset | None:
    """The preset to retry with after an out-of-memory under ``current`` (None: default)."""
    names = [p.name for p in candidates]
    start = names.index(current) + 1 if current in names else 1
    saves = _savers(_preset_named(current, candidates))
    for p in candidates[start:]:
        if _savers(p) > saves:
            return p
    return None


def _preset_named(name: str | None, candidates: Sequence[Preset]) -> Preset | None:
    return next((p for p in candidates if p.name == name), None)


def _savers(p: Preset | None) -> frozenset[str]:
    """The tokens of a preset that save memory on a single video (not slicing a batch)."""
    return frozenset(p.tokens) - {opt.VAE_SLICING} if p is not None else frozenset()
