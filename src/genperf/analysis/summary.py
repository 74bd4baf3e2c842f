"""Summary of a window: counts, success rate, generation and load times, and a breakdown.

Totals come from the exact tally. Medians and p95s, and the breakdown by model type x
resolution class x optimisation set, come from the window's tasks; when those are a sample
(large SQL stores), ``estimated`` is True and breakdown counts are scaled to the window.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from genperf import optimizations as opt
from genperf.analysis.stats import finite, mean, quantile, ratio
from genperf.analysis.window import TaskSource, as_window
from genperf.config import Settings
from genperf.records import JsonFields, TaskRecord, TaskStatus

ALL = "*"


@dataclass(frozen=True, slots=True)
class GroupSummary(JsonFields):
    """One cell of the breakdown. ``"*"`` in a key field means "all"."""

    model_type: str
    resolution_class: str
    optimizations: str  # the optimisation set, e.g. "dtype:bf16+vae_tiling", or "none"
    task_count: int
    success_rate: float | None
    average_generation_time: float | None
    median_generation_time: float | None
    p95_generation_time: float | None
    average_model_load_time: float | None


@dataclass(frozen=True, slots=True)
class Summary(JsonFields):
    """The window at a glance. Times are seconds, of completed tasks; None means no data."""

    task_count: int
    completed: int
    failed: int
    interrupted: int
    success_rate: float | None
    average_generation_time: float | None
    median_generation_time: float | None
    p95_generation_time: float | None
    min_generation_time: float | None
    max_generation_time: float | None
    average_model_load_time: float | None
    tasks_over_target: int  # completed tasks slower than their class's time target
    tasks_over_acceptable: int  # ... slower than acceptable (the factor x the target)
    by_resolution: tuple[GroupSummary, ...]
    breakdown: tuple[GroupSummary, ...]
    estimated: bool  # quantiles and breakdown from a sample of the window


def _group(tasks: Sequence[TaskRecord], key: tuple[str, str, str], scale: float) -> GroupSummary:
    times = [
        t.generation_time_seconds
        for t in tasks
        if t.status is TaskStatus.COMPLETED and t.generation_time_seconds is not None
    ]
    loads = [t.model_load_time_seconds for t in tasks if t.model_load_time_seconds is not None]
    completed = sum(t.status is TaskStatus.COMPLETED for t in tasks)
    return GroupSummary(
        model_type=key[0],
        resolution_class=key[1],
        optimizations=key[2],
        task_count=round(len(tasks) * scale),
        success_rate=ratio(completed, len(tasks)),
        average_generation_time=finite(mean(times)),
        median_generation_time=finite(quantile(times, 0.5)),
        p95_generation_time=finite(quantile(times, 0.95)),
        average_model_load_time=finite(mean(loads)),
    )


def _ordered(groups: dict[tuple[str, str, str], list[TaskRecord]]) -> list[tuple[str, str, str]]:
    return sorted(groups, key=lambda k: (-len(groups[k]), k))


def summarize(tasks: TaskSource, settings: Settings) -> Summary:
    """Counts, success rate, average / median / p95 generation time, average load time, and
    the breakdown by model type x resolution class x optimisation set (most tasks first).

    Args:
        tasks: the window's task records (running ones are ignored), or a prepared Window.
        settings: genperf's settings.
    """
    w = as_window(tasks, settings)
    t = w.tally
    scale = (t.tasks / len(w.tasks)) if w.sampled and w.tasks else 1.0
    cells: dict[tuple[str, str, str], list[TaskRecord]] = defaultdict(list)
    classes: dict[tuple[str, str, str], list[TaskRecord]] = defaultdict(list)
    for task in w.tasks:
        opts = opt.optimization_set(task.optimizations_applied)
        cells[(task.model_type, task.resolution_class, opts)].append(task)
        classes[(ALL, task.resolution_class, ALL)].append(task)
    times = [
        x.generation_time_seconds
        for x in w.tasks
        if x.status is TaskStatus.COMPLETED and x.generation_time_seconds is not None
    ]
    return Summary(
        task_count=t.tasks,
        completed=t.completed,
        failed=t.failed,
        interrupted=t.interrupted,
        success_rate=ratio(t.completed, t.tasks),
        average_generation_time=finite(ratio(t.gen_sum, t.gen_n)),
        median_generation_time=finite(quantile(times, 0.5)),
        p95_generation_time=finite(quantile(times, 0.95)),
        min_generation_time=finite(t.gen_min),
        max_generation_time=finite(t.gen_max),
        average_model_load_time=finite(ratio(t.load_sum, t.load_n)),
        tasks_over_target=t.over_target,
        tasks_over_acceptable=t.over_acceptable,
        by_resolution=tuple(_group(classes[k], k, scale) for k in _ordered(classes)),
        breakdown=tuple(_group(cells[k], k, scale) for k in _ordered(cells)),
        estimated=w.sampled,
    )
