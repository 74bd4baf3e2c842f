"""The Store contract, run over MemoryStore, SqlStore on SQLite and SqlStore on PostgreSQL."""

from __future__ import annotations

import dataclasses
import random
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone

import pytest

from genperf.errors import StoreError, UnknownCursorError
from genperf.records import (
    ErrorCategory,
    GpuReading,
    PhaseRecord,
    SystemSample,
    TaskRecord,
    TaskStatus,
)
from genperf.storage import SampleQuery, Store, TaskQuery
from genperf.testing import make_task, make_tasks

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PLUS_2 = timezone(timedelta(hours=2))


def full_task() -> TaskRecord:
    """A record with every field set to something other than its default."""
    started = datetime(2026, 3, 4, 7, 8, 9, 123456, tzinfo=PLUS_2)  # not UTC, with microseconds
    return TaskRecord(
        run_id="run-full",
        task_id="task-full",
        node="gpu-node-7",
        model_type="t2v-A14B",
        resolution="1280x720",
        resolution_class="720p",
        steps=40,
        status=TaskStatus.FAILED,
        started_at=started,
        completed_at=started + timedelta(seconds=301.25),
        model_used="Wan2.2-T2V-A14B",
        frames=81,
        generation_time_seconds=301.25,
        model_load_time_seconds=21.5,
        weights_memory_mapped=True,
        phases=(
            PhaseRecord("model_load", 0.0, 21.5, None, 30_000.5, 12_000.25),
            PhaseRecord("denoise", 21.5, 270.125, 70_000.0, 75_000.0, None, failed=True),
        ),
        step_times_seconds=(6.5, 6.75, 0.1, 1e-9),
        peak_vram_usage_mb=75_000.0,
        avg_vram_usage_mb=61_234.567,
        vram_total_mb=143_771.0,
        peak_vram_reserved_mb=76_000.0,
        peak_ram_usage_mb=40_000.0,
        avg_ram_usage_mb=35_000.0,
        ram_total_mb=257_000.0,
        peak_process_rss_mb=30_000.0,
        peak_cpu_percent=99.5,
        avg_cpu_percent=42.0,
        peak_gpu_utilization_percent=100.0,
        avg_gpu_utilization_percent=97.3,
        peak_gpu_temperature_celsius=83.0,
        avg_gpu_temperature_celsius=77.7,
        gpu_throttle_reasons=("sw_power_cap", "hw_thermal_slowdown"),
        samples_count=61,
        optimizations_applied=("dtype:bf16", "offload:model_cpu", "vae_tiling"),
        error_category=ErrorCategory.OUT_OF_MEMORY_GPU.value,
        error_message="CUDA out of memory. Tried to allocate 2.00 GiB — «ünïcode»",
        failed_phase="denoise",
        recovery_suggestions=("enable offloading", "lower the resolution"),
        monitor_instance="gpu-node-7:1234:1767225600.5",
        gpu_index=3,
        current_phase="vae_decode",
    )


def full_sample(taken_at: datetime) -> SystemSample:
    return SystemSample(
        taken_at=taken_at,
        node="gpu-node-7",
        cpu_percent=12.5,
        cpu_per_core_percent=(10.0, 15.0, 0.0, 100.0),
        cpu_count=4,
        ram_used_bytes=100 * 2**30,  # beyond 32 bits
        ram_total_bytes=256 * 2**30,
        ram_percent=39.06,
        swap_used_bytes=0,
        swap_percent=0.0,
        disk_path="/models",
        disk_used_bytes=3 * 2**40,
        disk_total_bytes=4 * 2**40,
        disk_free_bytes=2**40,
        disk_percent=75.0,
        disk_read_bytes_per_second=1.5e9,
        disk_write_bytes_per_second=2.5e6,
        cpu_temperature_celsius=55.0,
        process_rss_bytes=30 * 2**30,
        gpus=(
            GpuReading(
                index=0,
                name="NVIDIA H200",
                uuid="GPU-0000",
                memory_used_bytes=70 * 2**30,
                memory_total_bytes=141 * 2**30,
                utilization_percent=98.0,
                memory_utilization_percent=60.0,
                temperature_celsius=71.0,
                power_watts=650.5,
                power_limit_watts=700.0,
                sm_clock_mhz=1980,
                memory_clock_mhz=3201,
                throttle_reasons=("sw_power_cap",),
                process_memory_bytes=69 * 2**30,
            ),
            GpuReading(index=1),  # a GPU that reports nothing
        ),
    )


def run_ids(records: list[TaskRecord]) -> list[str]:
    return [r.run_id for r in records]


