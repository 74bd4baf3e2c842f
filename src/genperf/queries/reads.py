"""Every read of genperf, answered as the response models of :mod:`genperf.queries.models`.

The API's routers call :class:`Queries` with the app's store, monitor and report cache; the
CLI's local source calls it with the local database and no cache. So both answer the same
question with the same code, and the CLI's remote source parses the same models.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from genperf.analysis import build_report
from genperf.config import Settings
from genperf.errors import GenperfError
from genperf.exporters import csv as csv_exporter
from genperf.exporters import elastic as elastic_exporter
from genperf.exporters import influx as influx_exporter
from genperf.exporters import json as json_exporter
from genperf.queries import history
from genperf.queries.fleet import fleet
from genperf.queries.models import (
    ActiveTaskOut,
    AnalysisOut,
    BenchmarksOut,
    ConfigChangesOut,
    ForecastOut,
    ImpactListOut,
    MetricsPage,
    MonitoringOut,
    MonitorStatsOut,
    NodesOut,
    PredictionOut,
    RecommendationsOut,
    SampleOut,
    StatusOut,
    StoredStatusOut,
    TaskOut,
)
from genperf.records import SystemSample, TaskRecord, to_jsonable, utc_now
from genperf.storage.base import SampleQuery, Store, TaskQuery

if TYPE_CHECKING:
    from genperf.monitor.predictor import HistoryPredictor

EXPORT_BATCH = 1000  # records read from the store per batch while exporting
STATUS_ACTIVE_TASKS = 20  # /status lists the first running tasks; GET /tasks pages through all
EXPORT_FORMATS = ("json", "csv", "influx", "ndjson")
MEDIA_TYPES = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "influx": "text/plain; charset=utf-8",  # InfluxDB line protocol
    "ndjson": elastic_exporter.NDJSON_TYPE,  # an Elasticsearch _bulk body
}


class ReportCache(Protocol):
    """Keeps built reports: ``get(key, build)`` returns a cached value or ``build()``'s."""

    def get(self, key: Hashable, build: Callable[[], dict[str, Any]]) -> dict[str, Any]: ...


class ActiveTaskView(Protocol):
    @property
    def record(self) -> TaskRecord: ...

    @property
    def phase(self) -> str | None: ...


class LiveMonitor(Protocol):
    """What the live status reads of a running monitor (a PerformanceMonitor)."""

    @property
    def running(self) -> bool: ...

    @property
    def node(self) -> str: ...

    def current_sample(self) -> SystemSample: ...

    def active_tasks(self, limit: int | None = None) -> Iterable[ActiveTaskView]: ...

    def self_stats(self) -> dict[str, float | int]: ...

    def gpu_monitoring(self) -> tuple[str, str | None]: ...


def normalise_window(hours: float) -> float:
    """Round a window up to whole minutes below one hour, whole hours above: 24.3 -> 25.0,
    0.26 -> 0.2666... (16 min). Few distinct keys, and never a narrower window than asked."""
    if hours < 1.0:
        return max(1, math.ceil(round(hours * 60.0, 6))) / 60.0  # one minute at least
    return float(math.ceil(round(hours, 6)))


@dataclass(frozen=True)
class Export:
    """An export ready to stream: ``chunks`` yields the document's text."""

    fmt: str
    now: datetime
    count: int  # tasks in the export
    chunks: Iterator[str]

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.fmt]

    @property
    def filename(self) -> str:
        return f"genperf-export-{self.now.strftime('%Y%m%dT%H%M%SZ')}.{self.fmt}"


def _nodes(nodes: Sequence[str]) -> tuple[str, ...]:
    """A node filter as a hashable key: each name once, sorted (so ``a,b`` and ``b,a``
    share a cached report)."""
    return tuple(sorted(set(nodes)))


