"""Roll-ups: the tally of finished tasks per bucket, kept current as tasks are written.

A bucket is an hour or a UTC day, of one node or of the whole fleet, for one model type,
resolution class and status. Its row in ``genperf_task_rollups`` holds the columns of
:class:`~genperf.tally.Tally`, made by the very statement that tallies a window
(``tally_sql.tally_statement``), so adding the rows of whole hours and days gives exactly what
that statement gives over their tasks (floating-point sums aside, added in another order).
``genperf_task_rollup_failures`` holds the failed and interrupted runs of each bucket by
category, phase and optimisations.

Grains, each made from the one before (never from a running total, so nothing is counted
twice): ``hour_node`` from the raw tasks, ``hour_fleet`` and ``day_node`` from ``hour_node``,
``day_fleet`` from ``day_node``. A write recomputes the buckets of the task it writes (and of
the row it replaces, if that row was in another bucket or finished), in the write's own
transaction, so every writer keeps them current and an updated record is never counted
twice. On PostgreSQL a transaction-scoped advisory lock per (day, model, class) orders
concurrent writers of the same buckets (each recomputes after the other's commit).

The banded counts (targets, VRAM/RAM/CPU bands) depend on settings: ``genperf_rollup_bands``
records the bands the roll-ups were made with, writers use those (not their own), and a
reader whose settings differ reads the raw tasks. Without that row (an existing database
before ``genperf rollups rebuild``) nothing is rolled up and every read is raw. The raw tasks
stay the truth: :func:`rebuild` makes every roll-up again from them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Executable,
    Integer,
    String,
    bindparam,
    cast,
    delete,
    extract,
    func,
    insert,
    literal,
    select,
    text,
)

from genperf.config import BenchmarkTargets, PerformanceThresholds, Settings
from genperf.records import TaskStatus, utc_now
from genperf.storage.schema import ROLLUP_KEY, UtcDateTime, rollup_bands
from genperf.storage.schema import generation_tasks as tasks
from genperf.storage.schema import task_rollup_failures as failures
from genperf.storage.schema import task_rollups as rollups
from genperf.storage.tally_sql import TALLY_FIELDS, as_tally, tally_statement
from genperf.storage.utc import as_utc_or_none
from genperf.tally import Tally

TABLE = rollups.name
HOUR_NODE, HOUR_FLEET, DAY_NODE, DAY_FLEET = "hour_node", "hour_fleet", "day_node", "day_fleet"
FLEET = "*"  # the node of fleet rows
DAY = 24  # hours
_FAILED = (TaskStatus.FAILED.value, TaskStatus.INTERRUPTED.value)
_FAILURE_KEYS = ("error_category", "failed_phase", "optimizations_applied")
_T = tasks.c
_R = rollups.c
_F = failures.c


# --- buckets -------------------------------------------------------------------------------


def hour_of(at: datetime) -> int:
    """The hour an instant falls in, as hours since the epoch (UTC)."""
    return math.floor((as_utc_or_none(at) or at).timestamp() / 3600)


def start_of(hour: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(hours=hour)


@dataclass(frozen=True, order=True)
class TaskKey:
    """Which buckets a stored task row counts in ("" for a NULL text)."""

    hour: int
    node: str
    model_type: str
    resolution_class: str
    status: str

    @property
    def day(self) -> int:
        return self.hour // DAY * DAY


_KEYS_OF = select(_T.started_at, _T.node, _T.model_type, _T.resolution_class, _T.status).where(
    _T.run_id.in_(bindparam("run_ids", expanding=True))
)  # built once: a write reads it before and after its upsert


def task_keys(conn: Connection, run_ids: Sequence[str]) -> list[TaskKey]:
    """The keys of the stored rows of ``run_ids`` (those that exist)."""
    if not run_ids:
        return []
    return [
        TaskKey(hour_of(at), node or "", model or "", cls or "", status or "")
        for at, node, model, cls, status in conn.execute(_KEYS_OF, {"run_ids": list(run_ids)})
        if at is not None
    ]


# --- the band set --------------------------------------------------------------------------


def bands_of(settings: Settings) -> dict[str, Any]:
    """What the roll-ups' banded counts depend on, as JSON-able data."""
    return {
        "performance_thresholds": settings.performance_thresholds.model_dump(mode="json"),
        "benchmark_targets": settings.benchmark_targets.model_dump(mode="json"),
    }