# --- tasks: round trip and upsert -------------------------------------------------------------


def test_full_record_round_trips_equal(store: Store) -> None:
    record = full_task()
    assert all(getattr(record, f.name) != f.default for f in dataclasses.fields(record))

    store.save_task(record)

    got = store.get_run(record.run_id)
    assert got == record
    assert got is not None
    assert got.started_at.tzinfo is UTC
    assert got.completed_at is not None
    assert got.completed_at.tzinfo is UTC
    assert got.phases[1].failed is True
    assert isinstance(got.status, TaskStatus)


def test_sparse_record_round_trips_with_nones_and_empty_tuples(store: Store) -> None:
    record = TaskRecord(
        run_id="run-sparse",
        task_id="t",
        node="n",
        model_type="m",
        resolution="other",
        resolution_class="other",
        steps=None,
        status=TaskStatus.RUNNING,
        started_at=T0,
    )
    store.save_task(record)
    assert store.get_run("run-sparse") == record


def test_naive_datetimes_are_taken_as_utc(store: Store) -> None:
    store.save_task(make_task(run_id="naive", started_at=datetime(2026, 5, 1, 12, 0)))

    got = store.get_run("naive")
    assert got is not None
    assert got.started_at == datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    since = datetime(2026, 5, 1, 12, 0)
    assert run_ids(store.query_tasks(TaskQuery(since=since))) == ["naive"]


def test_save_task_is_an_upsert_on_run_id(store: Store) -> None:
    running = make_task(run_id="r1", status=TaskStatus.RUNNING, completed_at=None)
    store.save_task(running)
    done = dataclasses.replace(
        running, status=TaskStatus.COMPLETED, completed_at=T0 + timedelta(minutes=4)
    )
    store.save_task(done)
    store.save_task(done)  # a retried write changes nothing

    assert store.count_tasks(TaskQuery()) == 1
    assert store.get_run("r1") == done


def test_get_task_returns_the_latest_run_of_a_task_id(store: Store) -> None:
    first = make_task(task_id="job", run_id="first", started_at=T0)
    retry = make_task(task_id="job", run_id="retry", started_at=T0 + timedelta(minutes=5))
    other = make_task(task_id="other", started_at=T0 + timedelta(hours=1))
    for record in (retry, first, other):  # saved out of order
        store.save_task(record)

    assert store.get_task("job") == retry
    assert store.get_task("missing") is None
    assert store.get_run("first") == first
    assert store.get_run("missing") is None


# --- tasks: queries ---------------------------------------------------------------------------


def h(hours: int) -> datetime:
    return T0 + timedelta(hours=hours)


@pytest.fixture
def five_tasks(store: Store) -> Store:
    records = [
        make_task(run_id="a", started_at=h(0), model_type="m1", node="n1"),
        make_task(
            run_id="b", started_at=h(1), model_type="m2", node="n1", status=TaskStatus.FAILED
        ),
        make_task(
            run_id="c",
            started_at=h(2),
            model_type="m1",
            node="n2",
            status=TaskStatus.RUNNING,
            completed_at=None,
        ),
        make_task(run_id="d", started_at=h(3), model_type="m1", node="n2"),
        make_task(
            run_id="e", started_at=h(4), model_type="m2", node="n1", status=TaskStatus.INTERRUPTED
        ),
    ]
    random.Random(7).shuffle(records)
    for record in records:
        store.save_task(record)
    return store


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (TaskQuery(), "edcba"),
        (TaskQuery(newest_first=False), "abcde"),
        (TaskQuery(since=h(1)), "edcb"),  # bounds are inclusive
        (TaskQuery(until=h(2)), "cba"),
        (TaskQuery(since=h(1), until=h(3)), "dcb"),
        (TaskQuery(since=h(1).astimezone(timezone(timedelta(hours=5)))), "edcb"),  # any zone
        (TaskQuery(model_type="m1"), "dca"),
        (TaskQuery(success_only=True), "da"),
        (TaskQuery(node="n1"), "eba"),
        (TaskQuery(finished_only=True), "edba"),
        (TaskQuery(model_type="m1", success_only=True, newest_first=False), "ad"),
        (TaskQuery(node="n2", finished_only=True), "d"),
        (TaskQuery(model_type="nope"), ""),
        (TaskQuery(limit=2), "ed"),
        (TaskQuery(limit=2, offset=1), "dc"),
        (TaskQuery(offset=3), "ba"),
        (TaskQuery(limit=0), ""),
        (TaskQuery(offset=10), ""),
        (TaskQuery(newest_first=False, limit=3, offset=1, finished_only=True), "bde"),
    ],
)
def test_query_filters_and_order(five_tasks: Store, query: TaskQuery, expected: str) -> None:
    store = five_tasks
    assert "".join(run_ids(store.query_tasks(query))) == expected
    assert "".join(r.run_id for r in store.iter_tasks(query, batch_size=2)) == expected
    unpaged = dataclasses.replace(query, limit=None, offset=0)
    assert store.count_tasks(query) == len(store.query_tasks(unpaged))


