"""The report: every analysis of a time window, in the spec's ``performance_analysis`` shape.

:func:`build_report` is the one function of ``analysis`` that reads a store. A store that can
total a window itself (an :class:`AggregatingStore`, such as the SQL store) does so for a
window of more than ``SQL_MIN_TASKS`` tasks: exact totals and failure counts, and up to
``SAMPLE_SIZE`` tasks, a pseudo-random sample when there are more, for medians, trends and
breakdowns. Any other window is streamed once in bounded memory: exact totals, and the same
kind of sample beyond ``SAMPLE_SIZE`` tasks. Everything after reading is :func:`analyze`, a
pure function of the window.

``analysis`` imports no store: it says what it needs (:class:`AggregatingStore`), and the
store says it in ``genperf.tally``'s words.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from genperf.analysis.benchmarks import Benchmark, evaluate_benchmarks
from genperf.analysis.bottlenecks import BottleneckAnalysis, detect_bottlenecks
from genperf.analysis.efficiency import Efficiency, resource_efficiency
from genperf.analysis.failures import (
    FailureKey,
    FailureSummary,
    failure_key,
    from_counts,
    from_rows,
)
from genperf.analysis.failures import summarize_failures as _summarize_failures
from genperf.analysis.recommendations import Recommendation, recommend
from genperf.analysis.summary import Summary, summarize
from genperf.analysis.trends import Trends, compute_trends
from genperf.analysis.window import Tallier, Window
from genperf.config import Settings
from genperf.records import SystemSample, TaskRecord, to_jsonable, utc_now
from genperf.storage.base import SampleQuery, Store, TaskQuery
from genperf.tally import Aggregate

SAMPLE_SIZE = 10_000  # task records read one by one at most
SQL_MIN_TASKS = 2_000  # a SQL store's window larger than this is aggregated by the database
MAX_SYSTEM_SAMPLES = 5_000  # newest system samples read (disk, temperature, swap)
_BATCH = 2_000

# The keys of the spec's "performance_analysis" block, in the spec's order.
SPEC_KEYS = (
    "average_generation_time",
    "success_rate",
    "resource_efficiency",
    "bottleneck_analysis",
    "optimization_recommendations",
    "performance_trends",
)


@dataclass(frozen=True, slots=True)
class Method:
    """How the window was read.

    Attributes:
        aggregation: "records" (task records read one by one) or "sql" (the database
            aggregated the totals).
        tasks_read: task records analysed individually.
        sample_fraction: tasks_read / tasks in the window (1.0: all of them).
        system_samples: system samples read.
    """

    aggregation: str
    tasks_read: int
    sample_fraction: float
    system_samples: int


@dataclass(frozen=True, slots=True)
class Report:
    """Every analysis of one window. :meth:`to_dict` is the JSON shape of the API and export."""

    generated_at: datetime
    time_window_hours: float
    window_start: datetime | None
    window_end: datetime | None
    model_type: str | None
    success_only: bool
    summary: Summary
    efficiency: Efficiency
    bottlenecks: BottleneckAnalysis
    trends: Trends
    benchmarks: tuple[Benchmark, ...]
    recommendations: tuple[Recommendation, ...]
    failures: FailureSummary
    method: Method
    nodes: tuple[str, ...] = ()  # the node filter (empty: the whole fleet)

    @property
    def task_count(self) -> int:
        return self.summary.task_count

    def to_dict(self) -> dict[str, Any]:
        """The spec's ``performance_analysis`` keys first, then genperf's. JSON-safe: no NaN
        or infinity (None instead), datetimes as ISO 8601 strings."""
        spec: dict[str, Any] = {
            "average_generation_time": self.summary.average_generation_time,
            "success_rate": self.summary.success_rate,
            "resource_efficiency": self.efficiency.score,
            "bottleneck_analysis": self.bottlenecks,
            "optimization_recommendations": self.recommendations,
            "performance_trends": self.trends,
        }
        extra: dict[str, Any] = {
            "time_window_hours": self.time_window_hours,
            "task_count": self.task_count,
            "generated_at": self.generated_at,
            "window": {"start": self.window_start, "end": self.window_end},
            "filters": {
                "model_type": self.model_type,
                "success_only": self.success_only,
                "nodes": list(self.nodes),
            },
            "summary": self.summary,
            "efficiency": self.efficiency,
            "benchmarks": self.benchmarks,
            "failures": self.failures,
            "method": self.method,
        }
        out: dict[str, Any] = to_jsonable({**spec, **extra})
        return out


def analyze(
    window: Window,
    settings: Settings,
    *,
    time_window_hours: float,
    now: datetime,
    model_type: str | None = None,
    success_only: bool = False,
    nodes: tuple[str, ...] = (),
) -> Report:
    """Every analysis of a prepared window: pure, no I/O."""
    summary = summarize(window, settings)
    efficiency = resource_efficiency(window, settings)
    bottlenecks = detect_bottlenecks(window, settings)
    benchmarks = evaluate_benchmarks(window, settings, efficiency=efficiency)
    return Report(
        generated_at=now,
        time_window_hours=time_window_hours,
        window_start=window.start,
        window_end=window.end,
        model_type=model_type,
        success_only=success_only,
        summary=summary,
        efficiency=efficiency,
        bottlenecks=bottlenecks,
        trends=compute_trends(window),
        benchmarks=benchmarks,
        recommendations=recommend(
            window,
            settings,
            bottlenecks=bottlenecks,
            benchmarks=benchmarks,
            efficiency=efficiency,
        ),
        failures=_summarize_failures(window.failures, window.tally.tasks),
        method=Method(
            aggregation=window.method,
            tasks_read=len(window.tasks),
            sample_fraction=window.sample_fraction,
            system_samples=len(window.samples),
        ),
        nodes=nodes,
    )


def _keep(run_id: str, fraction: float) -> bool:
    """A stable pseudo-random choice of about ``fraction`` of runs."""
    return zlib.crc32(run_id.encode()) < fraction * 2**32


def _stream_window(
    store: Store,
    settings: Settings,
    query: TaskQuery,
    *,
    count: int,
    sample_size: int,
    samples: tuple[SystemSample, ...],
) -> Window:
    fraction = min(1.0, sample_size / count) if count else 1.0
    tallier = Tallier(settings)
    failures: Counter[FailureKey] = Counter()
    kept: list[TaskRecord] = []
    for task in store.iter_tasks(query, batch_size=_BATCH):
        tallier.add(task)
        if (key := failure_key(task)) is not None:
            failures[key] += 1
        if fraction >= 1.0 or _keep(task.run_id, fraction):
            kept.append(task)
    return Window(
        tally=tallier.result(),
        failures=from_counts(failures),
        tasks=tuple(kept),
        samples=samples,
        start=query.since,
        end=query.until,
    )


@runtime_checkable
class AggregatingStore(Protocol):
    """What analysis asks of a store that can total a window itself (the SQL store)."""

    def window_size(self, query: TaskQuery) -> int:
        """About how many tasks the window holds: an upper bound, cheap to find."""
        ...

    def aggregate_window(
        self, settings: Settings, query: TaskQuery, *, fraction: float
    ) -> Aggregate:
        """The exact tally and failure rows of the query's finished tasks, and about
        ``fraction`` of those tasks, oldest first."""
        ...


def load_window(
    store: Store,
    settings: Settings,
    query: TaskQuery,
    *,
    sample_size: int = SAMPLE_SIZE,
    max_samples: int = MAX_SYSTEM_SAMPLES,
    sql_min_tasks: int = SQL_MIN_TASKS,
) -> Window:
    """The analysis window of ``query``: see the module docstring for how it is read.

    Args:
        sample_size: at most this many tasks are analysed one by one; a larger window is
            sampled (totals stay exact).
        max_samples: the newest system samples read.
        sql_min_tasks: a SQL store's window with more tasks than this is aggregated by the
            database (faster than decoding whole records, and exact all the same).
    """
    query = dataclasses.replace(query, finished_only=True, newest_first=False, limit=None, offset=0)
    nodes = query.nodes or (() if query.node is None else (query.node,))
    wanted = SampleQuery(query.since, query.until, limit=max_samples, nodes=tuple(nodes))
    samples = tuple(store.query_samples(wanted))
    if isinstance(store, AggregatingStore):
        size = store.window_size(query)  # an upper bound, from an index
        if size > sql_min_tasks:
            fraction = min(1.0, sample_size / size) if size else 1.0
            totals = store.aggregate_window(settings, query, fraction=fraction)
            return Window(
                tally=totals.tally,
                failures=from_rows(totals.failures),
                tasks=totals.tasks,
                samples=samples,
                start=query.since,
                end=query.until,
                method="sql",
            )
    count = store.count_tasks(query)
    return _stream_window(
        store, settings, query, count=count, sample_size=sample_size, samples=samples
    )


def build_report(
    store: Store,
    settings: Settings,
    *,
    time_window_hours: float = 24.0,
    model_type: str | None = None,
    success_only: bool = False,
    nodes: tuple[str, ...] = (),
    now: datetime | None = None,
) -> Report:
    """The full analysis of the last ``time_window_hours`` of tasks in ``store``.

    Args:
        store: where the task records and system samples are.
        settings: targets, bands and thresholds.
        time_window_hours: how far back from ``now`` (tasks by their start time).
        model_type: only tasks of this model type.
        success_only: only completed tasks.
        nodes: only tasks (and system samples) of these nodes; empty: the whole fleet.
        now: the end of the window (UTC); the current time by default.

    Raises:
        ValueError: time_window_hours is not a positive number.
        StoreError: the store could not be read.
    """
    if not time_window_hours > 0:
        raise ValueError(f"time_window_hours must be > 0, got {time_window_hours!r}")
    end = now or utc_now()
    try:
        since: datetime | None = end - timedelta(hours=time_window_hours)
    except OverflowError:  # a window longer than the calendar: all of history
        since = None
    query = TaskQuery(
        since=since,
        until=end,
        model_type=model_type,
        success_only=success_only,
        nodes=nodes,
    )
    window = load_window(store, settings, query)
    return analyze(
        window,
        settings,
        time_window_hours=time_window_hours,
        now=end,
        model_type=model_type,
        success_only=success_only,
        nodes=nodes,
    )
