"""The fleet view: one row per node, read from the samples and tasks every node writes.

A node is listed when it wrote a sample or ran a task in the window. Its state comes from its
newest samples: their gaps give its sampling interval (no setting of another process is
needed), and a node whose newest sample is older than ``DOWN_INTERVALS`` of its intervals
is ``down`` (or ``samples_per_write`` + 1 of them, where batches are set larger than 2:
samples reach the database in batches).
Medians per resolution class come from the node's newest ``MEDIAN_TASKS`` successful tasks of
the window, so the cost of a row is bounded whatever the window holds.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime, timedelta

from genperf.analysis.stats import median
from genperf.config import Settings
from genperf.queries.models import NodeGpuOut, NodeOut, NodesOut
from genperf.records import SystemSample, TaskStatus
from genperf.storage.base import NodeHead, Store, TaskQuery

DOWN_INTERVALS = 3  # a node with no sample for more than this many intervals is down
HEAD_SAMPLES = 5  # newest samples read per node (the interval is their median gap)
MEDIAN_TASKS = 500  # newest successful tasks per node behind its medians


def inferred_interval(samples: Sequence[SystemSample]) -> float | None:
    """The median gap between consecutive samples (newest first), or None with fewer than 2."""
    gaps = [
        (newer.taken_at - older.taken_at).total_seconds()
        for newer, older in itertools.pairwise(samples)
    ]
    return median(g for g in gaps if g > 0)


def node_state(age: float | None, interval: float | None, settings: Settings) -> str:
    if age is None:
        return "no_samples"
    every = interval if interval is not None else settings.monitoring_interval_seconds
    # A healthy node's newest stored sample is up to one batch of its samples old: with the
    # default batch of 2 that is within DOWN_INTERVALS; a larger batch waits one more interval.
    late = max(DOWN_INTERVALS * every, settings.sample_write_delay_seconds(every) + every)
    return "down" if age > late else "up"


def fleet(
    store: Store,
    settings: Settings,
    *,
    hours: float,
    now: datetime,
    nodes: Sequence[str] = (),
) -> NodesOut:
    since = now - timedelta(hours=hours)
    wanted = set(nodes)
    heads = {h.node: h for h in store.node_heads(since, HEAD_SAMPLES)}
    window = TaskQuery(since=since, until=now, nodes=tuple(sorted(wanted)))
    counts = store.task_counts_by_node(window)
    names = sorted((set(heads) | set(counts)) & wanted if wanted else set(heads) | set(counts))
    return NodesOut(
        time_window_hours=hours,
        timestamp=now,
        targets=settings.performance_thresholds.generation_time_targets(),
        nodes=[
            _node(
                store,
                settings,
                name,
                head=heads.get(name),
                counts=counts.get(name, {}),
                since=since,
                now=now,
            )
            for name in names
        ],
    )


def _node(
    store: Store,
    settings: Settings,
    name: str,
    *,
    head: NodeHead | None,
    counts: dict[str, int],
    since: datetime,
    now: datetime,
) -> NodeOut:
    newest = head.samples[0] if head and head.samples else None
    age = None if newest is None else max(0.0, (now - newest.taken_at).total_seconds())
    interval = inferred_interval(head.samples) if head else None
    finished = sum(n for status, n in counts.items() if status != TaskStatus.RUNNING.value)
    completed = counts.get(TaskStatus.COMPLETED.value, 0)
    times: dict[str, list[float]] = {}
    recent = TaskQuery(since=since, until=now, nodes=(name,), success_only=True, limit=MEDIAN_TASKS)
    for cls, seconds in store.generation_times(recent):
        times.setdefault(cls, []).append(seconds)
    p50 = {cls: m for cls, values in sorted(times.items()) if (m := median(values)) is not None}
    return NodeOut(
        node=name,
        state=node_state(age, interval, settings),
        last_sample_at=None if newest is None else newest.taken_at,
        last_sample_age_seconds=age,
        interval_seconds=interval,
        genperf_version=head.genperf_version if head else None,
        gpus=[
            NodeGpuOut(
                index=g.index,
                name=g.name,
                memory_used_bytes=g.memory_used_bytes,
                memory_total_bytes=g.memory_total_bytes,
                utilization_percent=g.utilization_percent,
                temperature_celsius=g.temperature_celsius,
            )
            for g in (newest.gpus if newest else ())
        ],
        running_tasks=len(store.running_tasks(name)),
        tasks=finished,
        completed=completed,
        success_rate=completed / finished if finished else None,
        p50_generation_time_seconds=p50,
        p50_tasks={cls: len(times[cls]) for cls in p50},
    )