def test_equal_start_times_keep_save_order(store: Store) -> None:
    for run_id in ("x", "y", "z"):
        store.save_task(make_task(run_id=run_id, started_at=T0))

    assert run_ids(store.query_tasks(TaskQuery(newest_first=False))) == ["x", "y", "z"]
    assert run_ids(store.query_tasks(TaskQuery())) == ["z", "y", "x"]
    assert [r.run_id for r in store.iter_tasks(TaskQuery(), batch_size=1)] == ["z", "y", "x"]


@pytest.mark.parametrize("newest_first", [True, False])
def test_iter_tasks_streams_more_than_a_batch(store: Store, newest_first: bool) -> None:
    records = make_tasks(25) + make_tasks(6, every=timedelta(0))  # ties across batch edges
    for record in records:
        store.save_task(record)

    for query in (
        TaskQuery(newest_first=newest_first),
        TaskQuery(newest_first=newest_first, limit=17, offset=3),
        TaskQuery(newest_first=newest_first, since=T0 + timedelta(minutes=30)),
    ):
        streamed = store.iter_tasks(query, batch_size=7)
        assert not isinstance(streamed, list)
        assert list(streamed) == store.query_tasks(query)
    assert len(list(store.iter_tasks(TaskQuery(), batch_size=7))) == 31


@pytest.mark.parametrize("newest_first", [True, False])
def test_paging_after_a_run_gives_the_offset_pages(store: Store, newest_first: bool) -> None:
    records = make_tasks(13) + make_tasks(6, every=timedelta(0))  # ties across page edges
    for record in records:
        store.save_task(record)
    every = run_ids(store.query_tasks(TaskQuery(newest_first=newest_first)))
    pages, after = [], None
    while True:
        page = store.query_tasks(TaskQuery(newest_first=newest_first, limit=4, after_run=after))
        if not page:
            break
        pages.extend(run_ids(page))
        after = page[-1].run_id
    assert pages == every
    with pytest.raises(UnknownCursorError, match="cursor"):
        store.query_tasks(TaskQuery(after_run="no-such-run"))


def test_iter_tasks_rejects_an_empty_batch(store: Store) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        store.iter_tasks(TaskQuery(), batch_size=0)


def test_count_tasks_ignores_limit_and_offset(five_tasks: Store) -> None:
    assert five_tasks.count_tasks(TaskQuery()) == 5
    assert five_tasks.count_tasks(TaskQuery(limit=1, offset=2)) == 5
    assert five_tasks.count_tasks(TaskQuery(model_type="m2")) == 2


# --- running tasks ----------------------------------------------------------------------------


def test_running_tasks_and_mark_interrupted(store: Store) -> None:
    def running(run_id: str, node: str, hours: int) -> TaskRecord:
        return make_task(
            run_id=run_id,
            node=node,
            started_at=h(hours),
            status=TaskStatus.RUNNING,
            completed_at=None,
        )

    store.save_task(running("r2", "here", 2))
    store.save_task(running("r1", "here", 1))
    store.save_task(running("elsewhere", "there", 1))
    store.save_task(make_task(run_id="done", node="here"))
    store.save_task(
        dataclasses.replace(running("r3", "here", 3), error_category=ErrorCategory.TIMEOUT.value)
    )

    assert run_ids(store.running_tasks("here")) == ["r1", "r2", "r3"]
    assert store.running_tasks("nowhere") == []

    stopped_at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=PLUS_2)
    assert store.mark_interrupted(["r1", "r3", "done", "unknown", "r1"], stopped_at) == 2
    assert store.mark_interrupted(["r1", "r3"], stopped_at) == 0  # already marked
    assert store.mark_interrupted([], stopped_at) == 0

    r1 = store.get_run("r1")
    assert r1 is not None
    assert r1.status is TaskStatus.INTERRUPTED
    assert r1.completed_at == stopped_at
    assert r1.error_category == ErrorCategory.INTERRUPTED.value
    r3 = store.get_run("r3")
    assert r3 is not None
    assert r3.error_category == ErrorCategory.TIMEOUT.value  # a known cause is kept
    done = store.get_run("done")
    assert done is not None
    assert done.status is TaskStatus.COMPLETED
    assert run_ids(store.running_tasks("here")) == ["r2"]
    assert run_ids(store.running_tasks("there")) == ["elsewhere"]