def fingerprint(settings: Settings) -> str:
    return _fingerprint(bands_of(settings))


def _fingerprint(bands: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(bands, sort_keys=True).encode()).hexdigest()


_settings_cache: dict[str, Settings] = {}


def recorded_bands(conn: Connection) -> tuple[str, Settings] | None:
    """The fingerprint of the recorded band set and settings carrying it, or None."""
    row = conn.execute(select(rollup_bands.c.fingerprint, rollup_bands.c.bands)).first()
    if row is None:
        return None
    fp, text_ = row
    cached = _settings_cache.get(fp)
    if cached is None:
        bands = json.loads(text_)
        # Only the two sections the tally reads; no environment, no validation of the rest.
        cached = Settings.model_construct(
            performance_thresholds=PerformanceThresholds.model_validate(
                bands["performance_thresholds"]
            ),
            benchmark_targets=BenchmarkTargets.model_validate(bands["benchmark_targets"]),
        )
        if len(_settings_cache) < 64:
            _settings_cache[fp] = cached
    return str(fp), cached


def record_bands(conn: Connection, settings: Settings, *, building: bool = False) -> None:
    """Roll up with ``settings``' bands from now on. ``building``: a rebuild has begun, so
    writers keep what it rebuilt current but no reader trusts the roll-ups yet (an empty
    fingerprint matches no settings)."""
    bands = bands_of(settings)
    conn.execute(delete(rollup_bands))
    conn.execute(
        insert(rollup_bands).values(
            id=1,
            fingerprint="" if building else _fingerprint(bands),
            bands=json.dumps(bands),
            built_at=utc_now(),
        )
    )


# --- making roll-ups -----------------------------------------------------------------------


def _text_key(column: ColumnElement[Any]) -> ColumnElement[Any]:
    return func.coalesce(column, "")


def _hour_expr(dialect: str) -> ColumnElement[Any]:
    if dialect == "sqlite":  # stored as UTC text; %s reads it as UTC
        return cast(func.strftime("%s", _T.started_at), Integer) // 3600
    return cast(func.floor(extract("epoch", _T.started_at) / 3600), Integer)


Bound = Any  # a value, or a bind parameter standing for one


