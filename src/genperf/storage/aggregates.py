"""SQL aggregation for analysis: a large window's exact totals, computed by the database.

:class:`~genperf.storage.sql.SqlStore` offers it to analysis as ``window_size`` and
``aggregate_window`` (the ``AggregatingStore`` capability ``genperf.analysis.report`` asks
for), which ``build_report`` uses when a window holds more tasks than it reads one by one.
This module imports nothing of ``analysis``: the tally, its thresholds and bands are
``genperf.tally``'s, shared with the Python tally. No statement sorts the whole window
(SQLite's GROUP BY sorts every row it groups, which alone costs more than a second per
million tasks):

1. the tally: conditional aggregates with no GROUP BY, from the same :data:`~genperf.tally.BANDS`
   as ``genperf.analysis.window.Tallier`` (tests/analysis/test_sql_aggregates.py checks that
   they agree, field by field). Per-row values (percentages, the time target of the row's
   class, flags read from JSON text) are computed once per row in a subquery that SQLite
   keeps as a co-routine; its columns carry the names the bands compare.
   The window is cut into equal time slices, one statement each, run in parallel on their
   own pooled connections (sqlite3 releases the GIL while a statement runs); tallies add up.
2. failure rows: GROUP BY over failed and interrupted runs only (a few percent of rows),
   returned as stored (analysis names their categories and phases);
3. a pseudo-random sample of about ``sample_size`` tasks, chosen by a multiplicative hash of
   the row id (no periodic pattern in the ids can bias it), read as narrow rows into
   TaskRecords for what needs individual tasks (medians, p95, trends, breakdowns, examples).

Memory is bounded by ``sample_size``, whatever the window's size. Optimisation tokens and
throttle reasons are matched as written (lower case, as genperf writes them); the Python
tally lower-cases them first.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Float,
    Integer,
    Select,
    and_,
    case,
    cast,
    func,
    literal,
    null,
    or_,
    select,
)

from genperf import optimizations as opt
from genperf.config import Settings
from genperf.records import TaskRecord, TaskStatus
from genperf.storage.base import TaskQuery
from genperf.storage.engine import is_memory_sqlite
from genperf.storage.schema import generation_tasks as tasks
from genperf.storage.sql import SqlStore, task_filters
from genperf.tally import (
    BANDS,
    LOAD_MIN_SECONDS,
    LOAD_SHARE,
    LOW_GPU_UTILIZATION_PERCENT,
    POWER_THROTTLE_MARKERS,
    RESOURCES,
    THERMAL_THROTTLE_MARKERS,
    Aggregate,
    FailureRow,
    Tally,
)

_HASH_MULTIPLIER = 2654435761  # Knuth's multiplicative hash, modulo 2**32
_HASH_SPACE = 2**32
MAX_WORKERS = 4

# The sample's columns: every TaskRecord field but those no analysis reads (long JSON texts,
# and completed_at: decoding a datetime per row is a good part of the sample's cost).
_SKIPPED = {"phases", "step_times_seconds", "recovery_suggestions", "error_message", "completed_at"}
_SAMPLE_FIELDS = [c.name for c in tasks.columns if c.name not in _SKIPPED and c.name != "id"]

_C = tasks.c


class _Sql:
    """The dialect's spelling of a few things SQLite and PostgreSQL write differently."""

    def __init__(self, dialect: str) -> None:
        self.sqlite = dialect == "sqlite"

    def flag(self, cond: ColumnElement[bool]) -> ColumnElement[Any]:
        """1 / 0 / NULL for a condition."""
        return cond if self.sqlite else cast(cond, Integer)

    def count(self, flag: ColumnElement[Any]) -> ColumnElement[Any]:
        """How many rows have the flag set."""
        return func.total(flag) if self.sqlite else func.coalesce(func.sum(flag), 0)

    def total(self, value: ColumnElement[Any]) -> ColumnElement[Any]:
        return func.total(value) if self.sqlite else func.coalesce(func.sum(value), 0.0)

    def contains(self, column: ColumnElement[Any], text: str) -> ColumnElement[bool]:
        if self.sqlite:
            return func.instr(column, text) > 0
        return column.contains(text, autoescape=True)

    def contains_any(self, column: ColumnElement[Any], texts: Sequence[str]) -> ColumnElement[bool]:
        return or_(*(self.contains(column, t) for t in texts))


