"""SqlStore: the Store on SQLite (the default, a file) or PostgreSQL (psycopg 3).

One engine, safe for many threads: each call checks a connection out of the pool for one
short transaction; sample batches keep a connection of their own (sample_insert.py).
Opening the store brings the schema to head (see migrate.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    and_,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from genperf.config import Settings, redact_url
from genperf.errors import StoreError, UnknownCursorError
from genperf.records import TASK_FIELDS, ErrorCategory, SystemSample, TaskRecord, TaskStatus
from genperf.storage import rollups
from genperf.storage.adopt import ServiceTable
from genperf.storage.base import MAX_NODES, NodeHead, SampleQuery, TaskQuery, instance_prefix
from genperf.storage.changes import ConfigurationChange, read_changes
from genperf.storage.codec import row_to_sample, row_to_task, task_to_row
from genperf.storage.engine import (
    POSTGRES_WRITE_TIMEOUT_MS,
    SQLITE_BEGIN,
    is_memory_sqlite,
    make_engine,
    store_errors,
)
from genperf.storage.migrate import upgrade_database
from genperf.storage.sample_insert import SampleInserter
from genperf.storage.schema import generation_tasks as tasks
from genperf.storage.schema import genperf_monitors as monitors
from genperf.storage.schema import system_samples as samples
from genperf.tally import Aggregate

logger = logging.getLogger("genperf.storage")

_TASK_COLUMNS = [tasks.c[name] for name in TASK_FIELDS]
REBUILD_STEP_TIMEOUT_MS = 600_000  # one step of a roll-up rebuild on PostgreSQL
_IN_CHUNK = 500  # run ids per IN (...) list, well under every driver's parameter limit


class SqlStore:
    """The durable Store. See :class:`genperf.storage.base.Store` for the contract.

    Args:
        url: a SQLAlchemy URL: ``sqlite:///path/genperf.db`` (the directory is created),
            ``sqlite://`` (in memory), ``postgresql://user:pw@host/db`` (psycopg 3 is used).
        engine_kwargs: extra arguments for ``sqlalchemy.create_engine`` (``connect_args``
            are merged with genperf's own).

    Raises:
        StoreUnavailableError: the database cannot be reached.
        StoreError: the URL is not supported, or the schema cannot be brought up to date.
    """

    def __init__(self, url: str, *, engine_kwargs: Mapping[str, Any] | None = None) -> None:
        self._url = url
        self.url = redact_url(url)  # safe to show and log
        self._closed = False
        self._engine: Engine = make_engine(url, engine_kwargs)
        try:
            upgrade_database(self._engine)
            # A service's own generation_tasks, adopted: its rows are filled, its keys kept.
            with store_errors("read the task table", url):
                self._service = ServiceTable.reflect(self._engine, tasks)
        except BaseException:
            self._engine.dispose()
            raise
        # Writers take SQLite's write lock when they begin (ignored by PostgreSQL).
        self._writer = self._engine.execution_options(**{SQLITE_BEGIN: "BEGIN IMMEDIATE"})
        dialect = self._engine.dialect.name
        self._postgres = dialect == "postgresql"
        insert_ = postgresql.insert(tasks) if dialect == "postgresql" else sqlite.insert(tasks)
        self._upsert = insert_.on_conflict_do_update(
            index_elements=[tasks.c.run_id],
            set_={name: insert_.excluded[name] for name in TASK_FIELDS if name != "run_id"},
        )
        # Samples take a lean path of their own (sample_insert.py): an in-memory database
        # lives in the pool's one connection, which the store's other calls need in turn.
        self._samples = SampleInserter(
            self._engine, url, keep_connection=not is_memory_sqlite(self._engine.url)
        )
        logger.info("task store open: %s", self.url)

    def __repr__(self) -> str:
        return f"SqlStore({self.url!r})"

    # --- writes -------------------------------------------------------------------------

    def save_task(self, record: TaskRecord) -> None:
        with self._write("save task") as conn:
            # the row it replaces counts in the roll-ups until they are remade without it
            before = rollups.task_keys(conn, [record.run_id])
            if self._service is None:
                conn.execute(self._upsert, task_to_row(record))
            else:
                self._service.save(conn, task_to_row(record))
            rollups.refresh(conn, [*before, *rollups.task_keys(conn, [record.run_id])])

    def save_samples(self, batch: Sequence[SystemSample]) -> None:
        if not batch:
            return
        if self._closed:
            raise StoreError(f"cannot save samples: the store {self.url} is closed")
        self._samples.insert(batch)

    def mark_interrupted(self, run_ids: Sequence[str], completed_at: datetime) -> int:
        changed = 0
        ids = list(dict.fromkeys(run_ids))
        with self._write("mark tasks interrupted") as conn:
            for start in range(0, len(ids), _IN_CHUNK):
                stmt = (
                    update(tasks)
                    .where(
                        tasks.c.run_id.in_(ids[start : start + _IN_CHUNK]),
                        tasks.c.status == TaskStatus.RUNNING.value,
                    )
                    .values(
                        status=TaskStatus.INTERRUPTED.value,
                        completed_at=completed_at,
                        error_category=func.coalesce(
                            tasks.c.error_category, ErrorCategory.INTERRUPTED.value
                        ),
                    )
                )
                chunk = conn.execute(stmt).rowcount
                if chunk:
                    rollups.refresh(conn, rollups.task_keys(conn, ids[start : start + _IN_CHUNK]))
                changed += chunk
        return changed

    def monitor_started(self, instance: str, node: str, at: datetime) -> None:
        """Record that a monitor started writing here (see :meth:`live_monitors`)."""
        with self._write("record a monitor's start") as conn:
            conn.execute(delete(monitors).where(monitors.c.instance == instance))
            conn.execute(insert(monitors).values(instance=instance, node=node, started_at=at))

    def monitor_stopped(self, instance: str, at: datetime) -> None:
        """Record that a monitor stopped."""
        with self._write("record a monitor's stop") as conn:
            conn.execute(
                update(monitors).where(monitors.c.instance == instance).values(stopped_at=at)
            )

    def monitors(self) -> list[tuple[str, str, bool]]:
        """(instance, node, stopped) of every monitor that started writing here (one killed
        never says it stopped: callers check its process, or its samples' age)."""
        stmt = select(monitors.c.instance, monitors.c.node, monitors.c.stopped_at)
        with self._read("read the monitors") as conn:
            return [(str(i), str(n), s is not None) for i, n, s in conn.execute(stmt)]

    def configuration_changes(
        self, since: datetime | None = None, limit: int = 100
    ) -> list[ConfigurationChange]:
        """Recorded configuration changes, newest first (see :mod:`genperf.storage.changes`)."""
        with self._read("read configuration changes") as conn:
            return read_changes(conn, since=since, limit=limit)

    def task_rows(
        self, after_id: int, ids: Sequence[int], limit: int
    ) -> list[tuple[int, TaskRecord]]:
        """(row id, record) of the task rows with an id above ``after_id`` (the first
        ``limit``, by id) and of those whose id is in ``ids``: a feed for readers that fold
        each finished row once (Prometheus' task families, see exporters/prometheus_tasks).
        Both reads use the primary key, so each costs what it returns, not the table."""
        columns = (tasks.c.id, *_TASK_COLUMNS)
        out: list[tuple[int, TaskRecord]] = []
        with self._read("read new task rows") as conn:
            newer = select(*columns).where(tasks.c.id > after_id).order_by(tasks.c.id)
            rows = list(conn.execute(newer.limit(limit)).mappings())
            wanted = sorted(set(ids))
            for start in range(0, len(wanted), _IN_CHUNK):
                chunk = wanted[start : start + _IN_CHUNK]
                rows.extend(conn.execute(select(*columns).where(tasks.c.id.in_(chunk))).mappings())
        for row in rows:
            out.append((int(row["id"]), row_to_task(row)))
        return out

    def prune_samples(self, older_than: datetime) -> int:
        with self._write("prune samples") as conn:
            return conn.execute(delete(samples).where(samples.c.taken_at < older_than)).rowcount

    # --- reads --------------------------------------------------------------------------

    def get_task(self, task_id: str) -> TaskRecord | None:
        stmt = (
            select(*_TASK_COLUMNS)
            .where(tasks.c.task_id == task_id, tasks.c.run_id.is_not(None))
            .order_by(tasks.c.started_at.desc(), tasks.c.id.desc())
            .limit(1)
        )
        return self._one_task(stmt)

    def get_run(self, run_id: str) -> TaskRecord | None:
        return self._one_task(select(*_TASK_COLUMNS).where(tasks.c.run_id == run_id))

    def query_tasks(self, query: TaskQuery) -> list[TaskRecord]:
        stmt = _ordered(select(*_TASK_COLUMNS).where(*task_filters(query)), query)
        with self._read("query tasks") as conn:
            if query.after_run is None:
                stmt = stmt.offset(query.offset or None)
            else:
                anchor = conn.execute(
                    select(tasks.c.started_at, tasks.c.id).where(tasks.c.run_id == query.after_run)
                ).first()
                if anchor is None:
                    raise UnknownCursorError(query.after_run)
                stmt = stmt.where(_after((anchor[0], anchor[1]), query.newest_first))
            rows = conn.execute(stmt.limit(query.limit)).mappings().all()
        return [row_to_task(row) for row in rows]

    def iter_tasks(self, query: TaskQuery, batch_size: int = 1000) -> Iterator[TaskRecord]:
        """Keyset pagination on (started_at, id): each batch is one short query, so memory
        stays bounded and no connection is held while the caller works between batches."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        return self._iter_tasks(query, batch_size)

    def _iter_tasks(self, query: TaskQuery, batch_size: int) -> Iterator[TaskRecord]:
        remaining = query.limit
        last: tuple[datetime, Any] | None = None
        base = _ordered(select(tasks.c.id, *_TASK_COLUMNS).where(*task_filters(query)), query)
        while remaining is None or remaining > 0:
            size = batch_size if remaining is None else min(batch_size, remaining)
            if last is None:
                stmt = base.offset(query.offset or None).limit(size)
            else:
                stmt = base.where(_after(last, query.newest_first)).limit(size)
            with self._read("read tasks") as conn:
                rows = conn.execute(stmt).mappings().all()
            for row in rows:
                yield row_to_task(row)
            if len(rows) < size:
                return
            last = (rows[-1]["started_at"], rows[-1]["id"])
            if remaining is not None:
                remaining -= len(rows)

    def count_tasks(self, query: TaskQuery) -> int:
        from genperf.storage import aggregates

        rolled = aggregates.count_tasks(self, query)
        if rolled is not None:
            return rolled
        stmt = select(func.count()).select_from(tasks).where(*task_filters(query))
        with self._read("count tasks") as conn:
            return int(conn.execute(stmt).scalar_one())

    def query_samples(self, query: SampleQuery = SampleQuery()) -> list[SystemSample]:
        stmt = select(samples)
        if query.nodes:
            stmt = stmt.where(samples.c.node.in_(query.nodes))
        if query.since is not None:
            stmt = stmt.where(samples.c.taken_at >= query.since)
        if query.until is not None:
            stmt = stmt.where(samples.c.taken_at <= query.until)
        if query.limit is None:
            stmt = stmt.order_by(samples.c.taken_at, samples.c.id)
        else:  # the newest `limit`, returned oldest first
            stmt = stmt.order_by(samples.c.taken_at.desc(), samples.c.id.desc())
            stmt = stmt.limit(query.limit)
        with self._read("query samples") as conn:
            rows = conn.execute(stmt).mappings().all()
        if query.limit is not None:
            rows = list(reversed(rows))
        return [row_to_sample(row) for row in rows]

    def node_heads(self, since: datetime | None, per_node: int) -> list[NodeHead]:
        """One short query per node, each answered from the (node, taken_at) index."""
        names = select(samples.c.node).distinct().order_by(samples.c.node).limit(MAX_NODES)
        if since is not None:
            names = names.where(samples.c.taken_at >= since)
        heads = []
        with self._read("read the nodes' samples") as conn:
            for node in conn.execute(names).scalars().all():
                stmt = (
                    select(samples)
                    .where(samples.c.node == node)
                    .order_by(samples.c.taken_at.desc(), samples.c.id.desc())
                    .limit(per_node)
                )
                rows = conn.execute(stmt).mappings().all()
                heads.append(
                    NodeHead(
                        node,
                        tuple(row_to_sample(row) for row in rows),
                        rows[0]["genperf_version"] if rows else None,
                    )
                )
        return heads

    def task_counts_by_node(self, query: TaskQuery) -> dict[str, dict[str, int]]:
        from genperf.storage import aggregates

        rolled = aggregates.task_counts_by_node(self, query)
        if rolled is not None:
            return rolled
        stmt = (
            select(tasks.c.node, tasks.c.status, func.count())
            .where(*task_filters(query))
            .group_by(tasks.c.node, tasks.c.status)
        )
        counts: dict[str, dict[str, int]] = {}
        with self._read("count tasks per node") as conn:
            for node, status, count in conn.execute(stmt).all():
                counts.setdefault(str(node), {})[str(status)] = int(count)
        return counts

    def generation_times(self, query: TaskQuery) -> list[tuple[str, float]]:
        stmt = _ordered(
            select(tasks.c.resolution_class, tasks.c.generation_time_seconds).where(
                *task_filters(query), tasks.c.generation_time_seconds.is_not(None)
            ),
            query,
        )
        stmt = stmt.offset(query.offset or None).limit(query.limit)
        with self._read("read generation times") as conn:
            return [(str(c), float(t)) for c, t in conn.execute(stmt).all()]

    def task_outcomes(self, query: TaskQuery) -> list[TaskRecord]:
        """The matching records with only what comparing two windows needs (model type,
        class, status, start, time, peak VRAM and RSS; every other field at its default), in
        the query's order, ``limit`` honoured: a narrow read, several times cheaper than
        decoding whole records (see benchmarks/config_changes.py)."""
        c = tasks.c
        stmt = _ordered(
            select(*(c[name] for name in _OUTCOME_FIELDS)).where(*task_filters(query)), query
        )
        with self._read("read task outcomes") as conn:
            rows = conn.execute(stmt.limit(query.limit)).mappings().all()
        return [
            TaskRecord(**{**row, "status": TaskStatus(row["status"]), "steps": None})
            for row in rows
        ]

    def running_tasks(self, node: str, *, recorded_there: bool = False) -> list[TaskRecord]:
        where = tasks.c.node == node
        if recorded_there:
            recorded = tasks.c.monitor_instance.startswith(instance_prefix(node), autoescape=True)
            where = or_(where, recorded)
        stmt = (
            select(*_TASK_COLUMNS)
            .where(where, tasks.c.status == TaskStatus.RUNNING.value)
            .where(tasks.c.run_id.is_not(None))
            .order_by(tasks.c.started_at, tasks.c.id)
        )
        with self._read("read running tasks") as conn:
            rows = conn.execute(stmt).mappings().all()
        return [row_to_task(row) for row in rows]

    # --- a large window totalled by the database (analysis' AggregatingStore) -----------
    # aggregates.py imports this module, hence the imports inside the methods.

    def window_size(self, query: TaskQuery) -> int:
        """About how many tasks the window holds, from an index alone (an upper bound)."""
        from genperf.storage import aggregates

        return aggregates.window_size(self, query)

    def aggregate_window(
        self, settings: Settings, query: TaskQuery, *, fraction: float
    ) -> Aggregate:
        """The window's exact tally and failure rows, and about ``fraction`` of its tasks."""
        from genperf.storage import aggregates

        return aggregates.aggregate(self, settings, query, fraction=fraction)

    # --- roll-ups (see rollups.py) ------------------------------------------------------

    def rollup_bands(self) -> str | None:
        """The fingerprint of the bands the roll-ups are made with ("" while a rebuild runs),
        or None when nothing is rolled up."""
        with self._read("read the roll-ups' bands") as conn:
            recorded = rollups.recorded_bands(conn)
        return None if recorded is None else recorded[0]

    def start_rollups(self, settings: Settings) -> bool:
        """Roll up from now on with ``settings``' bands if nothing is rolled up yet and no
        task is stored (else the roll-ups need :meth:`rebuild_rollups`). True if it did."""
        with self._write("start the roll-ups") as conn:
            if rollups.recorded_bands(conn) is not None:
                return False
            if conn.execute(select(tasks.c.id).limit(1)).first() is not None:
                return False
            rollups.record_bands(conn, settings)
        return True

    def rebuild_rollups(
        self,
        settings: Settings,
        *,
        days_per_step: int = 7,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Make every roll-up again from the raw tasks, with ``settings``' bands, a few days
        per transaction; ``progress(done, total)`` hears of each step. Readers use the raw
        tasks meanwhile; writers keep rebuilt days current. Returns the days rebuilt."""
        if days_per_step < 1:
            raise ValueError(f"days_per_step must be >= 1, got {days_per_step}")
        with self._write("start rebuilding the roll-ups") as conn:
            rollups.record_bands(conn, settings, building=True)
            rollups.clear_all(conn)
            span = rollups.hours_span(conn)
        days = rollups.days_of(span)
        total = len(days)
        for done in range(0, total, days_per_step):
            step = days[done : done + days_per_step]
            with self._write("rebuild the roll-ups") as conn:
                if self._postgres:  # a writer's recompute waits for this step's (see rollups)
                    # a step reads days of tasks: longer than a write's bound, still bounded
                    conn.exec_driver_sql(f"SET LOCAL statement_timeout = {REBUILD_STEP_TIMEOUT_MS}")
                    conn.exec_driver_sql(f"LOCK TABLE {rollups.TABLE} IN EXCLUSIVE MODE")
                rollups.rebuild_step(conn, settings, step[0], step[-1] + rollups.DAY)
            if progress is not None:
                progress(min(done + days_per_step, total), total)
        with self._write("finish rebuilding the roll-ups") as conn:
            rollups.record_bands(conn, settings)
        return total

    # --- lifecycle ----------------------------------------------------------------------

    def ping(self) -> bool:
        if self._closed:
            return False
        try:
            with self._read("ping") as conn:
                conn.execute(select(1))
        except StoreError as exc:
            logger.debug("ping failed: %s", exc)
            return False
        return True

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._samples.close()
            self._engine.dispose()

    # --- helpers ------------------------------------------------------------------------

    def _one_task(self, stmt: Select[Any]) -> TaskRecord | None:
        with self._read("read a task") as conn:
            row = conn.execute(stmt).mappings().first()
        return None if row is None else row_to_task(row)

    def _read(self, action: str) -> AbstractContextManager[Connection]:
        return self._connection(self._engine, action, commit=False)

    def _write(self, action: str) -> AbstractContextManager[Connection]:
        return self._connection(self._writer, action, commit=True)

    @contextmanager
    def _connection(self, engine: Engine, action: str, *, commit: bool) -> Iterator[Connection]:
        """A connection for one action; ``commit``: one transaction, committed at the end."""
        if self._closed:
            raise StoreError(f"cannot {action}: the store {self.url} is closed")
        with store_errors(action, self._url), engine.connect() as conn:
            if commit and self._postgres:
                # Bounded on the server too (a lock held by another session): SET LOCAL ends
                # with the transaction, so reads keep the server's default.
                conn.exec_driver_sql(f"SET LOCAL statement_timeout = {POSTGRES_WRITE_TIMEOUT_MS}")
            yield conn
            if commit:
                conn.commit()


_OUTCOME_FIELDS = (
    "run_id",
    "task_id",
    "node",
    "model_type",
    "resolution",
    "resolution_class",
    "status",
    "started_at",
    "generation_time_seconds",
    "peak_vram_usage_mb",
    "peak_process_rss_mb",
)


def task_filters(query: TaskQuery) -> list[ColumnElement[bool]]:
    """The WHERE conditions of a query (also used by ``aggregates``)."""
    # Rows without a run_id belong to a service that shares an adopted table: never ours.
    where: list[ColumnElement[bool]] = [tasks.c.run_id.is_not(None)]
    if query.since is not None:
        where.append(tasks.c.started_at >= query.since)
    if query.until is not None:
        where.append(tasks.c.started_at <= query.until)
    if query.model_type is not None:
        where.append(tasks.c.model_type == query.model_type)
    if query.node is not None:
        where.append(tasks.c.node == query.node)
    if query.nodes:
        where.append(tasks.c.node.in_(query.nodes))
    if query.success_only:
        where.append(tasks.c.status == TaskStatus.COMPLETED.value)
    if query.finished_only:
        where.append(tasks.c.status != TaskStatus.RUNNING.value)
    return where


def _ordered(stmt: Select[Any], query: TaskQuery) -> Select[Any]:
    # id breaks ties between equal start times, so order and pagination are stable.
    if query.newest_first:
        return stmt.order_by(tasks.c.started_at.desc(), tasks.c.id.desc())
    return stmt.order_by(tasks.c.started_at, tasks.c.id)


def _after(last: tuple[datetime, Any], newest_first: bool) -> ColumnElement[bool]:
    """Rows that come after ``last`` (started_at, id) in the query's order."""
    started_at, id_ = last
    if newest_first:
        return or_(
            tasks.c.started_at < started_at,
            and_(tasks.c.started_at == started_at, tasks.c.id < id_),
        )
    return or_(
        tasks.c.started_at > started_at,
        and_(tasks.c.started_at == started_at, tasks.c.id > id_),
    )
