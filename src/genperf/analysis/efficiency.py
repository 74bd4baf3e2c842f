"""Resource efficiency in [0, 1]: did the hardware do useful work, on time, without running out?

The formula (every component is in [0, 1], so the score is too)::

    efficiency = S * (0.5 * T + 0.3 * U + 0.2 * M) / (sum of the weights of the known terms)

    S  success      completed / finished tasks: a failed run wasted all it used.
    T  on time      mean over completed tasks with a target of min(1, target / generation time);
                    targets are ``max_generation_time_<class>``. A task on or under target
                    scores 1, one twice as slow 0.5.
    U  GPU busy     mean GPU utilisation / 100 over tasks that report it: a GPU waiting on the
                    CPU, the disk or offload transfers is hardware paid for and not used.
    M  headroom     1 - share of tasks whose peak VRAM or RAM reached the *maximum* band (95 % /
                    90 %). Memory used below that line is never penalised: VRAM is there to be
                    used, and a high peak only costs when it risks an out-of-memory failure.

Unknown terms (no target for the class, no GPU, no memory data) are left out and the weights
renormalised; with no known term besides S the score is None ("no data"), never a guess.
``missing`` names each term left out and why, and ``known_weight`` says how much of the formula
the score rests on (1.0: all of it), so a score on a host without a GPU, where it rests on
on-time and headroom alone, is never read as the full one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from genperf.analysis.stats import finite, ratio
from genperf.analysis.window import TaskSource, as_window
from genperf.config import Settings
from genperf.records import JsonFields

WEIGHTS = {"on_time": 0.5, "gpu_utilization": 0.3, "memory_headroom": 0.2}
FORMULA = "success * (0.5*on_time + 0.3*gpu_utilization + 0.2*memory_headroom) / known weights"


@dataclass(frozen=True, slots=True)
class Efficiency(JsonFields):
    """The score and its parts (None: unknown)."""

    score: float | None
    success: float | None
    on_time: float | None
    gpu_utilization: float | None
    memory_headroom: float | None
    formula: str = FORMULA
    known_weight: float = 0.0
    missing: Mapping[str, str] = field(default_factory=dict)


def _clamp(x: float | None) -> float | None:
    x = finite(x)
    return None if x is None else min(1.0, max(0.0, x))


def resource_efficiency(tasks: TaskSource, settings: Settings) -> Efficiency:
    """The window's efficiency by the formula in this module's docstring.

    Args:
        tasks: the window's task records, or a prepared Window.
        settings: generation-time targets and memory bands come from here.
    """
    t = as_window(tasks, settings).tally
    success = _clamp(ratio(t.completed, t.tasks))
    parts = {
        "on_time": _clamp(ratio(t.time_score_sum, t.target_n)),
        "gpu_utilization": _clamp(ratio(t.util_sum, t.util_n * 100.0)),
        "memory_headroom": _clamp(1.0 - t.memory_over / t.memory_n if t.memory_n else None),
    }
    known = {k: v for k, v in parts.items() if v is not None}
    why = {
        "on_time": "no completed task of a class with a generation-time target"
        if t.completed
        else "no completed task",
        "gpu_utilization": "no GPU utilisation readings (no GPU, or GPU monitoring off)",
        "memory_headroom": "no peak memory readings",
    }
    score = None
    if success is not None and known:
        weight = sum(WEIGHTS[k] for k in known)
        score = _clamp(success * sum(WEIGHTS[k] * v for k, v in known.items()) / weight)
    return Efficiency(
        score=score,
        success=success,
        on_time=parts["on_time"],
        gpu_utilization=parts["gpu_utilization"],
        memory_headroom=parts["memory_headroom"],
        known_weight=round(sum(WEIGHTS[k] for k in known), 6),
        missing={k: why[k] for k, v in parts.items() if v is None},
    )
