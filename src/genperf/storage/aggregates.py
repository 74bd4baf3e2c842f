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
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    bindparam,
    cast,
    func,
    literal,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY

from genperf.config import Settings
from genperf.records import TaskRecord, TaskStatus
from genperf.storage import rollups
from genperf.storage.base import TaskQuery
from genperf.storage.engine import is_memory_sqlite
from genperf.storage.schema import UtcDateTime
from genperf.storage.schema import generation_tasks as tasks
from genperf.storage.sql import SqlStore, task_filters
from genperf.storage.tally_sql import as_tally, tally_statement
from genperf.tally import Aggregate, FailureRow, Tally

__all__ = ["aggregate", "tally_statement", "window_size", "window_tally"]

_HASH_MULTIPLIER = 2654435761  # Knuth's multiplicative hash, modulo 2**32
_HASH_SPACE = 2**32
MAX_WORKERS = 4

# The sample's columns: every TaskRecord field but those no analysis reads (long JSON texts,
# completed_at: decoding a datetime per row is a good part of the sample's cost, and a dozen
# more: a third of the columns to fetch and decode).
_SKIPPED = {
    "phases",
    "step_times_seconds",
    "recovery_suggestions",
    "error_message",
    "completed_at",
    *("model_used", "weights_memory_mapped", "samples_count", "current_phase"),
    *("monitor_instance", "gpu_index", "avg_vram_usage_mb", "peak_vram_reserved_mb"),
    *("avg_ram_usage_mb", "peak_cpu_percent", "peak_gpu_utilization_percent"),
    "avg_gpu_temperature_celsius",
}
# Plain interned strings, not SQLAlchemy's quoted_name (a str subclass): TaskRecord(**values)
# matches keyword names by identity first, and with 36 subclass keys it fell back to comparing
# each with every parameter name, half the cost of decoding a sample.
_SAMPLE_FIELDS = [
    sys.intern(str(c.name)) for c in tasks.columns if c.name not in _SKIPPED and c.name != "id"
]

_C = tasks.c
_SAMPLE_COLUMNS = [_C[name] for name in _SAMPLE_FIELDS]
PROBES = 250  # time slices of a probed sample
PROBE_ABOVE = 100_000  # a window with more finished tasks is sampled by probes, not a scan


def _finished(query: TaskQuery) -> list[ColumnElement[bool]]:
    where = task_filters(query)
    if not query.finished_only:
        where.append(_C.status != TaskStatus.RUNNING.value)
    return where


def _tally_where(
    store: SqlStore, settings: Settings, where: Sequence[ColumnElement[bool]]
) -> Tally:
    stmt = tally_statement(store._engine.dialect.name, settings, where)
    with store._read("aggregate tasks") as conn:
        return as_tally(conn.execute(stmt).mappings().one())


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


