"""The queue across workers and nodes, on SQLite and PostgreSQL: exactly one claim per
request, leases renewed by their holder, expired leases reaped once (interrupted in their
phase, or requeued once when asked), restart recovery by pid only on the node itself.

A dead worker is a claim whose lease is already over (``lease_seconds=-1``): no test waits
for a clock."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Iterator

import pytest

from genperf.generation.queue import RequestQueue
from genperf.generation.request import RequestStatus
from genperf.generation.worker import Worker
from genperf.records import utc_now
from genperf.testing import make_request, wait_until

DEAD = -1.0  # a lease that expired already: its worker stopped renewing it


@pytest.fixture
def queue(queue_url: str) -> Iterator[RequestQueue]:
    q = RequestQueue(queue_url)
    yield q
    q.close()


def test_a_claim_holds_a_lease_that_only_its_worker_renews(queue):
    queue.add(make_request(1))
    assert queue.claim_next("w-a", "node-a", lease_seconds=30).task_id == "t1"
    held = queue.get("t1")
    assert (held.status, held.node, held.worker, held.attempts) == (
        RequestStatus.RUNNING,
        "node-a",
        "w-a",
        1,
    )
    assert held.lease_expires_at > held.started_at
    assert queue.renew("t1", "w-a", 60)
    assert queue.get("t1").lease_expires_at > held.lease_expires_at
    assert not queue.renew("t1", "w-b", 60)
    assert queue.reap_expired() == []  # a live lease is left alone


def test_an_expired_lease_is_interrupted_once_in_its_phase(queue):
    queue.add(make_request(1))
    queue.add(make_request(2))
    queue.claim_next("w-a", "node-a", lease_seconds=DEAD)
    queue.set_run("t1", "run-1", worker="w-a")
    queue.claim_next("w-b", "node-b", lease_seconds=30)

    reaped = queue.reap_expired(phase_of={"run-1": "denoise"}.get)
    assert [(r.task_id, r.run_id, r.node, r.requeued, r.phase) for r in reaped] == [
        ("t1", "run-1", "node-a", False, "denoise")
    ]
    dead = queue.get("t1")
    assert (dead.status, dead.interrupted_phase) == (RequestStatus.INTERRUPTED, "denoise")
    assert "node-a" in dead.error_message
    assert queue.get("t2").status is RequestStatus.RUNNING  # the live worker's
    assert queue.reap_expired() == []  # reaped once
    # The dead worker, had it only stalled, cannot overwrite what the reaper recorded.
    assert not queue.finish("t1", RequestStatus.COMPLETED, worker="w-a")
    assert queue.get("t1").status is RequestStatus.INTERRUPTED
    assert queue.finish("t2", RequestStatus.COMPLETED, worker="w-b")


def test_a_request_that_asked_is_requeued_once_then_interrupted(queue):
    queue.add(make_request(1, requeue_on_failure=True))
    queue.claim_next("w-a", "node-a", lease_seconds=DEAD)
    assert [r.requeued for r in queue.reap_expired()] == [True]
    again = queue.get("t1")
    assert (again.status, again.worker, again.attempts) == (RequestStatus.QUEUED, None, 1)

    claimed = queue.claim_next("w-b", "node-b", lease_seconds=DEAD)
    assert claimed.prompt == "prompt 1"  # kept for the second run
    assert queue.get("t1").attempts == 2
    assert [r.requeued for r in queue.reap_expired()] == [False]
    assert queue.get("t1").status is RequestStatus.INTERRUPTED


def test_restart_recovery_by_pid_touches_only_its_own_node(queue):
    for n in range(4):
        queue.add(make_request(n))
    queue.claim_next("here:1:1.0", "here", lease_seconds=30)  # dead process on this node
    queue.claim_next("here:2:2.0", "here", lease_seconds=30)  # live process on this node
    queue.claim_next("there:1:1.0", "there", lease_seconds=30)  # another node's: its lease
    queue.claim_next()  # claimed without a lease, by a genperf older than leases
    failed = queue.fail_abandoned(node="here", alive=lambda worker: worker == "here:2:2.0")
    assert failed == 2
    assert [queue.get(f"t{n}").status for n in range(4)] == [
        RequestStatus.FAILED,
        RequestStatus.RUNNING,
        RequestStatus.RUNNING,
        RequestStatus.FAILED,
    ]


def test_workers_claim_only_their_model_types(queue):
    queue.add(make_request(1, model_type="big"))
    queue.add(make_request(2, model_type="small"))
    assert queue.claim_next("w", "n", model_types=["small"]).task_id == "t2"
    assert queue.claim_next("w", "n", model_types=["small"]) is None
    assert queue.claim_next("w", "n").task_id == "t1"


def test_concurrent_reapers_reap_each_lease_once(queue):
    for n in range(20):
        queue.add(make_request(n))
        queue.claim_next(f"w{n}", "dead-node", lease_seconds=DEAD)
    reaped: list[str] = []
    lock = threading.Lock()

    def reap() -> None:
        own = RequestQueue(queue.url)
        try:
            got = [r.task_id for r in own.reap_expired()]
        finally:
            own.close()
        with lock:
            reaped.extend(got)

    threads = [threading.Thread(target=reap) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(reaped) == sorted(f"t{n}" for n in range(20))


def _claim_all(url: str, worker: str, out: multiprocessing.Queue) -> None:
    queue = RequestQueue(url)
    claimed = []
    while (request := queue.claim_next(worker, "node", lease_seconds=30)) is not None:
        claimed.append(request.task_id)
    queue.close()
    out.put(claimed)


def test_worker_processes_on_one_database_claim_each_request_once(queue):
    for n in range(60):
        queue.add(make_request(n))
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    procs = [
        context.Process(target=_claim_all, args=(queue.url, f"w{i}", results)) for i in range(4)
    ]
    for p in procs:
        p.start()
    claimed = [task for _ in procs for task in results.get(timeout=120)]
    for p in procs:
        p.join(30)
    assert sorted(claimed) == sorted(f"t{n}" for n in range(60))
    assert len(claimed) == len(set(claimed))


def test_workers_starting_together_create_the_queue_once(queue_url):
    """The agents of a fleet start at the same moment: creating the table must not race."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def open_queue() -> None:
        barrier.wait()
        try:
            RequestQueue(queue_url).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_queue) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_the_worker_renews_its_lease_while_a_run_outlasts_it(queue):
    """A run longer than the lease keeps it: the worker renews it every third, so no reaper
    takes the request back; the run waits for three renewals, not for a clock."""
    queue.add(make_request(1))
    seen: list[object] = []
    outcome: list[object] = []

    def run(request) -> None:
        deadline = time.monotonic() + 60
        while len(seen) < 4 and time.monotonic() < deadline:
            lease = queue.get(request.task_id).lease_expires_at
            if not seen or lease != seen[-1]:
                seen.append(lease)
            time.sleep(0.05)
        outcome.append(queue.reap_expired())
        queue.finish(request.task_id, RequestStatus.COMPLETED, worker="w-live")

    worker = Worker(queue, run, identity="w-live", node="node-a", lease_seconds=3.0)
    worker.start()
    try:
        wait_until(lambda: queue.get("t1").status is RequestStatus.COMPLETED, timeout=90)
    finally:
        assert worker.stop(30)
    assert len(seen) == 4  # the claim's lease and three renewals
    assert outcome == [[]]  # never expired meanwhile