@dataclass(frozen=True)
class Scope:
    """Buckets to remake: hours [first, end), days [day_first, day_end) and, optionally, one
    node / model / class. The fields are values, or bind parameters (one write's bucket)."""

    first: Bound
    end: Bound
    day_first: Bound
    day_end: Bound
    node: Bound = None
    model_type: Bound = None
    resolution_class: Bound = None

    @classmethod
    def hours(cls, first: int, end: int) -> Scope:
        return cls(first, end, first // DAY * DAY, -(-end // DAY) * DAY)

    def days(self) -> Scope:
        return dataclasses.replace(self, first=self.day_first, end=self.day_end)


# One write's bucket, as bind parameters: its statements are built once per band set.
_ONE_BUCKET = Scope(
    bindparam("first", type_=Integer()),
    bindparam("end", type_=Integer()),
    bindparam("day_first", type_=Integer()),
    bindparam("day_end", type_=Integer()),
    bindparam("node", type_=String()),
    bindparam("model_type", type_=String()),
    bindparam("resolution_class", type_=String()),
)


def _from_tasks(dialect: str, settings: Settings, scope: Scope, *, failed: bool) -> Executable:
    where: list[ColumnElement[bool]] = [
        _T.run_id.is_not(None),
        _T.status != TaskStatus.RUNNING.value,
        _T.started_at >= _time(scope.first),
        _T.started_at < _time(scope.end),
    ]
    for column, value in (
        (_T.node, scope.node),
        (_T.model_type, scope.model_type),
        (_T.resolution_class, scope.resolution_class),
    ):
        if value is not None:
            where.append(_text_key(column) == value)
    keys = [
        _hour_expr(dialect).label("period"),
        _text_key(_T.node).label("node"),
        _text_key(_T.model_type).label("model_type"),
        _text_key(_T.resolution_class).label("resolution_class"),
        _text_key(_T.status).label("status"),
    ]
    if failed:
        fkeys = [_text_key(_T[k]).label(k) for k in _FAILURE_KEYS]
        runs = (
            select(literal(HOUR_NODE), *keys, *fkeys, func.count())
            .where(*where, _T.status.in_(_FAILED))
            .group_by(*keys, *fkeys)
        )
        return insert(failures).from_select([*ROLLUP_KEY, *_FAILURE_KEYS, "runs"], runs)
    tally = tally_statement(dialect, settings, where, keys=keys).subquery("bucket")
    names = [*ROLLUP_KEY, *TALLY_FIELDS]
    rows = select(literal(HOUR_NODE), *(tally.c[n] for n in names[1:]))
    return insert(rollups).from_select(names, rows)


def _time(hour: Bound) -> Any:
    """The first instant of an hour (a value or a parameter)."""
    if isinstance(hour, int):
        return start_of(hour)
    return bindparam(f"{hour.key}_at", type_=UtcDateTime())


def _aggregate(column: str) -> Callable[[Any], ColumnElement[Any]]:
    if column.endswith("_min"):
        return func.min
    if column.endswith("_max"):
        return func.max
    return func.sum


def _from_rows(target: str, source: str, scope: Scope, *, failed: bool) -> Executable:
    """Remake ``target`` buckets by adding up the ``source`` rows they cover."""
    fleet = target.endswith("_fleet")
    table = failures if failed else rollups
    values = ("runs",) if failed else TALLY_FIELDS
    c = table.c
    period = (c.period // DAY * DAY) if target.startswith("day") else c.period
    extra = [c[k] for k in _FAILURE_KEYS] if failed else []
    group = [period, c.model_type, c.resolution_class, c.status, *extra]
    if not fleet:
        group.insert(1, c.node)
    stmt = (
        select(
            literal(target),
            period.label("period"),
            (literal(FLEET) if fleet else c.node).label("node"),
            c.model_type,
            c.resolution_class,
            c.status,
            *extra,
            *(_aggregate(v)(c[v]).label(v) for v in values),
        )
        .where(*_scope_where(c, source, scope, node_too=not fleet))
        .group_by(*group)
    )
    return insert(table).from_select([*ROLLUP_KEY, *_FAILURE_KEYS[: len(extra)], *values], stmt)


def _scope_where(c: Any, grain: str, scope: Scope, *, node_too: bool) -> list[ColumnElement[bool]]:
    where = [c.grain == grain, c.period >= scope.first, c.period < scope.end]
    if node_too and scope.node is not None:
        where.append(c.node == scope.node)
    if scope.model_type is not None:
        where.append(c.model_type == scope.model_type)
    if scope.resolution_class is not None:
        where.append(c.resolution_class == scope.resolution_class)
    return where


def _statements(
    dialect: str, settings: Settings, scope: Scope, *, failed: bool
) -> list[Executable]:
    """Remake every grain's buckets in ``scope`` (its days for the day grains), each from
    the grain below it: the roll-ups, or with ``failed`` the failure rows."""
    table = failures if failed else rollups
    out: list[Executable] = []
    for grain, source, within in (
        (HOUR_NODE, None, scope),
        (HOUR_FLEET, HOUR_NODE, scope),
        (DAY_NODE, HOUR_NODE, scope.days()),
        (DAY_FLEET, DAY_NODE, scope.days()),
    ):
        fleet = grain.endswith("_fleet")
        out.append(delete(table).where(*_scope_where(table.c, grain, within, node_too=not fleet)))
        if source is None:
            out.append(_from_tasks(dialect, settings, within, failed=failed))
        else:
            out.append(_from_rows(grain, source, within, failed=failed))
    return out


def remake(conn: Connection, settings: Settings, scope: Scope) -> None:
    """Remake every roll-up and failure row in ``scope`` from the raw tasks."""
    for failed in (False, True):
        for stmt in _statements(conn.dialect.name, settings, scope, failed=failed):
            conn.execute(stmt)


_bucket_cache: dict[tuple[str, str, bool], list[Executable]] = {}


def _remake_bucket(
    conn: Connection, fp: str, settings: Settings, key: TaskKey, *, failed: bool
) -> None:
    cache_key = (conn.dialect.name, fp, failed)
    stmts = _bucket_cache.get(cache_key)
    if stmts is None:
        stmts = _statements(conn.dialect.name, settings, _ONE_BUCKET, failed=failed)
        if len(_bucket_cache) < 64:
            _bucket_cache[cache_key] = stmts
    params = {
        "first": key.hour,
        "end": key.hour + 1,
        "day_first": key.day,
        "day_end": key.day + DAY,
        "first_at": start_of(key.hour),
        "end_at": start_of(key.hour + 1),
        "node": key.node,
        "model_type": key.model_type,
        "resolution_class": key.resolution_class,
    }
    for stmt in stmts:
        conn.execute(stmt, params)


def refresh(conn: Connection, keys: Iterable[TaskKey]) -> None:
    """Bring the buckets of ``keys`` (a written task's new and former rows) up to date, in
    the caller's transaction. Running rows count nowhere; without a band set, nothing is
    rolled up."""
    finished = sorted({k for k in keys if k.status != TaskStatus.RUNNING.value})
    if not finished:
        return
    recorded = recorded_bands(conn)
    if recorded is None:
        return
    fp, settings = recorded
    failed = any(k.status in _FAILED for k in finished)
    if conn.dialect.name == "postgresql":
        for day, model, cls in sorted(
            {(k.day, k.model_type, k.resolution_class) for k in finished}
        ):
            lock = int.from_bytes(
                hashlib.blake2b(f"{day}|{model}|{cls}".encode(), digest_size=8).digest(),
                "big",
                signed=True,
            )
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock})
    buckets = {dataclasses.replace(k, status=""): None for k in finished}
    for bucket in buckets:
        _remake_bucket(conn, fp, settings, bucket, failed=False)
        if failed:
            _remake_bucket(conn, fp, settings, bucket, failed=True)