def window_failures(
    store: SqlStore, query: TaskQuery, extra: Sequence[ColumnElement[bool]] = ()
) -> tuple[FailureRow, ...]:
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
            *extra,
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
    oldest first. Fields no analysis reads (``_SKIPPED``: phases, step times, completed_at
    and more) are left at their defaults."""
    stmt = select(*_SAMPLE_COLUMNS).where(*_finished(query))
    if fraction < 1.0:
        bound = int(fraction * _HASH_SPACE)
        hashed = cast(_C.id, BigInteger) * literal(_HASH_MULTIPLIER, BigInteger) % _HASH_SPACE
        stmt = stmt.where(hashed < bound)
    stmt = stmt.order_by(_C.started_at, _C.id)
    with store._read("sample tasks") as conn:
        rows = conn.execute(stmt).all()
    return tuple(_sampled(row) for row in rows)


def probed_sample(
    store: SqlStore, query: TaskQuery, since: datetime, until: datetime, want: int
) -> tuple[TaskRecord, ...]:
    """About ``want`` finished tasks of a large window without reading the window: the first
    tasks of each of ``PROBES`` equal time slices, each found by an index (started_at, or
    node / model type with started_at), oldest first. A time-stratified sample: its cost is
    ``want`` rows whatever the window holds."""
    probes = max(1, min(PROBES, want))
    per = -(-want // probes)
    step = (until - since) / probes
    # The last slice ends a microsecond after ``until``, the finest time stored, so ``until``
    # itself is in it.
    los = [since + step * k for k in range(probes)]
    his = [*los[1:], until + timedelta(microseconds=1)]
    part = dataclasses.replace(query, since=None, until=None)
    # Rows are decoded as they come: holding every row and its record at once makes twice
    # the surviving objects, and the collector's full passes come twice as often.
    with store._read("sample tasks") as conn:
        if conn.dialect.name == "postgresql":
            rows = conn.execute(_probes_at_once(part, per), {"los": los, "his": his})
            return tuple(_sampled(row) for row in rows)
        # one statement per slice: SQLite has no LATERAL, and no round trip to save
        lo, hi = bindparam("lo", type_=UtcDateTime()), bindparam("hi", type_=UtcDateTime())
        stmt = _probe(part, per, lo, hi)
        return tuple(
            _sampled(row)
            for bounds in zip(los, his, strict=True)
            for row in conn.execute(stmt, {"lo": bounds[0], "hi": bounds[1]})
        )


def _probe(query: TaskQuery, per: int, lo: Any, hi: Any) -> Select[Any]:
    """The first ``per`` finished tasks of the query started in [lo, hi), by an index."""
    return (
        select(*_SAMPLE_COLUMNS)
        .where(*_finished(query), _C.started_at >= lo, _C.started_at < hi)
        .order_by(_C.started_at, _C.id)
        .limit(per)
    )


def _probes_at_once(query: TaskQuery, per: int) -> Select[Any]:
    """Every probe in one PostgreSQL statement: the slices' bounds as two arrays, each slice's
    probe a LATERAL subquery, so a sample costs one round trip instead of one per slice (the
    same rows, in the same order)."""
    bounds = (
        func.unnest(
            bindparam("los", type_=ARRAY(UtcDateTime())),
            bindparam("his", type_=ARRAY(UtcDateTime())),
        )
        .table_valued("lo", "hi")
        .render_derived("bounds")
    )
    probe = _probe(query, per, bounds.c.lo, bounds.c.hi).add_columns(_C.id).lateral("probe")
    return (
        select(*(probe.c[name] for name in _SAMPLE_FIELDS))
        .select_from(bounds)
        .join(probe, true())
        .order_by(probe.c.started_at, probe.c.id)
    )


def _sampled(row: Any) -> TaskRecord:
    values = dict(zip(_SAMPLE_FIELDS, row, strict=True))
    values["status"] = TaskStatus(values["status"])
    values["optimizations_applied"] = _tokens(values["optimizations_applied"])
    values["gpu_throttle_reasons"] = _tokens(values["gpu_throttle_reasons"])
    return TaskRecord(**values)


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
    rolled = _rolled(store, query)
    if rolled is not None:  # whole hours from the roll-ups, the edges from the index
        return rolled_count(store, query, *rolled)
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
    rolled = _rolled(store, query, settings)
    if rolled is not None and query.since is not None and query.until is not None:
        plan, keep = rolled
        tally = rolled_tally(store, query, settings, plan, keep)
        if fraction < 1.0 and tally.tasks > PROBE_ABOVE:
            sample = probed_sample(
                store, query, query.since, query.until, round(fraction * tally.tasks)
            )
        else:
            sample = window_sample(store, query, fraction)
        return Aggregate(tally, rolled_failures(store, query, plan, keep), sample)
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


# --- the same answers from the roll-ups: whole hours and days rolled up, the edges raw -------


def _rolled(
    store: SqlStore, query: TaskQuery, settings: Settings | None = None
) -> tuple[rollups.Plan, rollups.Filter] | None:
    """How to answer ``query`` from the roll-ups, or None where they cannot: no closed window,
    no whole hour in it, nothing rolled up (or a rebuild under way), or, with ``settings``,
    roll-ups made with other bands than theirs."""
    if query.since is None or query.until is None:
        return None
    plan = rollups.plan(query.since, query.until)
    if not plan.hours and not plan.days:
        return None
    with store._read("read the roll-ups' bands") as conn:
        recorded = rollups.recorded_bands(conn)
    if recorded is None or not recorded[0]:
        return None
    if settings is not None and recorded[0] != rollups.fingerprint(settings):
        return None
    return plan, rollups.filter_of(query.nodes, query.node, query.model_type, query.success_only)


def _part(
    query: TaskQuery, start: datetime, end: datetime, end_included: bool = False
) -> tuple[TaskQuery, list[ColumnElement[bool]]]:
    """The query narrowed to [start, end), or [start, end]: a query and extra conditions with
    one range on started_at, so the planner walks only that part of the index (given the
    window's range as well, SQLite may walk the window's)."""
    if end_included:
        return dataclasses.replace(query, since=start, until=end), []
    return dataclasses.replace(query, since=start, until=None), [_C.started_at < end]


def _narrowed(
    query: TaskQuery, start: datetime, end: datetime, end_included: bool = False
) -> list[ColumnElement[bool]]:
    """The conditions of the query's finished tasks in [start, end) (or [start, end])."""
    part, extra = _part(query, start, end, end_included)
    return [*_finished(part), *extra]


