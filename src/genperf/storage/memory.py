"""MemoryStore: the Store in this process's memory, for tests and a monitor with persistence off.

It obeys the same contract as SqlStore (one test suite runs over both): same filters, same
order (started_at, then first-save order), same UTC handling of naive datetimes.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime

from genperf.errors import StoreError, UnknownCursorError
from genperf.records import ErrorCategory, SystemSample, TaskRecord, TaskStatus
from genperf.storage.base import (
    MAX_NODES,
    NodeHead,
    SampleQuery,
    TaskQuery,
    genperf_version,
    instance_prefix,
)
from genperf.storage.utc import as_utc, as_utc_or_none


class MemoryStore:
    """A thread-safe in-memory Store. Nothing survives the process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._order = itertools.count(1)  # plays the part of the SQL table's id (from 1)
        self._tasks: dict[str, tuple[int, TaskRecord]] = {}
        self._samples: list[tuple[int, SystemSample]] = []
        self._monitors: dict[str, tuple[str, bool]] = {}  # instance -> (node, stopped)
        self._closed = False

    def __repr__(self) -> str:
        return "MemoryStore()"

    def save_task(self, record: TaskRecord) -> None:
        started_at, completed_at = as_utc(record.started_at), as_utc_or_none(record.completed_at)
        if started_at is not record.started_at or completed_at is not record.completed_at:
            # Copy only when a stamp changes: the monitor's are UTC already (its hot path).
            record = dataclasses.replace(record, started_at=started_at, completed_at=completed_at)
        with self._open("save task"):
            seq = self._tasks.get(record.run_id, (next(self._order), record))[0]
            self._tasks[record.run_id] = (seq, record)

    def save_samples(self, samples: Sequence[SystemSample]) -> None:
        batch = [dataclasses.replace(s, taken_at=as_utc(s.taken_at)) for s in samples]
        with self._open("save samples"):
            self._samples.extend((next(self._order), s) for s in batch)

    def get_task(self, task_id: str) -> TaskRecord | None:
        with self._open("read a task"):
            runs = [entry for entry in self._tasks.values() if entry[1].task_id == task_id]
        if not runs:
            return None
        return max(runs, key=lambda e: (e[1].started_at, e[0]))[1]

    def monitor_started(self, instance: str, node: str, at: datetime) -> None:
        with self._open("record a monitor's start"):
            self._monitors[instance] = (node, False)

    def monitor_stopped(self, instance: str, at: datetime) -> None:
        with self._open("record a monitor's stop"):
            if instance in self._monitors:
                self._monitors[instance] = (self._monitors[instance][0], True)

    def monitors(self) -> list[tuple[str, str, bool]]:
        with self._open("read the monitors"):
            return [(i, node, stopped) for i, (node, stopped) in self._monitors.items()]

    def task_rows(
        self, after_id: int, ids: Sequence[int], limit: int
    ) -> list[tuple[int, TaskRecord]]:
        """As SqlStore's: the first-save order plays the part of the row id."""
        wanted = set(ids)
        with self._open("read new task rows"):
            entries = sorted(self._tasks.values(), key=lambda entry: entry[0])
        newer = [entry for entry in entries if entry[0] > after_id][:limit]
        return newer + [entry for entry in entries if entry[0] in wanted]

    def get_run(self, run_id: str) -> TaskRecord | None:
        with self._open("read a task"):
            entry = self._tasks.get(run_id)
        return None if entry is None else entry[1]

    def query_tasks(self, query: TaskQuery) -> list[TaskRecord]:
        if query.after_run is None:
            found = self._matching(query)
            end = None if query.limit is None else query.offset + query.limit
            return found[query.offset : end]
        with self._open("query tasks"):
            anchor = self._tasks.get(query.after_run)
        if anchor is None:
            raise UnknownCursorError(query.after_run)
        key = (anchor[1].started_at, anchor[0])
        after = [
            r
            for seq, r in self._matching_entries(query)
            if ((r.started_at, seq) < key if query.newest_first else (r.started_at, seq) > key)
        ]
        return after[: query.limit]

    def iter_tasks(self, query: TaskQuery, batch_size: int = 1000) -> Iterator[TaskRecord]:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        return iter(self.query_tasks(query))  # already in memory: nothing to bound

    def count_tasks(self, query: TaskQuery) -> int:
        return len(self._matching(query))

    def query_samples(self, query: SampleQuery = SampleQuery()) -> list[SystemSample]:
        wanted = frozenset(query.nodes)
        low = as_utc_or_none(query.since)
        high = as_utc_or_none(query.until)
        with self._open("query samples"):
            entries = list(self._samples)
        found = sorted(
            (
                e
                for e in entries
                if (low is None or e[1].taken_at >= low)
                and (high is None or e[1].taken_at <= high)
                and (not wanted or e[1].node in wanted)
            ),
            key=lambda e: (e[1].taken_at, e[0]),
        )
        if query.limit is not None:
            found = found[-query.limit :] if query.limit > 0 else []
        return [s for _, s in found]

    def node_heads(self, since: datetime | None, per_node: int) -> list[NodeHead]:
        low = as_utc_or_none(since)
        with self._open("read the nodes' samples"):
            entries = list(self._samples)
        by_node: dict[str, list[tuple[int, SystemSample]]] = {}
        for entry in entries:
            by_node.setdefault(entry[1].node, []).append(entry)
        heads = []
        for node in sorted(by_node)[:MAX_NODES]:
            newest = sorted(by_node[node], key=lambda e: (e[1].taken_at, e[0]), reverse=True)
            if low is not None and newest[0][1].taken_at < low:
                continue
            # every sample here was taken by this process: its genperf wrote them
            samples = tuple(s for _, s in newest[:per_node])
            heads.append(NodeHead(node, samples, genperf_version()))
        return heads

    def task_counts_by_node(self, query: TaskQuery) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        for record in self._matching(query):
            per_status = counts.setdefault(record.node, {})
            per_status[record.status.value] = per_status.get(record.status.value, 0) + 1
        return counts

    def generation_times(self, query: TaskQuery) -> list[tuple[str, float]]:
        timed = [
            (r.resolution_class, r.generation_time_seconds)
            for r in self._matching(query)
            if r.generation_time_seconds is not None
        ]
        end = None if query.limit is None else query.offset + query.limit
        return timed[query.offset : end]

    def running_tasks(self, node: str, *, recorded_there: bool = False) -> list[TaskRecord]:
        with self._open("read running tasks"):
            entries = list(self._tasks.values())

        prefix = instance_prefix(node)

        def here(record: TaskRecord) -> bool:
            instance = record.monitor_instance or ""
            return record.node == node or (recorded_there and instance.startswith(prefix))

        running = [e for e in entries if here(e[1]) and e[1].status is TaskStatus.RUNNING]
        return [r for _, r in sorted(running, key=lambda e: (e[1].started_at, e[0]))]

    def mark_interrupted(self, run_ids: Sequence[str], completed_at: datetime) -> int:
        changed = 0
        with self._open("mark tasks interrupted"):
            for run_id in set(run_ids):
                entry = self._tasks.get(run_id)
                if entry is None or entry[1].status is not TaskStatus.RUNNING:
                    continue
                seq, record = entry
                self._tasks[run_id] = (
                    seq,
                    dataclasses.replace(
                        record,
                        status=TaskStatus.INTERRUPTED,
                        completed_at=as_utc(completed_at),
                        error_category=record.error_category or ErrorCategory.INTERRUPTED.value,
                    ),
                )
                changed += 1
        return changed

    def prune_samples(self, older_than: datetime) -> int:
        cutoff = as_utc(older_than)
        with self._open("prune samples"):
            kept = [e for e in self._samples if e[1].taken_at >= cutoff]
            pruned = len(self._samples) - len(kept)
            self._samples = kept
        return pruned

    def ping(self) -> bool:
        return not self._closed

    def close(self) -> None:
        self._closed = True

    def _matching(self, query: TaskQuery) -> list[TaskRecord]:
        return [r for _, r in self._matching_entries(query)]

    def _matching_entries(self, query: TaskQuery) -> list[tuple[int, TaskRecord]]:
        """(insertion number, record) of the matching tasks, in the query's order."""
        with self._open("query tasks"):
            entries = list(self._tasks.values())
        return sorted(
            (e for e in entries if _matches(e[1], query)),
            key=lambda e: (e[1].started_at, e[0]),
            reverse=query.newest_first,
        )

    def _open(self, action: str) -> threading.Lock:
        if self._closed:
            raise StoreError(f"cannot {action}: the store is closed")
        return self._lock


def _matches(record: TaskRecord, query: TaskQuery) -> bool:
    return (
        (query.since is None or record.started_at >= as_utc(query.since))
        and (query.until is None or record.started_at <= as_utc(query.until))
        and (query.model_type is None or record.model_type == query.model_type)
        and (query.node is None or record.node == query.node)
        and (not query.nodes or record.node in query.nodes)
        and (not query.success_only or record.status is TaskStatus.COMPLETED)
        and (not query.finished_only or record.status is not TaskStatus.RUNNING)
    )