def _target(settings: Settings) -> ColumnElement[Any]:
    targets = settings.performance_thresholds.generation_time_targets()
    if not targets:
        return cast(null(), Float)  # typed: PostgreSQL must know what a NULL divides
    return case(*((_C.resolution_class == cls, literal(t)) for cls, t in targets.items()))


def _per_row(sql: _Sql, settings: Settings) -> list[ColumnElement[Any]]:
    """Per-row values the tally aggregates, each computed once per row. The names of those
    the bands compare are :data:`genperf.tally.Value`'s."""
    off = _C.optimizations_applied
    return [
        sql.flag(_C.status == TaskStatus.COMPLETED.value).label("completed"),
        sql.flag(_C.status == TaskStatus.FAILED.value).label("failed"),
        sql.flag(_C.status == TaskStatus.INTERRUPTED.value).label("interrupted"),
        sql.flag(_C.vram_total_mb != 0).label("has_gpu"),
        case((_C.status == TaskStatus.COMPLETED.value, _C.generation_time_seconds)).label(
            "completed_seconds"
        ),
        _C.generation_time_seconds.label("generation_seconds"),
        _target(settings).label("target_seconds"),
        _C.model_load_time_seconds.label("load_seconds"),
        (_C.peak_vram_usage_mb * 100.0 / func.nullif(_C.vram_total_mb, 0)).label("vram_percent"),
        (_C.peak_ram_usage_mb * 100.0 / func.nullif(_C.ram_total_mb, 0)).label("ram_percent"),
        _C.avg_cpu_percent.label("cpu_percent"),
        _C.avg_gpu_utilization_percent.label("gpu_utilization_percent"),
        _C.peak_gpu_temperature_celsius.label("temperature_celsius"),
        sql.flag(sql.contains_any(_C.gpu_throttle_reasons, THERMAL_THROTTLE_MARKERS)).label(
            "thermal_throttled"
        ),
        sql.flag(sql.contains_any(_C.gpu_throttle_reasons, POWER_THROTTLE_MARKERS)).label(
            "power_throttled"
        ),
        sql.flag(sql.contains(off, f'"{opt.OFFLOAD}')).label("offloaded"),
        sql.flag(sql.contains(off, f'"{opt.OFFLOAD_SEQUENTIAL}"')).label("offloaded_sequentially"),
    ]


def tally_statement(
    dialect: str, settings: Settings, where: Sequence[ColumnElement[bool]]
) -> Select[Any]:
    """One statement whose single row has a column per field of
    :class:`~genperf.tally.Tally`, over the rows matching ``where``."""
    sql = _Sql(dialect)
    per_row = select(*_per_row(sql, settings)).where(*where)
    if sql.sqlite:
        per_row = per_row.limit(-1)  # keeps SQLite from flattening: per-row values once
    row = per_row.subquery("per_row").c
    bt = settings.benchmark_targets
    low = LOW_GPU_UTILIZATION_PERCENT
    flag, count, total = sql.flag, sql.count, sql.total
    done = row.completed_seconds  # generation time of completed tasks, else NULL
    target = row.target_seconds
    offload_util = case((row.offloaded == 1, row.gpu_utilization_percent))
    cols: dict[str, ColumnElement[Any]] = {
        "tasks": func.count(),
        "completed": count(row.completed),
        "failed": count(row.failed),
        "interrupted": count(row.interrupted),
        "gpu_tasks": count(row.has_gpu),
        "gen_n": func.count(done),
        "gen_sum": total(done),
        "gen_min": func.min(done),
        "gen_max": func.max(done),
        "target_n": count(flag(and_(done.is_not(None), target.is_not(None)))),
        "over_target": count(flag(done > target)),
        "over_acceptable": count(flag(done > target * bt.generation_time_acceptable_factor)),
        "time_score_sum": total(case((done <= target, 1.0), (done > target, target / done))),
        "load_n": func.count(row.load_seconds),
        "load_sum": total(row.load_seconds),
        "load_max": func.max(row.load_seconds),
        "load_dominant": count(
            flag(
                and_(
                    row.generation_seconds != 0,
                    row.load_seconds >= LOAD_MIN_SECONDS,
                    row.load_seconds >= LOAD_SHARE * row.generation_seconds,
                )
            )
        ),
        "util_n": func.count(row.gpu_utilization_percent),
        "util_sum": total(row.gpu_utilization_percent),
        "cpu_busy_gpu_idle": count(
            flag(
                and_(
                    row.cpu_percent >= bt.cpu_usage_percent.acceptable,
                    row.gpu_utilization_percent < low,
                )
            )
        ),
        "memory_n": count(flag(or_(row.vram_percent.is_not(None), row.ram_percent.is_not(None)))),
        "memory_over": count(
            flag(
                or_(
                    row.vram_percent >= bt.vram_usage_percent.maximum,
                    row.ram_percent >= bt.ram_usage_percent.maximum,
                )
            )
        ),
        "temp_n": func.count(row.temperature_celsius),
        "temp_max": func.max(row.temperature_celsius),
        "throttle_thermal": count(row.thermal_throttled),
        "throttle_power": count(row.power_throttled),
        "offload_n": count(row.offloaded),
        "offload_sequential": count(row.offloaded_sequentially),
        "offload_util_n": func.count(offload_util),
        "offload_util_sum": total(offload_util),
        "offload_util_low": count(flag(offload_util < low)),
    }
    for prefix, name in RESOURCES:
        cols[f"{prefix}_n"] = func.count(row[name])
        cols[f"{prefix}_sum"] = total(row[name])
        cols[f"{prefix}_max"] = func.max(row[name])
    for rule in BANDS:  # the same bands as the Python tally
        cols[rule.field] = count(flag(row[rule.value] >= rule.bound(settings)))
    return select(*(cols[f.name].label(f.name) for f in dataclasses.fields(Tally)))


