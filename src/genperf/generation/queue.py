"""The generation queue: requests persisted in the database, in their own table.

``generation_requests`` lives beside the monitor's ``generation_tasks`` (same database, its own
table, created here with ``CREATE TABLE IF NOT EXISTS``): one row per request, linked to the
monitor's record of its run by ``run_id``. The prompt is generation input, not a metric: it
lives only in this table, only while the request waits or runs (it is cleared when the request
finishes), and never reaches the performance tables, exports or /metrics.

One service per database: at start, requests a previous process left running are failed.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    MetaData,
    RowMapping,
    Select,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    update,
)

from genperf.errors import StoreUnavailableError
from genperf.generation.errors import QueueFullError
from genperf.generation.request import GenerationRequest, RequestStatus
from genperf.records import utc_now
from genperf.storage import MEMORY_URL
from genperf.storage.engine import (
    SQLITE_BEGIN,
    checkpoint_and_truncate,
    make_engine,
    store_errors,
)
from genperf.storage.schema import UtcDateTime

logger = logging.getLogger("genperf.generation")

REQUESTS_TABLE = "generation_requests"
QUEUE_FULL_RETRY_AFTER_SECONDS = 30  # a tiny generation takes seconds, a real one minutes
_ERROR_CHARS = 2000

metadata = MetaData()

generation_requests = Table(
    REQUESTS_TABLE,
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),  # the queue's order
    Column("task_id", String(64), nullable=False),
    Column("model_type", String(100), nullable=False),
    Column("prompt", Text),  # cleared when the request finishes
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("steps", Integer, nullable=False),
    Column("frames", Integer, nullable=False),
    Column("memory_headroom_mib", Integer),
    Column("status", String(20), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("started_at", UtcDateTime),
    Column("completed_at", UtcDateTime),
    Column("run_id", String(64)),  # generation_tasks.run_id of its monitored run
    Column("error_message", Text),  # only for failures outside a monitored run
    Index("uq_generation_requests_task_id", "task_id", unique=True),
    Index("ix_generation_requests_status_id", "status", "id"),
)

# Auto-tune's decisions: the preset each run of a request used and why; a retry after an
# out-of-memory names the run it retries (both runs are in generation_tasks).
generation_tuning = Table(
    "generation_tuning",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("task_id", String(64), nullable=False),
    Column("run_id", String(64)),
    Column("preset", String(64)),  # None: run as configured
    Column("reason", Text, nullable=False),
    Column("retry_of_run_id", String(64)),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_generation_tuning_task_id", "task_id"),
)

# What the history predicted for a request when it was queued (``POST /predict``'s answer, as
# JSON), kept so that predicted against actual is what was said then, not a refit since.
generation_predictions = Table(
    "generation_predictions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("task_id", String(64), nullable=False),
    Column("prediction", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index("uq_generation_predictions_task_id", "task_id", unique=True),
)
MAX_PREDICTION_CHARS = 16_000  # a prediction is ~1-2 kB; a bound keeps a row from growing

_t = generation_requests


@dataclass(frozen=True, slots=True)
class QueuedRequest:
    """A request as the queue keeps it, without its prompt."""

    task_id: str
    model_type: str
    width: int
    height: int
    steps: int
    frames: int
    memory_headroom_mib: int | None
    status: RequestStatus
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    run_id: str | None
    error_message: str | None

    @property
    def resolution(self) -> str:
        return f"{self.width}x{self.height}"


@dataclass(frozen=True, slots=True)
class TuningDecision:
    """The preset one run of a request used (None: as configured), and why."""

    run_id: str | None
    preset: str | None
    reason: str
    retry_of_run_id: str | None
    created_at: datetime


class RequestQueue:
    """Requests in the database, claimed one at a time in submission order.

    Args:
        url: a SQLAlchemy URL (SQLite or PostgreSQL), or ``memory://`` for an in-memory queue.

    A database that is down at start does not stop the queue from being made: its table is
    created at the first use once the database is back.

    Raises:
        StoreError / StoreUnavailableError: the database cannot be opened or written.
    """

    def __init__(self, url: str) -> None:
        self._url = "sqlite://" if url == MEMORY_URL else url
        self._engine: Engine = make_engine(self._url)
        self._writer = self._engine.execution_options(**{SQLITE_BEGIN: "BEGIN IMMEDIATE"})
        self._table_ready = False
        self._fail_abandoned_when_ready = False
        self._setup_lock = threading.Lock()
        try:
            self._ensure_table()
        except StoreUnavailableError as exc:  # down at start: made on the first use after
            logger.warning("generation queue waits for its database: %s", exc)

    def _ensure_table(self) -> None:
        """Create the table once; a database that is down is tried again at the next use."""
        if self._table_ready:
            return
        with self._setup_lock:
            if not self._table_ready:
                with store_errors("create the generation_requests table", self._url):
                    metadata.create_all(self._engine, checkfirst=True)
                self._table_ready = True
                if self._fail_abandoned_when_ready:
                    self.fail_abandoned()

    def fail_abandoned_at_open(self) -> None:
        """Fail abandoned requests now, or, while the database is down, as soon as it is back
        (before the first request is claimed)."""
        self._fail_abandoned_when_ready = True
        try:
            if self._table_ready:
                self.fail_abandoned()
            else:
                self._ensure_table()
        except StoreUnavailableError as exc:
            logger.warning(
                "abandoned generation requests are failed once the database is back: %s", exc
            )

    def close(self) -> None:
        self._engine.dispose()

    # --- writes -----------------------------------------------------------------------------

    def add(self, request: GenerationRequest, *, max_queued: int | None = None) -> None:
        """Queue a request (its task_id must be new).

        Raises:
            QueueFullError: ``max_queued`` requests wait already (counted in the same write
                transaction, so concurrent submitters cannot all slip in on SQLite).
        """
        row = {
            "task_id": request.task_id,
            "model_type": request.model_type,
            "prompt": request.prompt,
            "width": request.width,
            "height": request.height,
            "steps": request.steps,
            "frames": request.frames,
            "memory_headroom_mib": request.memory_headroom_mib,
            "status": RequestStatus.QUEUED.value,
            "created_at": utc_now(),
        }
        with self._write("queue a request") as conn:
            if max_queued is not None:
                waiting = conn.execute(
                    select(func.count()).where(_t.c.status == RequestStatus.QUEUED.value)
                ).scalar_one()
                if waiting >= max_queued:
                    raise QueueFullError(max_queued, QUEUE_FULL_RETRY_AFTER_SECONDS)
            conn.execute(insert(_t), row)

    def claim_next(self) -> GenerationRequest | None:
        """Mark the oldest queued request running and return it (with its prompt), or None."""
        with self._write("claim a request") as conn:
            row = (
                conn.execute(
                    select(_t)
                    .where(_t.c.status == RequestStatus.QUEUED.value)
                    .order_by(_t.c.id)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
                .mappings()
                .first()
            )
            if row is None:
                return None
            claimed = conn.execute(
                update(_t)
                .where(_t.c.id == row["id"], _t.c.status == RequestStatus.QUEUED.value)
                .values(status=RequestStatus.RUNNING.value, started_at=utc_now())
            ).rowcount
        if claimed != 1:
            return None
        return GenerationRequest(
            task_id=row["task_id"],
            model_type=row["model_type"],
            prompt=row["prompt"] or "",
            width=row["width"],
            height=row["height"],
            steps=row["steps"],
            frames=row["frames"],
            memory_headroom_mib=row["memory_headroom_mib"],
        )

    def set_run(self, task_id: str, run_id: str) -> None:
        """Link a running request to the monitor's record of its run."""
        with self._write("link a request to its run") as conn:
            conn.execute(update(_t).where(_t.c.task_id == task_id).values(run_id=run_id))

    def finish(
        self,
        task_id: str,
        status: RequestStatus,
        *,
        run_id: str | None = None,
        error_message: str | None = None,
    ) -> None:
        """Mark a request completed or failed, and forget its prompt."""
        values: dict[str, object] = {
            "status": status.value,
            "completed_at": utc_now(),
            "prompt": None,
        }
        if run_id is not None:
            values["run_id"] = run_id
        if error_message is not None:
            values["error_message"] = error_message[:_ERROR_CHARS]
        with self._write("finish a request") as conn:
            conn.execute(update(_t).where(_t.c.task_id == task_id).values(**values))
        self._forget_prompts()

    def record_tuning(
        self,
        task_id: str,
        run_id: str | None,
        preset: str | None,
        reason: str,
        retry_of_run_id: str | None = None,
    ) -> None:
        """Keep auto-tune's choice for one run of a request, and why."""
        row = {
            "task_id": task_id,
            "run_id": run_id,
            "preset": preset,
            "reason": reason[:_ERROR_CHARS],
            "retry_of_run_id": retry_of_run_id,
            "created_at": utc_now(),
        }
        with self._write("record a tuning decision") as conn:
            conn.execute(insert(generation_tuning), row)

    def tuning(self, task_id: str) -> list[TuningDecision]:
        """Auto-tune's decisions for a request, oldest first."""
        g = generation_tuning
        stmt = (
            select(g.c.run_id, g.c.preset, g.c.reason, g.c.retry_of_run_id, g.c.created_at)
            .where(g.c.task_id == task_id)
            .order_by(g.c.id)
        )
        with self._read("read tuning decisions") as conn:
            return [TuningDecision(**dict(r)) for r in conn.execute(stmt).mappings()]

    def record_prediction(self, task_id: str, prediction: Mapping[str, Any]) -> None:
        """Keep the prediction made for a request when it was queued.

        Raises:
            ValueError: the prediction's JSON is over :data:`MAX_PREDICTION_CHARS`.
        """
        text = json.dumps(prediction, separators=(",", ":"), allow_nan=False)
        if len(text) > MAX_PREDICTION_CHARS:
            raise ValueError(f"prediction: {len(text)} characters, over {MAX_PREDICTION_CHARS}")
        row = {"task_id": task_id, "prediction": text, "created_at": utc_now()}
        with self._write("record a prediction") as conn:
            conn.execute(insert(generation_predictions), row)

    def predictions(self, task_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The kept prediction of each of these requests that has one."""
        if not task_ids:
            return {}
        p = generation_predictions
        stmt = select(p.c.task_id, p.c.prediction).where(p.c.task_id.in_(list(task_ids)))
        with self._read("read predictions") as conn:
            return {task_id: json.loads(text) for task_id, text in conn.execute(stmt)}

    def fail_abandoned(self) -> int:
        """Fail requests left running by a process that stopped; returns how many."""
        with self._write("fail abandoned requests") as conn:
            changed: int = conn.execute(
                update(_t)
                .where(_t.c.status == RequestStatus.RUNNING.value)
                .values(
                    status=RequestStatus.FAILED.value,
                    completed_at=utc_now(),
                    prompt=None,
                    error_message="the service stopped while this generation ran",
                )
            ).rowcount
        if changed:
            self._forget_prompts()
            logger.warning(
                "failed %d generation request(s) left running by a stopped service", changed
            )
        return changed

    # --- reads ------------------------------------------------------------------------------

    def get(self, task_id: str) -> QueuedRequest | None:
        with self._read("read a request") as conn:
            row = conn.execute(_select().where(_t.c.task_id == task_id)).mappings().first()
        return None if row is None else _view(row)

    def list(
        self, status: RequestStatus | None = None, limit: int = 50, offset: int = 0
    ) -> list[QueuedRequest]:
        """Requests, newest first."""
        stmt = _select().order_by(_t.c.id.desc()).limit(limit).offset(offset)
        if status is not None:
            stmt = stmt.where(_t.c.status == status.value)
        with self._read("list requests") as conn:
            rows = conn.execute(stmt).mappings().all()
        return [_view(row) for row in rows]

    def count(self, statuses: Sequence[RequestStatus]) -> int:
        """How many requests are in any of these states."""
        stmt = select(func.count()).where(_t.c.status.in_([s.value for s in statuses]))
        with self._read("count requests") as conn:
            return int(conn.execute(stmt).scalar_one())

    # --- internals --------------------------------------------------------------------------

    def _forget_prompts(self) -> None:
        """Cleared prompts were zeroed in the database file (secure_delete); the WAL still
        holds the pages written before: checkpoint and truncate it, so they are gone now."""
        try:
            checkpoint_and_truncate(self._engine)
        except Exception as exc:  # the next finished request tries again
            logger.debug("cannot checkpoint the generation queue's database: %s", exc)

    @contextmanager
    def _write(self, action: str) -> Iterator[Connection]:
        self._ensure_table()
        with store_errors(action, self._url), self._writer.begin() as conn:
            yield conn

    @contextmanager
    def _read(self, action: str) -> Iterator[Connection]:
        self._ensure_table()
        with store_errors(action, self._url), self._engine.connect() as conn:
            yield conn


def _select() -> Select[Any]:
    return select(*[c for c in _t.c if c.name not in ("id", "prompt")])


def _view(row: RowMapping) -> QueuedRequest:
    data = dict(row)
    data["status"] = RequestStatus(data["status"])
    return QueuedRequest(**data)