def test_running_tasks_recorded_there_for_other_nodes(store: Store) -> None:
    """An API process on "here" records tasks that services elsewhere post for their nodes;
    if it dies, its restart must find those too (by the instance id that recorded them)."""

    def running(run_id: str, node: str, instance: str) -> TaskRecord:
        return make_task(
            run_id=run_id, node=node, status=TaskStatus.RUNNING, completed_at=None,
            monitor_instance=instance,
        )  # fmt: skip

    store.save_task(running("own", "here", "here:100:1.5"))
    store.save_task(running("ingested", "gpu-3", "here:100:1.5"))
    store.save_task(running("gpu-3's own", "gpu-3", "gpu-3:7:2.5"))
    store.save_task(running("lookalike", "gpu-4", "he_e:9:3.5"))  # "_" is not a wildcard

    assert run_ids(store.running_tasks("here")) == ["own"]
    assert sorted(run_ids(store.running_tasks("here", recorded_there=True))) == [
        "ingested",
        "own",
    ]
    assert run_ids(store.running_tasks("he_e", recorded_there=True)) == ["lookalike"]
    assert sorted(run_ids(store.running_tasks("gpu-3"))) == ["gpu-3's own", "ingested"]


# --- samples ----------------------------------------------------------------------------------


def test_samples_round_trip_with_gpus(store: Store) -> None:
    full = full_sample(datetime(2026, 1, 1, 2, 0, 0, 500, tzinfo=PLUS_2))
    sparse = SystemSample(taken_at=T0 + timedelta(seconds=5), node="gpu-node-7")
    no_cores = dataclasses.replace(
        full, taken_at=T0 + timedelta(seconds=10), cpu_per_core_percent=None
    )
    store.save_samples([sparse, full, no_cores])  # out of order

    got = store.query_samples()
    assert got == [full, sparse, no_cores]
    assert all(s.taken_at.tzinfo is UTC for s in got)
    assert got[0].gpus == full.gpus
    assert got[0].gpus[0].throttle_reasons == ("sw_power_cap",)
    assert got[1].gpus == ()
    assert got[1].cpu_per_core_percent is None


def test_save_samples_accepts_an_empty_batch(store: Store) -> None:
    store.save_samples([])
    assert store.query_samples() == []


def test_query_samples_range_and_newest_limit(store: Store) -> None:
    batch = [
        SystemSample(taken_at=T0 + timedelta(seconds=i), node="n", cpu_percent=float(i))
        for i in range(10)
    ]
    store.save_samples(batch[5:])
    store.save_samples(batch[:5])

    def seconds(samples: list[SystemSample]) -> list[float | None]:
        return [s.cpu_percent for s in samples]

    assert seconds(store.query_samples()) == [float(i) for i in range(10)]
    newest_three = store.query_samples(SampleQuery(limit=3))
    assert seconds(newest_three) == [7.0, 8.0, 9.0]  # oldest first
    since, until = T0 + timedelta(seconds=2), T0 + timedelta(seconds=6)
    assert seconds(store.query_samples(SampleQuery(since, until))) == [2.0, 3.0, 4.0, 5.0, 6.0]
    assert seconds(store.query_samples(SampleQuery(since, until, limit=2))) == [5.0, 6.0]
    assert seconds(store.query_samples(SampleQuery(until=T0))) == [0.0]
    assert store.query_samples(SampleQuery(limit=0)) == []


def test_prune_samples(store: Store) -> None:
    store.save_samples([SystemSample(taken_at=T0 + timedelta(hours=i), node="n") for i in range(6)])

    assert store.prune_samples(T0 + timedelta(hours=2)) == 2  # strictly older than
    assert store.prune_samples(T0 + timedelta(hours=2)) == 0
    left = store.query_samples()
    assert [s.taken_at for s in left] == [T0 + timedelta(hours=i) for i in range(2, 6)]


# --- lifecycle and threads --------------------------------------------------------------------


def test_ping_and_close_are_idempotent(store: Store) -> None:
    assert store.ping() is True
    store.close()
    store.close()
    assert store.ping() is False
    with pytest.raises(StoreError, match="closed"):
        store.save_task(make_task())
    with pytest.raises(StoreError, match="closed"):
        store.query_tasks(TaskQuery())