# --- reading roll-ups ----------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """A window cut into raw edges (start, end, end included) and whole hours and days."""

    raw: list[tuple[datetime, datetime, bool]] = field(default_factory=list)
    hours: list[tuple[int, int]] = field(default_factory=list)
    days: list[tuple[int, int]] = field(default_factory=list)


def plan(since: datetime, until: datetime) -> Plan:
    first = -(-math.ceil((as_utc_or_none(since) or since).timestamp()) // 3600)
    end = hour_of(until)  # hours [first, end) are whole; [start_of(end), until] is raw
    if first >= end:
        return Plan(raw=[(since, until, True)])
    out = Plan()
    if since < start_of(first):
        out.raw.append((since, start_of(first), False))
    out.raw.append((start_of(end), until, True))
    day_first, day_end = -(-first // DAY) * DAY, end // DAY * DAY
    if day_first < day_end:
        out.days.append((day_first, day_end))
        for lo, hi in ((first, day_first), (day_end, end)):
            if lo < hi:
                out.hours.append((lo, hi))
    else:
        out.hours.append((first, end))
    return out


@dataclass(frozen=True)
class Filter:
    """What a query keeps: nodes (empty: all), a model type, statuses (empty: all)."""

    nodes: tuple[str, ...] = ()
    model_type: str | None = None
    statuses: tuple[str, ...] = ()


def _where(c: Any, grain: str, lo: int, hi: int, keep: Filter) -> list[ColumnElement[bool]]:
    where = [c.grain == grain, c.period >= lo, c.period < hi]
    if keep.nodes:
        where.append(c.node.in_(keep.nodes))
    if keep.model_type is not None:
        where.append(c.model_type == keep.model_type)
    if keep.statuses:
        where.append(c.status.in_(keep.statuses))
    return where


def _ranges(p: Plan, *, per_node: bool) -> list[tuple[str, int, int]]:
    suffix = "_node" if per_node else "_fleet"
    return [("hour" + suffix, lo, hi) for lo, hi in p.hours] + [
        ("day" + suffix, lo, hi) for lo, hi in p.days
    ]


def rolled_tally(conn: Connection, p: Plan, keep: Filter) -> Tally:
    total = Tally()
    for grain, lo, hi in _ranges(p, per_node=bool(keep.nodes)):
        stmt = select(*(_aggregate(n)(_R[n]).label(n) for n in TALLY_FIELDS)).where(
            *_where(_R, grain, lo, hi, keep)
        )
        total += as_tally(conn.execute(stmt).mappings().one())
    return total


def rolled_failures(conn: Connection, p: Plan, keep: Filter) -> dict[tuple[Any, ...], int]:
    """(category, phase, optimisations, status) -> runs ("" read back as None)."""
    out: dict[tuple[Any, ...], int] = {}
    keys = [_F.error_category, _F.failed_phase, _F.optimizations_applied, _F.status]
    for grain, lo, hi in _ranges(p, per_node=bool(keep.nodes)):
        stmt = (
            select(*keys, func.sum(_F.runs)).where(*_where(_F, grain, lo, hi, keep)).group_by(*keys)
        )
        for row in conn.execute(stmt):
            key = (row[0] or None, row[1] or None, row[2] or None, row[3])
            out[key] = out.get(key, 0) + int(row[4])
    return out


def rolled_total(conn: Connection, p: Plan, keep: Filter) -> int:
    """Finished tasks of the whole hours and days (the fleet grains unless nodes are kept)."""
    total = 0
    for grain, lo, hi in _ranges(p, per_node=bool(keep.nodes)):
        stmt = select(func.sum(_R.tasks)).where(*_where(_R, grain, lo, hi, keep))
        total += int(conn.execute(stmt).scalar_one() or 0)
    return total


def rolled_counts(conn: Connection, p: Plan, keep: Filter) -> dict[str, dict[str, int]]:
    """node -> status -> finished tasks, from the node grains."""
    out: dict[str, dict[str, int]] = {}
    for grain, lo, hi in _ranges(p, per_node=True):
        where = _where(_R, grain, lo, hi, keep)
        stmt = (
            select(_R.node, _R.status, func.sum(_R.tasks))
            .where(*where)
            .group_by(_R.node, _R.status)
        )
        for node, status, n in conn.execute(stmt):
            per = out.setdefault(str(node), {})
            per[str(status)] = per.get(str(status), 0) + int(n)
    return out


# --- rebuilding ----------------------------------------------------------------------------


def hours_span(conn: Connection) -> tuple[int, int] | None:
    """The hours [first, end) holding stored tasks, or None without any."""
    first, last = conn.execute(select(func.min(_T.started_at), func.max(_T.started_at))).one()
    if first is None or last is None:
        return None
    return hour_of(first), hour_of(last) + 1


def clear_all(conn: Connection) -> None:
    conn.execute(delete(rollups))
    conn.execute(delete(failures))


def rebuild_step(conn: Connection, settings: Settings, first_day: int, end_day: int) -> None:
    """Remake the buckets of the days [first_day, end_day) (first hours) from the raw tasks."""
    remake(conn, settings, Scope(first_day, end_day, first_day, end_day))


def days_of(span: tuple[int, int] | None) -> list[int]:
    """The first hour of each UTC day that ``span`` (hours [first, end)) touches."""
    if span is None:
        return []
    return list(range(span[0] // DAY * DAY, span[1], DAY))


def filter_of(
    nodes: Sequence[str], node: str | None, model_type: str | None, success_only: bool
) -> Filter:
    wanted = set(nodes)
    if node is not None:
        wanted = wanted & {node} if wanted else {node}
        if not wanted:
            wanted = {"\x00"}  # no node matches both filters
    statuses = (TaskStatus.COMPLETED.value,) if success_only else ()
    return Filter(tuple(sorted(wanted)), model_type, statuses)