def _finished(query: TaskQuery) -> list[ColumnElement[bool]]:
    where = task_filters(query)
    if not query.finished_only:
        where.append(_C.status != TaskStatus.RUNNING.value)
    return where


def _as_tally(row: Any) -> Tally:
    values: dict[str, Any] = {}
    for name, value in row.items():
        if name.endswith("_sum"):
            values[name] = float(value or 0.0)
        elif name.endswith(("_max", "_min")):
            values[name] = None if value is None else float(value)
        else:
            values[name] = int(value or 0)
    return Tally(**values)


def _tally_where(
    store: SqlStore, settings: Settings, where: Sequence[ColumnElement[bool]]
) -> Tally:
    stmt = tally_statement(store._engine.dialect.name, settings, where)
    with store._read("aggregate tasks") as conn:
        return _as_tally(conn.execute(stmt).mappings().one())


def _bounds(store: SqlStore, query: TaskQuery) -> tuple[datetime, datetime] | None:
    """The window's time bounds: the query's, or the first and last start found."""
    since, until = query.since, query.until
    if since is None or until is None:
        stmt = select(func.min(_C.started_at), func.max(_C.started_at)).where(*_finished(query))
        with store._read("find the window's bounds") as conn:
            first, last = conn.execute(stmt).one()
        if first is None or last is None:
            return None
        since = since or _utc(first)
        until = until or _utc(last)
    return since, until


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _slices(
    bounds: tuple[datetime, datetime] | None, parts: int
) -> list[list[ColumnElement[bool]]]:
    """Extra conditions cutting the window into ``parts`` disjoint time slices."""
    if bounds is None or parts <= 1 or bounds[1] <= bounds[0]:
        return [[]]
    since, until = bounds
    step = (until - since) / parts
    edges = [since + step * i for i in range(1, parts)]
    out: list[list[ColumnElement[bool]]] = []
    lower: datetime | None = None
    for edge in [*edges, None]:
        cond: list[ColumnElement[bool]] = []
        if lower is not None:
            cond.append(_C.started_at >= lower)
        if edge is not None:
            cond.append(_C.started_at < edge)
        out.append(cond)
        lower = edge
    return out


def window_tally(
    store: SqlStore, query: TaskQuery, settings: Settings, *, workers: int = 1
) -> Tally:
    """The exact tally of the query's finished tasks, in ``workers`` parallel time slices."""
    where = _finished(query)
    if workers <= 1:
        return _tally_where(store, settings, where)
    slices = _slices(_bounds(store, query), workers)
    with ThreadPoolExecutor(max_workers=len(slices)) as pool:
        parts = list(
            pool.map(lambda extra: _tally_where(store, settings, [*where, *extra]), slices)
        )
    return sum(parts, Tally())


_tokens_cache: dict[str | None, tuple[str, ...]] = {}