def test_the_outlook_says_what_waits_and_when_the_soonest_lease_expires(queue):
    assert (queue.outlook().queued, queue.outlook().soonest_expiry) == (False, None)
    queue.add(make_request(1, model_type="wan-a"))
    assert queue.outlook().queued
    assert queue.outlook(["wan-a", "it's-b"]).queued  # names are quoted into the statement
    assert not queue.outlook(["it's-b"]).queued
    queue.claim_next("w-a", "node-a", lease_seconds=30)
    held = queue.outlook()
    assert not held.queued
    assert held.soonest_expiry == queue.get("t1").lease_expires_at
    assert not held.expired(utc_now())
    queue.add(make_request(2))
    queue.claim_next("w-b", "node-b", lease_seconds=DEAD)
    dead = queue.outlook()
    assert dead.soonest_expiry == queue.get("t2").lease_expires_at
    assert dead.expired(utc_now())


def test_an_idle_worker_reaps_an_expired_lease_and_claims_without_being_woken(queue):
    queue.add(make_request(1))
    queue.claim_next("w-dead", "node-a", lease_seconds=DEAD)
    ran: list[str] = []
    worker = Worker(
        queue, lambda r: ran.append(r.task_id), poll_seconds=0.05, identity="w-live",
        node="node-b", lease_seconds=3.0, reap=lambda: _reap(queue),
    )  # fmt: skip
    worker.start()
    try:
        wait_until(lambda: queue.get("t1").status is RequestStatus.INTERRUPTED)
        queue.add(make_request(2))  # queued by "another process": nobody calls wake()
        wait_until(lambda: ran == ["t2"])
    finally:
        worker.stop(timeout=10)


def _reap(queue: RequestQueue):
    queue.reap_expired()
    return queue.next_lease_expiry()


class _Blind(RequestQueue):
    """A queue whose lock-free look cannot answer (as when its held read fails)."""

    def outlook(self, model_types=None):
        return None


def test_a_worker_that_cannot_look_claims_and_reaps_as_before(queue_url):
    queue = _Blind(queue_url)
    queue.add(make_request(1))
    queue.claim_next("w-dead", "node-a", lease_seconds=DEAD)
    queue.add(make_request(2))
    ran: list[str] = []
    worker = Worker(
        queue, lambda r: ran.append(r.task_id), poll_seconds=0.05, identity="w-live",
        node="node-b", lease_seconds=3.0, reap=lambda: _reap(queue),
    )  # fmt: skip
    worker.start()
    try:
        wait_until(lambda: ran == ["t2"])
        wait_until(lambda: queue.get("t1").status is RequestStatus.INTERRUPTED)
    finally:
        worker.stop(timeout=10)
        queue.close()
