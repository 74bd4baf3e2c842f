"""Running tasks opened over HTTP, bounded per client and in total, and expired when abandoned.

Each running task costs the server memory until it completes, and a client can open tasks
faster than it completes them (or never complete them). So:

* a client (its token, or its address when no tokens are configured) may hold at most
  ``max_per_client`` running tasks, and all clients together ``max_total``; one more is a 429
  with Retry-After, before anything is allocated;
* a task with no start, update or completion for ``idle_seconds`` is abandoned: the sweeper
  closes it as ``interrupted``, with the reason, which frees its place.

Tasks of the generation service and of library callers run in this process and are not
counted here: their own code completes them.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request

from genperf.api.errors import ApiError
from genperf.records import TaskRecord

logger = logging.getLogger("genperf.api")

RETRY_AFTER_SECONDS = 30


@dataclass(slots=True)
class _Entry:
    client: str
    last_seen: float


def client_key(request: Request) -> str:
    """Who is asking: a digest of the bearer token when one is sent, else the address."""
    authorization = request.headers.get("authorization")
    if authorization:
        return "token:" + hashlib.sha256(authorization.encode()).hexdigest()[:16]
    return "address:" + (request.client.host if request.client else "unknown")


class OpenTaskLedger:
    """Which client opened which running task, and when each was last heard of."""

    def __init__(
        self,
        *,
        max_total: int,
        max_per_client: int,
        idle_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_total = max_total
        self.max_per_client = max_per_client
        self.idle_seconds = idle_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._per_client: Counter[str] = Counter()
        self.refused = 0
        self.expired = 0

    def admit(self, task_id: str, client: str) -> bool:
        """Reserve a place for a task about to start; False when ``task_id`` holds one
        already (the monitor then refuses the duplicate start itself).

        Raises:
            ApiError: 429 with Retry-After, the client's or the server's bound reached.
        """
        with self._lock:
            if task_id in self._entries:
                return False
            if self._per_client[client] >= self.max_per_client:
                scope = f"this client has {self.max_per_client} running tasks"
            elif len(self._entries) >= self.max_total:
                scope = f"the server has {self.max_total} running tasks"
            else:
                self._entries[task_id] = _Entry(client, self._clock())
                self._per_client[client] += 1
                return True
            self.refused += 1
        raise ApiError(
            429,
            "too_many_open_tasks",
            f"{scope}, the most it accepts: complete some first (running tasks with no update "
            f"for {self.idle_seconds:g} s are closed as interrupted)",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    def touch(self, task_id: str) -> None:
        """The task's client was heard from (an update)."""
        with self._lock:
            entry = self._entries.get(task_id)
            if entry is not None:
                entry.last_seen = self._clock()

    def release(self, task_id: str) -> None:
        with self._lock:
            entry = self._entries.pop(task_id, None)
            if entry is not None:
                self._per_client[entry.client] -= 1
                if not self._per_client[entry.client]:
                    del self._per_client[entry.client]

    def finished(self, record: TaskRecord) -> None:
        """A task listener: a finished task frees its place, however it finished."""
        self.release(record.task_id)

    def idle(self) -> list[str]:
        """Tasks not heard of for ``idle_seconds``: abandoned."""
        cutoff = self._clock() - self.idle_seconds
        with self._lock:
            return [i for i, e in self._entries.items() if e.last_seen <= cutoff]

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def sweep_every_seconds(self) -> float:
        """How often to look for abandoned tasks: a fraction of the idle limit, at most 60 s."""
        return max(0.05, min(60.0, self.idle_seconds / 4))