def _tokens(text: str | None) -> tuple[str, ...]:
    """A JSON list column as a tuple; the few distinct values are decoded once."""
    cached = _tokens_cache.get(text)
    if cached is None:
        try:
            value = json.loads(text) if text else []
        except ValueError:
            value = []
        cached = tuple(str(v) for v in value) if isinstance(value, list) else ()
        if len(_tokens_cache) < 4096:
            _tokens_cache[text] = cached
    return cached


def window_failures(store: SqlStore, query: TaskQuery) -> tuple[FailureRow, ...]:
    """Failed and interrupted runs, counted by (error category, failed phase, optimisations,
    status) as stored."""
    stmt = (
        select(
            _C.error_category,
            _C.failed_phase,
            _C.optimizations_applied,
            _C.status,
            func.count().label("n"),
        )
        .where(
            *task_filters(query),
            _C.status.in_([TaskStatus.FAILED.value, TaskStatus.INTERRUPTED.value]),
        )
        .group_by(_C.error_category, _C.failed_phase, _C.optimizations_applied, _C.status)
    )
    with store._read("aggregate failures") as conn:
        rows = conn.execute(stmt).all()
    return tuple(
        FailureRow(category, phase, _tokens(opts), status, int(n))
        for category, phase, opts, status, n in rows
    )


def window_sample(store: SqlStore, query: TaskQuery, fraction: float) -> tuple[TaskRecord, ...]:
    """About ``fraction`` of the query's finished tasks, chosen by a hash of the row id,
    oldest first. Fields no analysis reads are left empty: phases, step times, recovery
    suggestions, error message and completed_at."""
    cols = [_C[name] for name in _SAMPLE_FIELDS]
    stmt = select(*cols).where(*_finished(query))
    if fraction < 1.0:
        bound = int(fraction * _HASH_SPACE)
        hashed = cast(_C.id, BigInteger) * literal(_HASH_MULTIPLIER, BigInteger) % _HASH_SPACE
        stmt = stmt.where(hashed < bound)
    stmt = stmt.order_by(_C.started_at, _C.id)
    with store._read("sample tasks") as conn:
        rows = conn.execute(stmt).all()
    out = []
    for row in rows:
        values = dict(zip(_SAMPLE_FIELDS, row, strict=True))
        values["status"] = TaskStatus(values["status"])
        values["optimizations_applied"] = _tokens(values["optimizations_applied"])
        values["gpu_throttle_reasons"] = _tokens(values["gpu_throttle_reasons"])
        values["samples_count"] = values["samples_count"] or 0
        out.append(TaskRecord(**values))
    return tuple(out)


def window_size(store: SqlStore, query: TaskQuery) -> int:
    """About how many tasks the window holds, read from the started_at (or model_type,
    started_at) index alone: an upper bound (running tasks and other rows count too), cheap
    enough to decide how to read the window and how large a sample to draw."""
    where: list[ColumnElement[bool]] = []
    if query.since is not None:
        where.append(_C.started_at >= query.since)
    if query.until is not None:
        where.append(_C.started_at <= query.until)
    if query.model_type is not None:
        where.append(_C.model_type == query.model_type)
    stmt = select(func.count()).select_from(tasks).where(*where)
    with store._read("size the window") as conn:
        return int(conn.execute(stmt).scalar_one())


def default_workers(store: SqlStore) -> int:
    """Parallel statements worth running: 1 for an in-memory SQLite database (one connection)."""
    if store._engine.dialect.name == "sqlite" and is_memory_sqlite(store._engine.url):
        return 1
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1))


def aggregate(
    store: SqlStore,
    settings: Settings,
    query: TaskQuery,
    *,
    fraction: float,
    workers: int | None = None,
) -> Aggregate:
    """The window of ``query`` aggregated by the database (see the module docstring).

    Args:
        fraction: about which share of the tasks to read individually (1.0: all).
        workers: parallel statements (default: :func:`default_workers`).
    """
    workers = default_workers(store) if workers is None else max(1, workers)
    if workers == 1:
        tally = window_tally(store, query, settings)
        failures = window_failures(store, query)
        sample = window_sample(store, query, fraction)
    else:
        with ThreadPoolExecutor(max_workers=2) as pool:
            failures_f = pool.submit(window_failures, store, query)
            sample_f = pool.submit(window_sample, store, query, fraction)
            tally = window_tally(store, query, settings, workers=workers)
            failures, sample = failures_f.result(), sample_f.result()
    return Aggregate(tally=tally, failures=failures, tasks=sample)
