"""The request queue (SQLite, real), the pipeline cache, request parsing and the worker."""

from __future__ import annotations

import threading

import pytest

from genperf.generation.model_cache import PipelineCache
from genperf.generation.queue import MAX_PREDICTION_CHARS, RequestQueue
from genperf.generation.request import (
    MAX_FRAMES,
    GenerationRequest,
    RequestStatus,
    check_frames,
    parse_resolution,
)
from genperf.generation.worker import Worker
from genperf.testing import make_request


@pytest.fixture
def queue(tmp_path):
    q = RequestQueue(f"sqlite:///{tmp_path / 'q.db'}")
    yield q
    q.close()


def test_requests_are_claimed_oldest_first_and_once(queue):
    for n in range(3):
        queue.add(make_request(n))
    claimed = queue.claim_next()
    assert claimed == make_request(0)  # with its prompt, for the worker
    assert queue.get("t0").status is RequestStatus.RUNNING
    assert queue.get("t0").started_at is not None
    assert [queue.claim_next().task_id for _ in range(2)] == ["t1", "t2"]
    assert queue.claim_next() is None


def test_concurrent_workers_never_claim_the_same_request(tmp_path):
    url = f"sqlite:///{tmp_path / 'q.db'}"
    setup = RequestQueue(url)
    for n in range(40):
        setup.add(make_request(n))
    claimed: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        q = RequestQueue(url)
        while (r := q.claim_next()) is not None:
            with lock:
                claimed.append(r.task_id)
        q.close()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(f"t{n}" for n in range(40))
    setup.close()


def test_finishing_links_the_run_and_forgets_the_prompt(queue):
    queue.add(make_request(1))
    queue.claim_next()
    queue.set_run("t1", "run-1")
    queue.finish("t1", RequestStatus.COMPLETED)
    done = queue.get("t1")
    assert (done.status, done.run_id) == (RequestStatus.COMPLETED, "run-1")
    assert done.completed_at >= done.started_at >= done.created_at
    assert not hasattr(done, "prompt")
    with queue._read("peek") as conn:
        assert conn.exec_driver_sql("SELECT prompt FROM generation_requests").scalar() is None


def test_listing_newest_first_by_status(queue):
    for n in range(4):
        queue.add(make_request(n))
    queue.claim_next()
    assert [r.task_id for r in queue.list()] == ["t3", "t2", "t1", "t0"]
    assert [r.task_id for r in queue.list(RequestStatus.RUNNING)] == ["t0"]
    assert [r.task_id for r in queue.list(limit=2, offset=1)] == ["t2", "t1"]
    assert queue.count([RequestStatus.QUEUED, RequestStatus.RUNNING]) == 4


def test_abandoned_requests_are_failed(queue):
    queue.add(make_request(1))
    queue.add(make_request(2))
    queue.claim_next()
    assert queue.fail_abandoned() == 1
    assert queue.get("t1").status is RequestStatus.FAILED
    assert queue.get("t2").status is RequestStatus.QUEUED


def test_a_kept_prediction_is_read_back_and_bounded(queue):
    queue.add(make_request(1))
    prediction = {"answerable": True, "generation_time_seconds": {"value": 1.5}}
    queue.record_prediction("t1", prediction)
    assert queue.predictions(["t1", "t2"]) == {"t1": prediction}
    assert queue.predictions([]) == {}
    with pytest.raises(ValueError, match=r"prediction: .* over 16000"):
        queue.record_prediction("t2", {"reasons": ["x" * MAX_PREDICTION_CHARS]})
    assert queue.predictions(["t2"]) == {}


def test_an_in_memory_queue():
    q = RequestQueue("memory://")
    q.add(make_request(1))
    assert q.claim_next().task_id == "t1"
    q.close()


def test_the_worker_runs_requests_one_at_a_time_and_survives_errors(queue):
    running = []
    done = threading.Event()

    def run(request: GenerationRequest) -> None:
        running.append(request.task_id)
        if request.task_id == "t0":
            raise RuntimeError("boom")  # logged; the next request still runs
        queue.finish(request.task_id, RequestStatus.COMPLETED)
        if request.task_id == "t2":
            done.set()

    worker = Worker(queue, run, poll_seconds=0.05)
    worker.start()
    for n in range(3):
        queue.add(make_request(n))
        worker.wake()
    assert done.wait(10)
    assert worker.stop(5)
    assert running == ["t0", "t1", "t2"]
    assert not worker.busy and not worker.alive


def test_the_cache_evicts_least_recently_used_within_its_budget():
    released = []
    cache = PipelineCache(budget_bytes=100, release=lambda: released.append(1))
    cache.put("a", "A", 40)
    cache.put("b", "B", 40)
    assert cache.get("a") == "A"  # a is now the most recently used
    cache.put("c", "C", 40)
    assert "b" not in cache and cache.get("a") == "A" and cache.get("c") == "C"
    assert cache.used_bytes == 80
    cache.put("huge", "H", 500)  # larger than the budget: kept alone
    assert len(cache) == 1 and cache.get("huge") == "H"
    assert cache.evict("huge") and len(cache) == 0
    assert len(released) == 3  # memory given back after each eviction


@pytest.mark.parametrize(
    ("text", "size"),
    [("832x480", (832, 480)), (" 1280 X 720 ", (1280, 720)), ("480p", (832, 480))],
)
def test_resolutions_parse(text, size):
    assert parse_resolution(text) == size


@pytest.mark.parametrize("text", ["", "832", "832x479", "8x8", "4096x4096", "1080p", "axb"])
def test_bad_resolutions_are_refused(text):
    with pytest.raises(ValueError, match=r"WIDTHxHEIGHT|multiples of 16|between"):
        parse_resolution(text)


@pytest.mark.parametrize("frames", [0, 2, 8, MAX_FRAMES + 4, True])
def test_frames_must_be_4k_plus_1(frames):
    with pytest.raises(ValueError, match="4k\\+1"):
        check_frames(frames)