def test_concurrent_saves_from_16_threads_lose_nothing(store: Store) -> None:
    per_thread = 25

    def work(thread: int) -> None:
        for i in range(per_thread):
            store.save_task(make_task(run_id=f"t{thread}-{i}", task_id=f"job-{thread}"))
            # Every thread also rewrites the same few runs: concurrent upserts of one key.
            store.save_task(make_task(run_id=f"shared-{i % 5}", task_id="shared"))
        store.save_samples([SystemSample(taken_at=T0, node=f"n{thread}")])

    with ThreadPoolExecutor(max_workers=16) as pool:
        for future in [pool.submit(work, t) for t in range(16)]:
            future.result()  # re-raises any thread's error

    assert store.count_tasks(TaskQuery()) == 16 * per_thread + 5
    assert len({r.run_id for r in store.iter_tasks(TaskQuery(), batch_size=50)}) == 405
    assert len(store.query_samples()) == 16


# --- the fleet: several nodes in one store ----------------------------------------------------


def test_tasks_and_samples_filter_by_any_of_several_nodes(store: Store) -> None:
    for i, node in enumerate(("node-a", "node-b", "node-c", "node-a")):
        store.save_task(make_task(node=node, started_at=T0 + timedelta(minutes=i)))
        store.save_samples([SystemSample(taken_at=T0 + timedelta(seconds=i), node=node)])

    picked = TaskQuery(nodes=("node-a", "node-c"), newest_first=False)
    assert [t.node for t in store.query_tasks(picked)] == ["node-a", "node-c", "node-a"]
    assert store.count_tasks(picked) == 3
    assert [t.node for t in store.iter_tasks(picked, batch_size=1)] == [
        "node-a",
        "node-c",
        "node-a",
    ]
    assert store.count_tasks(TaskQuery(nodes=("nowhere",))) == 0
    assert store.count_tasks(TaskQuery()) == 4  # empty: every node
    samples = store.query_samples(SampleQuery(nodes=("node-b",)))
    assert [s.node for s in samples] == ["node-b"]
    assert len(store.query_samples(SampleQuery(limit=2, nodes=("node-a", "node-c")))) == 2
    assert len(store.query_samples(SampleQuery(nodes=()))) == 4


def test_node_heads_are_each_nodes_newest_samples_with_the_writers_version(store: Store) -> None:
    from genperf.storage.base import genperf_version

    store.save_samples(
        [
            SystemSample(taken_at=T0 + timedelta(seconds=i), node=node, cpu_percent=float(i))
            for i in range(6)
            for node in ("node-b", "node-a")
        ]
        + [SystemSample(taken_at=T0 - timedelta(hours=1), node="node-old")]
    )
    heads = store.node_heads(T0, per_node=3)
    assert [h.node for h in heads] == ["node-a", "node-b"]  # node-old has nothing since T0
    assert [s.cpu_percent for s in heads[0].samples] == [5.0, 4.0, 3.0]  # newest first
    assert {s.node for s in heads[1].samples} == {"node-b"}
    assert heads[0].genperf_version == genperf_version() is not None
    assert [h.node for h in store.node_heads(None, per_node=1)] == ["node-a", "node-b", "node-old"]


def test_task_counts_by_node_and_status(store: Store) -> None:
    for node, status, n in (
        ("node-a", TaskStatus.COMPLETED, 3),
        ("node-a", TaskStatus.FAILED, 1),
        ("node-b", TaskStatus.RUNNING, 2),
    ):
        for i in range(n):
            store.save_task(make_task(node=node, status=status, started_at=T0 + timedelta(i)))
    assert store.task_counts_by_node(TaskQuery()) == {
        "node-a": {"completed": 3, "failed": 1},
        "node-b": {"running": 2},
    }
    assert store.task_counts_by_node(TaskQuery(finished_only=True, nodes=("node-b",))) == {}


def test_generation_times_are_a_narrow_read_in_the_querys_order(store: Store) -> None:
    for i, (res, seconds) in enumerate(
        (("1280x720", 100.0), ("1920x1080", 900.0), ("1280x720", None), ("1280x720", 300.0))
    ):
        store.save_task(
            make_task(
                resolution=res,
                started_at=T0 + timedelta(minutes=i),
                generation_time_seconds=seconds,
            )
        )
    assert store.generation_times(TaskQuery()) == [
        ("720p", 300.0),
        ("1080p", 900.0),
        ("720p", 100.0),
    ]
    assert store.generation_times(TaskQuery(newest_first=False, limit=1)) == [("720p", 100.0)]
