"""SQL aggregation for analysis: a large window's exact totals, computed by the database.

``genperf.analysis.build_report`` calls :func:`load_window` when the store is a
:class:`~genperf.storage.sql.SqlStore` and the window holds more tasks than it reads one by
one. No statement sorts the whole window (SQLite's GROUP BY sorts every row it groups, which
alone costs more than a second per million tasks):

1. the tally: conditional aggregates with no GROUP BY, with the same definitions as
   ``genperf.analysis.window.Tallier`` (tests/analysis/test_sql_aggregates.py checks that they
   agree, field by field). Derived values (percentages, the time target of the row's class,
   flags read from JSON text) are computed once per row in a subquery that SQLite keeps as a
   co-routine.
   The window is cut into equal time slices, one statement each, run in parallel on their
   own pooled connections (sqlite3 releases the GIL while a statement runs); tallies add up.
2. failure counts: GROUP BY over failed and interrupted runs only (a few percent of rows);
3. a pseudo-random sample of about ``sample_size`` tasks, chosen by a multiplicative hash of
   the row id (no periodic pattern in the ids can bias it), read as narrow rows into
   TaskRecords for what needs individual tasks (medians, p95, trends, breakdowns, examples).

Memory is bounded by ``sample_size``, whatever the window's size. Optimisation tokens and
throttle reasons are matched as written (lower case, as genperf writes them); the Python
tally lower-cases them first.
"""

from __future__ import annotations

import json
import os
from collections import Counter
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

from genperf.analysis import optimizations as opt
from genperf.analysis.failures import FailureKey, category_of, from_counts, normalize_phase
from genperf.analysis.window import (
    GPU_CRITICAL_CELSIUS,
    GPU_HOT_CELSIUS,
    LOAD_MIN_SECONDS,
    LOAD_SHARE,
    LOAD_SLOW_SECONDS,
    LOW_GPU_UTILIZATION_PERCENT,
    POWER_THROTTLE_MARKERS,
    THERMAL_THROTTLE_MARKERS,
    FailureCount,
    Tally,
    Window,
    generation_targets,
)
from genperf.config import Settings
from genperf.records import SystemSample, TaskRecord, TaskStatus
from genperf.storage.base import TaskQuery
from genperf.storage.engine import is_memory_sqlite
from genperf.storage.schema import generation_tasks as tasks
from genperf.storage.sql import SqlStore, _filters

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
    targets = generation_targets(settings)
    if not targets:
        return cast(null(), Float)  # typed: PostgreSQL must know what a NULL divides
    return case(*((_C.resolution_class == cls, literal(t)) for cls, t in targets.items()))


def _derived(sql: _Sql, settings: Settings) -> list[ColumnElement[Any]]:
    """Per-row values the tally aggregates, each computed once per row."""
    off = _C.optimizations_applied
    return [
        sql.flag(_C.status == TaskStatus.COMPLETED.value).label("ok"),
        sql.flag(_C.status == TaskStatus.FAILED.value).label("bad"),
        sql.flag(_C.status == TaskStatus.INTERRUPTED.value).label("intr"),
        sql.flag(_C.vram_total_mb != 0).label("gpu"),
        case((_C.status == TaskStatus.COMPLETED.value, _C.generation_time_seconds)).label("g"),
        _C.generation_time_seconds.label("ag"),
        _target(settings).label("tg"),
        _C.model_load_time_seconds.label("ld"),
        (_C.peak_vram_usage_mb * 100.0 / func.nullif(_C.vram_total_mb, 0)).label("v"),
        (_C.peak_ram_usage_mb * 100.0 / func.nullif(_C.ram_total_mb, 0)).label("r"),
        _C.avg_cpu_percent.label("c"),
        _C.avg_gpu_utilization_percent.label("u"),
        _C.peak_gpu_temperature_celsius.label("tp"),
        sql.flag(sql.contains_any(_C.gpu_throttle_reasons, THERMAL_THROTTLE_MARKERS)).label("th"),
        sql.flag(sql.contains_any(_C.gpu_throttle_reasons, POWER_THROTTLE_MARKERS)).label("pw"),
        sql.flag(sql.contains(off, f'"{opt.OFFLOAD}')).label("off"),
        sql.flag(sql.contains(off, f'"{opt.OFFLOAD_SEQUENTIAL}"')).label("seq"),
    ]


