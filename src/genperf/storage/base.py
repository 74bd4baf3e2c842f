"""The Store protocol: where samples and task records live.

Implementations: :class:`genperf.storage.sql.SqlStore` (SQLite by default, PostgreSQL by URL)
and :class:`genperf.storage.memory.MemoryStore` (tests, and a monitor with persistence off).
One contract suite (tests/storage/test_store_contract.py) runs over every implementation.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from typing import Protocol, runtime_checkable

from genperf.records import SystemSample, TaskRecord


@dataclass(frozen=True, slots=True)
class TaskQuery:
    """Which task records to read. Times compare against ``started_at`` (UTC)."""

    since: datetime | None = None
    until: datetime | None = None
    model_type: str | None = None
    success_only: bool = False
    node: str | None = None
    nodes: tuple[str, ...] = ()  # any of these nodes (empty: every node)
    finished_only: bool = False  # leave out tasks still running
    newest_first: bool = True
    limit: int | None = None
    offset: int = 0
    # Keyset paging: the rows after this run's in the query's order (offset then ignored), so
    # a deep page is an index seek, not a walk over every row before it.
    after_run: str | None = None


@dataclass(frozen=True, slots=True)
class SampleQuery:
    """Which samples to read: taken in [since, until] (UTC), oldest first; the newest
    ``limit`` when given; of ``nodes`` only when given (empty: every node)."""

    since: datetime | None = None
    until: datetime | None = None
    limit: int | None = None
    nodes: tuple[str, ...] = ()


def instance_prefix(node: str) -> str:
    """How the instance ids of ``node``'s processes begin: a ``monitor_instance`` is
    ``node:pid:start time`` (only ``node``'s machine can tell whether that process lives)."""
    return f"{node}:"


@functools.cache
def genperf_version() -> str | None:
    """The installed genperf's version, recorded with the samples this process writes."""
    try:
        return metadata.version("genperf")
    except metadata.PackageNotFoundError:
        return None


@dataclass(frozen=True, slots=True)
class NodeHead:
    """The newest samples of one node (newest first) and the genperf version that wrote the
    newest one (None where unknown: samples written before genperf recorded it)."""

    node: str
    samples: tuple[SystemSample, ...]
    genperf_version: str | None


MAX_NODES = 1024  # nodes a fleet read lists at most


@runtime_checkable
class Store(Protocol):
    """Durable home of samples and task records.

    Writes are idempotent per ``run_id`` (``save_task`` is an upsert), so a retried write
    after an outage never duplicates a task. Every method may raise
    :class:`genperf.errors.StoreError`; the monitor catches it, the caller never sees it.
    """

    def save_task(self, record: TaskRecord) -> None:
        """Insert or replace the record with this run_id; durable when it returns."""

    def save_samples(self, samples: Sequence[SystemSample]) -> None:
        """Append a batch of samples in one transaction."""

    def get_task(self, task_id: str) -> TaskRecord | None:
        """The latest run of this task id, or None."""

    def get_run(self, run_id: str) -> TaskRecord | None:
        """One run by its run_id, or None."""

    def query_tasks(self, query: TaskQuery) -> list[TaskRecord]:
        """Task records matching the query, ordered by started_at."""

    def iter_tasks(self, query: TaskQuery, batch_size: int = 1000) -> Iterator[TaskRecord]:
        """Like query_tasks, streamed in batches so a million records fit in bounded memory."""

    def count_tasks(self, query: TaskQuery) -> int:
        """How many records match (limit and offset ignored)."""

    def query_samples(self, query: SampleQuery = SampleQuery()) -> list[SystemSample]:
        """The samples ``query`` selects, oldest first."""

    def node_heads(self, since: datetime | None, per_node: int) -> list[NodeHead]:
        """Each node with a sample taken at or after ``since`` (at most ``MAX_NODES``, by
        name): its newest ``per_node`` samples, newest first."""

    def task_counts_by_node(self, query: TaskQuery) -> dict[str, dict[str, int]]:
        """How many records match, per node and status (limit and offset ignored)."""

    def generation_times(self, query: TaskQuery) -> list[tuple[str, float]]:
        """(resolution_class, generation_time_seconds) of the matching records that have a
        time, in the query's order, ``limit`` and ``offset`` honoured: a narrow read."""

    def running_tasks(self, node: str, *, recorded_there: bool = False) -> list[TaskRecord]:
        """Records still marked running on this node (to find those a dead process left),
        oldest first. ``recorded_there``: also those a process on this node recorded for
        another node (a service posting its tasks to this node's API): a dead API process
        leaves those running too."""

    def mark_interrupted(self, run_ids: Sequence[str], completed_at: datetime) -> int:
        """Mark these running runs interrupted; returns how many changed."""

    def task_rows(
        self, after_id: int, ids: Sequence[int], limit: int
    ) -> list[tuple[int, TaskRecord]]:
        """(row id, record) of the first ``limit`` records with a row id above ``after_id``
        (by id) and of those whose row id is in ``ids``: a feed that reads only what changed
        (Prometheus' task families, genperf.exporters.prometheus_tasks)."""

    def prune_samples(self, older_than: datetime) -> int:
        """Delete samples taken before ``older_than``; returns how many."""

    def ping(self) -> bool:
        """True when the database answers."""

    def close(self) -> None:
        """Release connections. Idempotent."""