def _whole(plan: rollups.Plan) -> tuple[datetime, datetime, bool]:
    """The rolled-up part of a window: from its first whole hour to the end of its last."""
    spans = [*plan.hours, *plan.days]
    first, end = min(lo for lo, _ in spans), max(hi for _, hi in spans)
    return rollups.start_of(first), rollups.start_of(end), False


def rolled_tally(
    store: SqlStore,
    query: TaskQuery,
    settings: Settings,
    plan: rollups.Plan,
    keep: rollups.Filter,
) -> Tally:
    with store._read("read the roll-ups") as conn:
        total = rollups.rolled_tally(conn, plan, keep)
    for edge in plan.raw:
        total += _tally_where(store, settings, _narrowed(query, *edge))
    return total


def rolled_failures(
    store: SqlStore, query: TaskQuery, plan: rollups.Plan, keep: rollups.Filter
) -> tuple[FailureRow, ...]:
    with store._read("read the roll-ups' failures") as conn:
        rows = [
            FailureRow(category, phase, _tokens(opts), status, n)
            for (category, phase, opts, status), n in rollups.rolled_failures(
                conn, plan, keep
            ).items()
        ]
    for edge in plan.raw:
        rows.extend(window_failures(store, *_part(query, *edge)))
    runs: dict[tuple[str | None, str | None, tuple[str, ...], str], int] = {}
    for row in rows:
        key = (row.error_category, row.failed_phase, row.optimizations, row.status)
        runs[key] = runs.get(key, 0) + row.runs
    return tuple(FailureRow(c, p, o, s, n) for (c, p, o, s), n in runs.items())


def rolled_count(
    store: SqlStore, query: TaskQuery, plan: rollups.Plan, keep: rollups.Filter
) -> int:
    """``count_tasks(query)``: finished tasks of whole hours from the roll-ups; the edges,
    and running tasks (never rolled up), from the indexes."""
    with store._read("count the roll-ups") as conn:
        total = rollups.rolled_total(conn, plan, keep)
        for part, extra in _raw_parts(query, plan):
            stmt = select(func.count()).select_from(tasks).where(*task_filters(part), *extra)
            total += int(conn.execute(stmt).scalar_one())
    return total


def _raw_parts(
    query: TaskQuery, plan: rollups.Plan
) -> list[tuple[TaskQuery, list[ColumnElement[bool]]]]:
    """What a count reads raw: the edges, and the running tasks of the whole hours."""
    raw = [_part(query, *edge) for edge in plan.raw]
    if not query.finished_only and not query.success_only:
        part, extra = _part(query, *_whole(plan))
        raw.append((part, [*extra, _C.status == TaskStatus.RUNNING.value]))
    return raw


def rolled_counts_by_node(
    store: SqlStore, query: TaskQuery, plan: rollups.Plan, keep: rollups.Filter
) -> dict[str, dict[str, int]]:
    """``task_counts_by_node(query)`` (every status) from the roll-ups' node grains, the
    edges and the running tasks raw."""
    with store._read("count the roll-ups") as conn:
        counts = rollups.rolled_counts(conn, plan, keep)
        for part, extra in _raw_parts(query, plan):
            stmt = (
                select(_C.node, _C.status, func.count())
                .where(*task_filters(part), *extra)
                .group_by(_C.node, _C.status)
            )
            for node, status, n in conn.execute(stmt):
                per = counts.setdefault(str(node or ""), {})
                per[str(status)] = per.get(str(status), 0) + int(n)
    return counts


def task_counts_by_node(store: SqlStore, query: TaskQuery) -> dict[str, dict[str, int]] | None:
    rolled = _rolled(store, query)
    return None if rolled is None else rolled_counts_by_node(store, query, *rolled)


def count_tasks(store: SqlStore, query: TaskQuery) -> int | None:
    rolled = _rolled(store, query)
    return None if rolled is None else rolled_count(store, query, *rolled)