def tally_statement(
    dialect: str, settings: Settings, where: Sequence[ColumnElement[bool]]
) -> Select[Any]:
    """One statement whose single row has a column per field of
    :class:`~genperf.analysis.window.Tally`, over the rows matching ``where``."""
    sql = _Sql(dialect)
    inner_stmt = select(*_derived(sql, settings)).where(*where)
    if sql.sqlite:
        inner_stmt = inner_stmt.limit(-1)  # keeps SQLite from flattening: derived values once
    d = inner_stmt.subquery("d").c
    bt = settings.benchmark_targets
    low = LOW_GPU_UTILIZATION_PERCENT
    f, n, s = sql.flag, sql.count, sql.total
    offload_u = case((d.off == 1, d.u))
    cols: dict[str, ColumnElement[Any]] = {
        "tasks": func.count(),
        "completed": n(d.ok),
        "failed": n(d.bad),
        "interrupted": n(d.intr),
        "gpu_tasks": n(d.gpu),
        "gen_n": func.count(d.g),
        "gen_sum": s(d.g),
        "gen_min": func.min(d.g),
        "gen_max": func.max(d.g),
        "target_n": n(f(and_(d.g.is_not(None), d.tg.is_not(None)))),
        "over_target": n(f(d.g > d.tg)),
        "over_acceptable": n(f(d.g > d.tg * bt.generation_time_acceptable_factor)),
        "time_score_sum": s(case((d.g <= d.tg, 1.0), (d.g > d.tg, d.tg / d.g))),
        "load_n": func.count(d.ld),
        "load_sum": s(d.ld),
        "load_max": func.max(d.ld),
        "load_slow": n(f(d.ld >= LOAD_SLOW_SECONDS)),
        "load_dominant": n(f(and_(d.ag != 0, d.ld >= LOAD_MIN_SECONDS, d.ld >= LOAD_SHARE * d.ag))),
        "util_n": func.count(d.u),
        "util_sum": s(d.u),
        "cpu_busy_gpu_idle": n(f(and_(d.c >= bt.cpu_usage_percent.acceptable, d.u < low))),
        "memory_n": n(f(or_(d.v.is_not(None), d.r.is_not(None)))),
        "memory_over": n(
            f(or_(d.v >= bt.vram_usage_percent.maximum, d.r >= bt.ram_usage_percent.maximum))
        ),
        "temp_n": func.count(d.tp),
        "temp_max": func.max(d.tp),
        "temp_hot": n(f(d.tp >= GPU_HOT_CELSIUS)),
        "temp_critical": n(f(d.tp >= GPU_CRITICAL_CELSIUS)),
        "throttle_thermal": n(d.th),
        "throttle_power": n(d.pw),
        "offload_n": n(d.off),
        "offload_sequential": n(d.seq),
        "offload_util_n": func.count(offload_u),
        "offload_util_sum": s(offload_u),
        "offload_util_low": n(f(offload_u < low)),
    }
    for key, value, band in (
        ("vram", d.v, bt.vram_usage_percent),
        ("ram", d.r, bt.ram_usage_percent),
        ("cpu", d.c, bt.cpu_usage_percent),
    ):
        cols[f"{key}_n"] = func.count(value)
        cols[f"{key}_sum"] = s(value)
        cols[f"{key}_max"] = func.max(value)
        cols[f"{key}_ge_acceptable"] = n(f(value >= band.acceptable))
        cols[f"{key}_ge_maximum"] = n(f(value >= band.maximum))
    return select(*(expr.label(name) for name, expr in cols.items()))


def _finished(query: TaskQuery) -> list[ColumnElement[bool]]:
    where = _filters(query)
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


def window_failures(store: SqlStore, query: TaskQuery) -> tuple[FailureCount, ...]:
    """Exact failure counts by (category, phase, optimisation set)."""
    stmt = (
        select(
            _C.error_category,
            _C.failed_phase,
            _C.optimizations_applied,
            _C.status,
            func.count().label("n"),
        )
        .where(
            *_filters(query),
            _C.status.in_([TaskStatus.FAILED.value, TaskStatus.INTERRUPTED.value]),
        )
        .group_by(_C.error_category, _C.failed_phase, _C.optimizations_applied, _C.status)
    )
    with store._read("aggregate failures") as conn:
        rows = conn.execute(stmt).all()
    counts: Counter[FailureKey] = Counter()
    for category, phase, opts, status, n in rows:
        tokens = tuple(sorted(opt.normalize(_tokens(opts))))
        counts[(category_of(category, status), normalize_phase(phase), tokens)] += int(n)
    return from_counts(counts)


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
    where = []
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


def load_window(
    store: SqlStore,
    settings: Settings,
    query: TaskQuery,
    *,
    count: int,
    sample_size: int,
    samples: Sequence[SystemSample] = (),
    workers: int | None = None,
) -> Window:
    """The analysis window of ``query`` aggregated by the database (see the module docstring).

    Args:
        count: how many tasks the query matches, or an upper bound (to size the sample).
        sample_size: about how many tasks to read individually.
        samples: the window's system samples, passed through.
        workers: parallel statements (default: :func:`default_workers`).
    """
    workers = default_workers(store) if workers is None else max(1, workers)
    fraction = min(1.0, sample_size / count) if count else 1.0
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
    return Window(
        tally=tally,
        failures=failures,
        tasks=sample,
        samples=tuple(samples),
        start=query.since,
        end=query.until,
        method="sql",
    )