@dataclass(frozen=True, slots=True)
class Filters:
    """Which tasks a read covers: of one model type, completed ones only, of some nodes
    (empty: every node). Reads pass it on whole, so a new filter is a field here plus the
    parameter that offers it (an API router's, a CLI command's), not an edit per signature.
    Hashable: it keys the report cache."""

    model_type: str | None = None
    success_only: bool = False
    nodes: Sequence[str] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", _nodes(self.nodes))  # frozen: set once, canonical

    def fields(self) -> dict[str, Any]:
        """The filters by name: build_report, TaskQuery and MetricsPage take each under the
        same name."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


EVERY = Filters()  # every task of the window


def active_task(record: TaskRecord, phase: str | None = None) -> ActiveTaskOut:
    """A running task as served: its record and the phase it is in (the live phase from the
    monitor that runs it, else the phase its stored record was in when last written)."""
    out: ActiveTaskOut = ActiveTaskOut.model_validate(record)
    return out.model_copy(update={"current_phase": phase or record.current_phase})


class Queries:
    """The reads, for one store and one set of settings.

    Args:
        settings: the targets and bands the analysis uses.
        store: returns the store to read (called at each read, so it may open lazily and
            raise a GenperfError when the database cannot be opened).
        cache: keeps built reports (the API's short-lived cache); None builds every time.
        now: the wall clock that ends every window.
        predictor: keeps the fits of the history (the server's monitor's, so a fit is reused
            until new runs land); None: a fresh one, made on the first prediction.
    """

    def __init__(
        self,
        settings: Settings,
        store: Callable[[], Store],
        *,
        cache: ReportCache | None = None,
        now: Callable[[], datetime] = utc_now,
        predictor: HistoryPredictor | None = None,
    ) -> None:
        self.settings = settings
        self._store = store
        self._cache = cache
        self._now = now
        self._predictor = predictor

    # -- the analysis report and what is read from it -------------------------------------

    def report(
        self, hours: float, filters: Filters = EVERY, *, now: datetime | None = None
    ) -> dict[str, Any]:
        """``build_report(...).to_dict()``: from the cache unless ``now`` is given (an export
        reports the exact window it exports). A cached report's window is normalised
        (:func:`normalise_window`), so a client varying the window cannot make every request
        a new build; the report says the window it covers."""
        if now is None and self._cache is not None:
            hours = normalise_window(hours)

        def build() -> dict[str, Any]:
            report = build_report(
                self._store(),
                self.settings,
                time_window_hours=hours,
                now=now if now is not None else self._now(),
                **filters.fields(),
            )
            return report.to_dict()

        if now is not None or self._cache is None:
            return build()
        return self._cache.get(("report", hours, filters), build)

    def analysis(self, hours: float, filters: Filters = EVERY) -> AnalysisOut:
        return AnalysisOut.model_validate(self.report(hours, filters))

    def recommendations(self, hours: float, *, nodes: Sequence[str] = ()) -> RecommendationsOut:
        report = self.report(hours, Filters(nodes=nodes))
        items = list(report.get("optimization_recommendations") or [])
        by_category: dict[str, list[dict[str, object]]] = {}
        for item in items:
            by_category.setdefault(str(item.get("category", "other")), []).append(item)
        return RecommendationsOut.model_validate(
            {
                "time_window_hours": report.get("time_window_hours", hours),
                "total": len(items),
                "recommendations": items,
                "by_category": by_category,
            }
        )

    def benchmarks(self, hours: float, *, nodes: Sequence[str] = ()) -> BenchmarksOut:
        report = self.report(hours, Filters(nodes=nodes))
        thresholds = self.settings.performance_thresholds
        return BenchmarksOut.model_validate(
            {
                "time_window_hours": report.get("time_window_hours", hours),
                "targets": {
                    "generation_time_seconds": thresholds.generation_time_targets(),
                    **self.settings.benchmark_targets.model_dump(mode="json"),
                },
                "benchmarks": report.get("benchmarks") or [],
            }
        )

    # -- task records ---------------------------------------------------------------------

    def metrics_page(
        self,
        hours: float,
        *,
        limit: int,
        offset: int = 0,
        filters: Filters = EVERY,
        cursor: str | None = None,
    ) -> MetricsPage:
        """Tasks started in the last ``hours`` (running ones included), newest first: from
        ``offset``, or after the task run ``cursor`` (a previous page's ``next_cursor``;
        ``offset`` is then ignored)."""
        now = self._now()
        since = now - timedelta(hours=hours)
        query = TaskQuery(
            since,
            now,
            newest_first=True,
            limit=limit,
            offset=0 if cursor else offset,
            after_run=cursor or None,
            **filters.fields(),
        )
        store = self._store()
        total = store.count_tasks(query)
        records = store.query_tasks(query)
        following = offset + len(records)
        more = following < total if cursor is None else len(records) == limit
        return MetricsPage(
            time_window_hours=hours,
            **filters.fields(),
            total=total,
            limit=limit,
            offset=offset,
            next_offset=following if cursor is None and following < total and records else None,
            next_cursor=records[-1].run_id if more and records else None,
            metrics=[TaskOut.model_validate(r) for r in records],
        )

    def recent(self, limit: int, *, nodes: Sequence[str] = ()) -> list[TaskOut]:
        """The newest finished tasks."""
        query = TaskQuery(finished_only=True, newest_first=True, limit=limit, nodes=_nodes(nodes))
        return [TaskOut.model_validate(r) for r in self._store().query_tasks(query)]

    def export(
        self,
        fmt: str,
        hours: float,
        *,
        nodes: Sequence[str] = (),
        each: Callable[[TaskRecord], None] | None = None,
    ) -> Export:
        """The tasks started in the last ``hours``, oldest first, as a JSON document (the
        spec's shape, with the analysis of the same window), CSV, InfluxDB line protocol (the
        tasks, then the window's samples) or an Elasticsearch bulk body, streamed from the
        store in batches. The window closes now, so the count matches the records even while
        tasks are ingested. ``each`` hears of every record as it is written."""
        if fmt not in EXPORT_FORMATS:
            raise ValueError(f"format must be one of {', '.join(EXPORT_FORMATS)}, got {fmt!r}")
        now = self._now()
        store = self._store()
        wanted = _nodes(nodes)
        query = TaskQuery(
            since=now - timedelta(hours=hours), until=now, nodes=wanted, newest_first=False
        )
        count = store.count_tasks(query)
        records: Iterable[TaskRecord] = store.iter_tasks(query, batch_size=EXPORT_BATCH)
        if each is not None:
            records = _told(records, each)
        if fmt == "csv":
            return Export(fmt, now, count, csv_exporter.render(records))
        if fmt == "influx":
            samples = influx_exporter.stored_samples(store, now - timedelta(hours=hours), now)
            return Export(fmt, now, count, influx_exporter.render(records, samples))
        if fmt == "ndjson":
            index = self.settings.elasticsearch_index
            return Export(fmt, now, count, elastic_exporter.render_ndjson(records, index))
        chunks = json_exporter.render(
            export_timestamp=now,
            time_window_hours=hours,
            metrics_count=count,
            performance_analysis=self.report(hours, Filters(nodes=wanted), now=now),
            metrics=records,
        )
        return Export(fmt, now, count, chunks)

    # -- the fleet --------------------------------------------------------------------------

    def nodes(self, hours: float, *, nodes: Sequence[str] = ()) -> NodesOut:
        """Each node that sampled or ran tasks in the last ``hours`` (see ``fleet``)."""
        return fleet(self._store(), self.settings, hours=hours, now=self._now(), nodes=nodes)

    # -- prediction and what history says -------------------------------------------------

    def predict(
        self, model_type: str, resolution: str, frames: int, steps: int, **options: Any
    ) -> PredictionOut:
        """A generation's time and peak memory before it runs, learnt from the history of
        ``model_type``; ``options`` (``optimizations``, ``node``) and the answer are those of
        :meth:`genperf.monitor.PerformanceMonitor.predict`."""
        if self._predictor is None:
            from genperf.monitor.predictor import HistoryPredictor

            self._predictor = HistoryPredictor()
        prediction = self._predictor.predict(
            self._store(), model_type, resolution, frames, steps, **options
        )
        return PredictionOut.model_validate(to_jsonable(prediction))

    def impact(self, hours: float, *, model_type: str | None = None) -> ImpactListOut:
        """Each optimisation's impact over the last ``hours`` (see ``history.impact``)."""
        return history.impact(self._store(), hours, model_type, self._now())

    def forecast(self, hours: float) -> ForecastOut:
        """The p95 forecast and capacity over the last ``hours`` (see ``history.forecast``)."""
        return history.forecast(self._store(), self.settings, hours, self._now())

    def config_changes(
        self, hours: float, *, compare_hours: float, limit: int = history.MAX_CHANGES
    ) -> ConfigChangesOut:
        """The configuration changes of the last ``hours``, each with the window before it
        against the window after (see ``history.config_changes``)."""
        return history.config_changes(self._store(), hours, compare_hours, self._now(), limit)

    # -- status ---------------------------------------------------------------------------

    def live_status(self, monitor: LiveMonitor, *, nodes: Sequence[str] = ()) -> StatusOut:
        """The monitor's latest sample (memory only), its running tasks and its statistics.
        ``nodes`` keeps the running tasks of those nodes only (the sample is this host's)."""
        sample = monitor.current_sample()
        now = self._now()
        monitoring = self._monitoring(monitor.running, monitor.node, now, sample.taken_at)
        gpu, gpu_reason = monitor.gpu_monitoring()
        wanted = set(nodes)
        active = [
            a
            for a in monitor.active_tasks(limit=None if wanted else STATUS_ACTIVE_TASKS)
            if not wanted or a.record.node in wanted
        ][:STATUS_ACTIVE_TASKS]
        return StatusOut(
            timestamp=now,
            monitoring=monitoring.model_copy(
                update={"gpu_monitoring": gpu, "gpu_monitoring_reason": gpu_reason}
            ),
            system=SampleOut.model_validate(sample),
            active_tasks=[active_task(a.record, a.phase) for a in active],
            monitor=MonitorStatsOut.model_validate(monitor.self_stats()),
        )

    def stored_status(
        self, sample: SystemSample, node: str, gpu: tuple[str, str | None] = ("on", None)
    ) -> StoredStatusOut:
        """The status without a server: this host's ``sample``, and the service as the
        database shows it (its running tasks, and its newest sample's age). ``gpu`` is
        whether this host's GPU monitoring is on, and why not."""
        now = self._now()
        gpu_state = {"gpu_monitoring": gpu[0], "gpu_monitoring_reason": gpu[1]}
        monitoring = self._monitoring(False, node, now, None).model_copy(update=gpu_state)
        status = StoredStatusOut(
            timestamp=now,
            monitoring=monitoring,
            system=SampleOut.model_validate(sample),
            active_tasks=[],
            database_available=False,
            settings=self.settings.safe_dict(),
        )
        try:
            store = self._store()
            running = store.running_tasks(node)
            latest = store.query_samples(SampleQuery(limit=1))
        except GenperfError as exc:
            return status.model_copy(update={"database_error": str(exc)})
        if latest:
            age = max(0.0, (now - latest[-1].taken_at).total_seconds())
            fresh = age <= self._fresh_seconds() and _a_monitor_lives(store, node)
            monitoring = self._monitoring(
                fresh, latest[-1].node, now, latest[-1].taken_at
            ).model_copy(update=gpu_state)
        return status.model_copy(
            update={
                "database_available": True,
                "monitoring": monitoring,
                "active_tasks": [active_task(r) for r in running],
            }
        )

    def _monitoring(
        self, running: bool, node: str, now: datetime, sampled_at: datetime | None
    ) -> MonitoringOut:
        age = None if sampled_at is None else max(0.0, (now - sampled_at).total_seconds())
        return MonitoringOut(
            running=running,
            node=node,
            interval_seconds=self.settings.monitoring_interval_seconds,
            sample_age_seconds=age,
        )

    def _fresh_seconds(self) -> float:
        """How old the newest stored sample may be while its monitor still counts as
        running: a few intervals, plus one batch of samples waiting to be written."""
        s = self.settings
        return 3 * s.monitoring_interval_seconds + s.sample_write_delay_seconds() + 5.0


def _a_monitor_lives(store: Store, node: str) -> bool:
    """Whether a monitor that started on this database has not stopped: one that stopped
    says so as it stops; one of this node that was killed is found by its process. (One
    killed on another node shows only by its samples growing old; samples written by
    something that never registered leave the answer to their age.)"""
    known = getattr(store, "monitors", None)
    if not callable(known):
        return True
    from genperf.monitor.core import instance_alive

    rows = known()
    return not rows or any(
        not stopped and (row_node != node or instance_alive(i)) for i, row_node, stopped in rows
    )


def _told(
    records: Iterable[TaskRecord], each: Callable[[TaskRecord], None]
) -> Iterator[TaskRecord]:
    for record in records:
        yield record
        each(record)
