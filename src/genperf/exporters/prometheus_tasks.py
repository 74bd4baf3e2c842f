"""Prometheus: the task families, derived from the database and served as cached bytes.

Only the API process exports these (``genperf serve``); agents export their own host, GPU and
monitor gauges only (:mod:`genperf.exporters.process_metrics`). The database is the one place
every writer's tasks meet, so summing a task family over every scraped target counts each task
once, whichever process wrote it (docs/design.md, "Prometheus across processes").

:class:`StoreTaskFamilies` folds each finished task row into
:class:`~genperf.exporters.prometheus.TaskOutcomes` and
:class:`~genperf.exporters.prometheus_details.TaskDetails` exactly once, reading only what
changed through the store's ``task_rows`` feed (by primary key, so a refresh costs what it
returns, not the table):

* rows with an id above the highest one read so far (new tasks);
* rows read while still running, until they finish (``running`` at most
  :data:`MAX_PENDING`);
* ids skipped inside a read range (a transaction that committed after a later one, on
  PostgreSQL; or an id an upsert burnt), rechecked for :data:`GAP_SECONDS`.

A scrape never runs SQL or renders these families itself: a refresh thread does, woken by a
scrape when the families are older than ``refresh_seconds`` or were marked changed
(:meth:`StoreTaskFamilies.changed`, called for this process's own finished tasks). The scrape
waits for that refresh at most ``wait_seconds``, then serves the bytes assembled after the
last change. Until the first full pass over the table is done, the families are left out
rather than shown partial.

Every series of these families has a ``node`` label, so a fleet's exposition is mostly
blocks of one node's lines. Each block is rendered (by prometheus_client, in both formats)
only when a task of its node was folded; the exposition is those blocks joined under each
family's header, so a refresh costs the nodes that changed, not the fleet. Scrapers asking
for gzip (Prometheus does) get these bytes compressed once per change too
(:mod:`genperf.exporters.gzip_join`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.registry import Collector

from genperf.config import Settings
from genperf.exporters.gzip_join import EMPTY, DeflatedPrefix, deflate_prefix
from genperf.exporters.prometheus import TaskOutcomes, bounded_node, strip_eof
from genperf.exporters.prometheus_details import TaskDetails, duration_buckets
from genperf.records import TaskRecord, TaskStatus

logger = logging.getLogger("genperf.exporters")

BATCH_ROWS = 5000  # rows per read while catching up: bounded memory over 10 M tasks
MAX_PENDING = 100_000  # running rows watched; beyond it, the oldest is forgotten
GAP_SECONDS = 60.0  # how long a skipped id is rechecked
MAX_GAPS = 10_000
REFRESH_SECONDS = 1.0
WAIT_SECONDS = 2.0


class TaskRowSource(Protocol):
    """A store with the ``task_rows`` feed (SqlStore, MemoryStore)."""

    def task_rows(
        self, after_id: int, ids: Sequence[int], limit: int
    ) -> list[tuple[int, TaskRecord]]: ...


class StoreTaskFamilies:
    """The database's task families, refreshed off the scrape path, rendered once per change.

    Args:
        store: returns the store to read (None while it cannot be opened).
        settings: genperf's settings (the duration histogram's buckets, the VRAM lines).
        refresh_seconds: how old the families may be before a scrape asks for a refresh
            (other processes' tasks appear within it; this process's at once, see
            :meth:`changed`).
        wait_seconds: how long a scrape waits for the refresh it asked for.
        clock: monotonic seconds.
    """

    def __init__(
        self,
        store: Callable[[], object | None],
        settings: Settings,
        *,
        refresh_seconds: float = REFRESH_SECONDS,
        wait_seconds: float = WAIT_SECONDS,
        batch_rows: int = BATCH_ROWS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._refresh_seconds = refresh_seconds
        self._wait_seconds = wait_seconds
        self._batch_rows = batch_rows
        self._clock = clock
        self.outcomes = TaskOutcomes(duration_buckets(settings))  # alert rules count targets
        self.details = TaskDetails(settings)
        self._nodes: set[str] = set()  # node labels, bounded
        # Rendered lines, per format (OpenMetrics?): each family's header, and each node's
        # sample lines per family. Written by the refresh thread only.
        self._headers: dict[bool, dict[str, bytes]] = {False: {}, True: {}}
        self._blocks: dict[bool, dict[str, dict[str, bytes]]] = {False: {}, True: {}}
        # Fold state, touched by the refresh thread only.
        self._after_id = 0
        self._running: OrderedDict[int, None] = OrderedDict()
        self._gaps: dict[int, float] = {}
        self._caught_up_once = False
        # Shared with scrapes, under the condition's lock.
        self._cond = threading.Condition()
        self._asked = 0  # refreshes asked for
        self._done = 0  # the last ask a finished refresh covered
        self._refreshed_at: float | None = None
        self._dirty = True
        self._caught_up = False
        self._rendered: dict[bool, bytes] = {}  # openmetrics? -> the assembled exposition
        self._deflated: dict[bool, DeflatedPrefix] = {}  # the same, compressed
        self._deflate_formats: set[bool] = set()  # formats a scraper asked for compressed
        self._version = 0  # assemblies so far
        self._thread: threading.Thread | None = None
        self._closed = False

    def changed(self, _record: object = None) -> None:
        """Something was written: the next scrape refreshes (a task listener)."""
        with self._cond:
            self._dirty = True

    def exposition(self, openmetrics: bool) -> bytes:
        """The families' bytes (OpenMetrics without its ``# EOF``), empty until the first
        full pass; asks for a refresh first when they are stale, and waits for it a while."""
        with self._cond:
            if not self._await_refresh_locked():
                return b""
            return self._rendered.get(openmetrics, b"")

    def deflated(self, openmetrics: bool) -> DeflatedPrefix:
        """:meth:`exposition`, compressed once per change (by the refresh thread, once a
        scraper has asked for this format compressed)."""
        with self._cond:
            if not self._await_refresh_locked():
                return EMPTY
            self._deflate_formats.add(openmetrics)
            cached = self._deflated.get(openmetrics)
            body, version = self._rendered.get(openmetrics, b""), self._version
        if cached is None:  # the first such scrape since a change: compress it here, once
            cached = deflate_prefix(body)
            with self._cond:
                if self._version == version:
                    self._deflated[openmetrics] = cached
        return cached

    def _await_refresh_locked(self) -> bool:
        """Ask for a refresh when the families are stale or changed, wait for it a while;
        whether the families are complete (the first full pass is done)."""
        now = self._clock()
        stale = self._refreshed_at is None or now - self._refreshed_at >= self._refresh_seconds
        if (self._dirty or stale) and not self._closed:
            self._dirty = False
            self._refreshed_at = now
            self._asked += 1
            ticket = self._asked
            self._start_locked()
            self._cond.notify_all()
            self._cond.wait_for(
                lambda: self._done >= ticket or self._closed, timeout=self._wait_seconds
            )
        return self._caught_up

    def _render_nodes(self, nodes: set[str]) -> dict[bool, bytes]:
        """Render the blocks of ``nodes`` again, then assemble both formats."""
        for openmetrics in (False, True):
            headers, blocks = self._headers[openmetrics], self._blocks[openmetrics]
            todo: list[str | None] = [*sorted(nodes)] or [None]  # None: the headers alone
            for node in todo:
                registry = CollectorRegistry(auto_describe=False)
                registry.register(_NodeBlock(self, None if node is None else {node}))
                if openmetrics:
                    text = strip_eof(generate_openmetrics(registry))  # type: ignore[no-untyped-call]
                else:
                    text = generate_latest(registry)
                lines = _split(text, headers)
                if node is not None:
                    blocks[node] = lines
        return {
            openmetrics: b"".join(
                header + b"".join(node_lines.get(family, b"") for _, node_lines in blocks)
                for family, header in self._headers[openmetrics].items()
            )
            for openmetrics in (False, True)
            for blocks in [sorted(self._blocks[openmetrics].items())]
        }

    def _start_locked(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="genperf-prometheus-tasks", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closed or self._asked > self._done)
                if self._closed:
                    return
                ticket = self._asked
            rendered: dict[bool, bytes] | None = None
            deflated: dict[bool, DeflatedPrefix] = {}
            try:
                changed, complete = self._refresh()
                if changed or not self._rendered:
                    rendered = self._render_nodes(changed)
                    with self._cond:
                        formats = set(self._deflate_formats)
                    deflated = {f: deflate_prefix(rendered[f]) for f in formats}
            except Exception:  # the database may be down: keep the last families
                logger.debug("could not read the database's task rows", exc_info=True)
                complete = False
            with self._cond:
                if rendered is not None:
                    self._rendered, self._deflated = rendered, deflated
                    self._version += 1
                self._caught_up = self._caught_up or complete
                self._done = ticket
                self._cond.notify_all()

    def _refresh(self) -> tuple[set[str], bool]:
        """Fold every row finished since the last refresh: (the nodes of the rows folded,
        whether the pass reached the end of the table)."""
        store = self._store()
        feed = getattr(store, "task_rows", None)
        if not callable(feed):
            return set(), False
        now = self._clock()
        self._gaps = {i: at for i, at in self._gaps.items() if now - at < GAP_SECONDS}
        recheck: Sequence[int] = [*self._running, *self._gaps]
        folded: set[str] = set()
        while not self._closed:
            rows: list[tuple[int, TaskRecord]] = feed(self._after_id, recheck, self._batch_rows)
            recheck = ()  # once per refresh
            newest = self._after_id
            for row_id, record in rows:
                self._gaps.pop(row_id, None)
                if row_id > self._after_id:
                    newest = max(newest, row_id)
                if record.status is TaskStatus.RUNNING:
                    self._watch(row_id)
                    continue
                self._running.pop(row_id, None)
                node = bounded_node(self._nodes, record.node)
                self.outcomes.observe(record, node)
                self.details.observe(record, node)
                folded.add(node)
            if self._caught_up_once:
                self._note_gaps(rows, newest, now)
            fresh = sum(1 for row_id, _ in rows if row_id > self._after_id)
            self._after_id = newest
            if fresh < self._batch_rows:
                # Gaps of the first pass are old (a rollback, an upsert's burnt id), not
                # transactions in flight: only later passes watch them.
                self._caught_up_once = True
                return folded, True
        return folded, False

    def _watch(self, row_id: int) -> None:
        self._running[row_id] = None
        if len(self._running) > MAX_PENDING:
            self._running.popitem(last=False)

    def _note_gaps(self, rows: list[tuple[int, TaskRecord]], newest: int, now: float) -> None:
        """Ids between the last read and the newest row that no row had: rechecked a while."""
        seen = {row_id for row_id, _ in rows}
        for row_id in range(self._after_id + 1, newest):
            if row_id not in seen and len(self._gaps) < MAX_GAPS:
                self._gaps[row_id] = now

    def close(self) -> None:
        """Stop the refresh thread (a scrape after this serves the last families)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=10)


class _NodeBlock(Collector):
    """The task families of some nodes (all when None): what one block renders."""

    def __init__(self, families: StoreTaskFamilies, nodes: set[str] | None) -> None:
        self.families = families
        self.nodes = nodes

    def collect(self) -> Iterator[Metric]:
        yield from self.families.outcomes.metrics(self.nodes)
        yield from self.families.details.metrics(self.nodes)


def _split(text: bytes, headers: dict[str, bytes]) -> dict[str, bytes]:
    """An exposition's sample lines per family; each family's header (its ``#`` lines) goes
    to ``headers``, in the order the families come (the same in every rendering)."""
    lines: dict[str, list[bytes]] = {}
    family = ""
    header: list[bytes] = []
    for line in text.splitlines(keepends=True):
        if line.startswith(b"# HELP "):
            if family and family not in headers:
                headers[family] = b"".join(header)
            family, header = line.split(b" ", 3)[2].decode(), [line]
            lines[family] = []
        elif line.startswith(b"#"):
            header.append(line)
        else:
            lines[family].append(line)
    if family and family not in headers:
        headers[family] = b"".join(header)
    return {name: b"".join(chunk) for name, chunk in lines.items() if chunk}


__all__ = ["StoreTaskFamilies", "TaskRowSource"]
