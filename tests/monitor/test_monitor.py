from __future__ import annotations

import logging
import threading

import pytest

from genperf.errors import (
    InvalidFieldValueError,
    TaskStateError,
    UnknownFieldError,
    UnknownTaskError,
)
from genperf.records import ErrorCategory, TaskStatus


def tick(monitor, clock, seconds):
    """Let ``seconds`` pass, then take one sample."""
    clock.advance(seconds)
    monitor._sampler.sample_once()


def test_spec_calls_measure_and_store_a_task(monitor, store, clock, readings):
    started = monitor.start_task_monitoring(
        task_id="t1", model_type="t2v-A14B", resolution="1280x720", steps=20
    )
    assert started.status is TaskStatus.RUNNING
    assert started.resolution_class == "720p"
    readings.vram_mb, readings.cpu = 6000.0, 90.0
    tick(monitor, clock, 9.0)
    monitor.update_task_metrics(
        "t1", model_load_time_seconds=12.5, optimizations_applied=["dtype:bf16", "vae_tiling"]
    )
    readings.vram_mb = 3000.0
    tick(monitor, clock, 1.0)
    done = monitor.complete_task_monitoring("t1", success=True)

    assert done.status is TaskStatus.COMPLETED and done.success
    assert done.generation_time_seconds == pytest.approx(10.0)
    assert done.model_load_time_seconds == 12.5
    assert done.optimizations_applied == ("dtype:bf16", "vae_tiling")
    assert done.peak_vram_usage_mb == pytest.approx(6000.0)
    assert done.vram_total_mb == pytest.approx(8000.0)
    assert done.peak_cpu_percent == 90.0
    assert done.samples_count == 2
    assert done.node == monitor.node
    assert done.started_at.tzinfo is not None and done.completed_at >= done.started_at
    # durable before the call returned
    assert store.get_task("t1") == done


def test_averages_are_time_weighted_over_the_task(monitor, clock, readings):
    readings.cpu = 10.0
    monitor._sampler.sample_once()  # the reading in force when the task starts
    monitor.start_task_monitoring("t", "m", "720p", 4)
    tick(monitor, clock, 9.0)  # 10 % for 9 s
    readings.cpu = 100.0
    tick(monitor, clock, 0.0)  # then 100 % for the last second
    clock.advance(1.0)
    done = monitor.complete_task_monitoring("t")
    assert done.avg_cpu_percent == pytest.approx(19.0)
    assert done.peak_cpu_percent == 100.0


def test_a_task_shorter_than_one_interval_still_has_values(monitor, clock):
    monitor._sampler.sample_once()
    monitor.start_task_monitoring("short", "m", "720p", 1)
    clock.advance(0.05)
    done = monitor.complete_task_monitoring("short")
    assert done.peak_vram_usage_mb == pytest.approx(2000.0)
    assert done.avg_cpu_percent == 10.0
    assert done.samples_count == 0  # honest: no sample fell inside it


def test_resolution_forms_map_to_one_class(monitor):
    for i, res in enumerate(["1280x720", "720p", (1280, 720), {"width": 720, "height": 1280}]):
        rec = monitor.start_task_monitoring(f"r{i}", "m", res, 1)
        assert rec.resolution_class == "720p"


def test_unknown_field_and_task_raise_naming_them(monitor):
    monitor.start_task_monitoring("t", "m", "720p", 4)
    with pytest.raises(UnknownFieldError, match="peak_vram_usage_gb"):
        monitor.update_task_metrics("t", peak_vram_usage_gb=3)
    with pytest.raises(InvalidFieldValueError, match="model_load_time_seconds"):
        monitor.update_task_metrics("t", model_load_time_seconds="slow")
    with pytest.raises(UnknownTaskError, match="nope"):
        monitor.update_task_metrics("nope", steps=3)
    with pytest.raises(UnknownTaskError, match="nope"):
        monitor.complete_task_monitoring("nope")


def test_completing_twice_and_starting_twice_are_state_errors(monitor):
    monitor.start_task_monitoring("t", "m", "720p", 4)
    with pytest.raises(TaskStateError, match="already being monitored"):
        monitor.start_task_monitoring("t", "m", "720p", 4)
    monitor.complete_task_monitoring("t")
    with pytest.raises(TaskStateError, match="already complete"):
        monitor.complete_task_monitoring("t")


def test_caller_peak_never_lowers_the_measured_one(monitor, clock, readings):
    monitor.start_task_monitoring("t", "m", "720p", 4)
    readings.vram_mb = 5000.0
    tick(monitor, clock, 1.0)
    monitor.update_task_metrics("t", peak_vram_usage_mb=100.0)
    assert monitor.complete_task_monitoring("t").peak_vram_usage_mb == 5000.0


def test_track_with_phases(monitor, clock, readings, store):
    with monitor.track("job", model_type="tiny-wan", resolution="832x480", steps=4) as task:
        with task.phase("model_load"):
            clock.advance(2.0)
        task.update(model_load_time_seconds=2.0)
        with task.phase("denoise"):
            readings.vram_mb = 7000.0
            tick(monitor, clock, 3.0)
            readings.vram_mb = 2500.0
            tick(monitor, clock, 1.0)
        with task.phase("vae_decode"):
            clock.advance(0.5)
    rec = task.record
    assert rec is not None and rec.success
    assert [p.name for p in rec.phases] == ["model_load", "denoise", "vae_decode"]
    assert [p.duration_seconds for p in rec.phases] == pytest.approx([2.0, 4.0, 0.5])
    assert rec.phase("denoise").started_offset_seconds == pytest.approx(2.0)
    assert rec.phase("denoise").peak_vram_mb == pytest.approx(7000.0)
    assert rec.phase("vae_decode").peak_vram_mb == pytest.approx(2500.0)
    assert rec.resolution_class == "480p"
    assert store.get_task("job") == rec


def test_an_exception_fails_the_task_with_its_phase_and_is_reraised(monitor, clock):
    class OutOfMemoryError(RuntimeError):
        pass

    err = OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    with pytest.raises(OutOfMemoryError) as raised:  # noqa: PT012
        with monitor.track("boom", model_type="m", resolution="1080p", steps=4) as task:
            with task.phase("denoise"):
                clock.advance(1.0)
            with task.phase("vae_decode"):
                raise err
    assert raised.value is err  # re-raised unchanged
    rec = task.record
    assert rec.status is TaskStatus.FAILED and not rec.success
    assert rec.failed_phase == "vae_decode"
    assert rec.phase("vae_decode").failed
    assert rec.error_category == ErrorCategory.OUT_OF_MEMORY_GPU.value
    assert "CUDA out of memory" in rec.error_message
    assert any("tiling" in s.lower() for s in rec.recovery_suggestions)


def test_failure_without_exception_uses_given_category(monitor):
    monitor.start_task_monitoring("t", "m", "720p", 4)
    rec = monitor.complete_task_monitoring(
        "t", success=False, error="took too long", error_category="timeout"
    )
    assert rec.error_category == "timeout"
    assert rec.error_message == "took too long"
    assert rec.recovery_suggestions


def test_throttle_reasons_seen_during_the_task_are_kept(monitor, clock, readings):
    monitor.start_task_monitoring("t", "m", "720p", 4)
    readings.throttle = ("hw_thermal",)
    tick(monitor, clock, 1.0)
    readings.throttle = ()
    tick(monitor, clock, 1.0)
    assert monitor.complete_task_monitoring("t").gpu_throttle_reasons == ("hw_thermal",)


def test_active_tasks_show_the_current_phase(monitor, clock):
    monitor.start_task_monitoring("a", "m", "720p", 4)
    with monitor.phase("a", "denoise"):
        clock.advance(3.0)
        (active,) = monitor.active_tasks()
        assert active.phase == "denoise"
        assert active.record.generation_time_seconds == pytest.approx(3.0)
    assert monitor.get_task_metrics("a").status is TaskStatus.RUNNING
    monitor.complete_task_monitoring("a")
    assert monitor.active_tasks() == []
    assert monitor.get_task_metrics("a").status is TaskStatus.COMPLETED


def test_32_threads_lose_nothing_while_the_sampler_runs(settings, store):
    from genperf.monitor import PerformanceMonitor

    fast = settings.model_copy(update={"monitoring_interval_seconds": 0.001})
    m = PerformanceMonitor(fast, store=store)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(25):
                with m.track(
                    f"w{n}-{i}", model_type=f"model{n % 3}", resolution="720p", steps=2
                ) as task:
                    with task.phase("denoise"):
                        task.update(model_load_time_seconds=float(i))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(32)]
    with m:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    from genperf.storage.base import TaskQuery

    records = store.query_tasks(TaskQuery())
    assert len(records) == 32 * 25
    assert {r.task_id for r in records} == {f"w{n}-{i}" for n in range(32) for i in range(25)}
    assert all(r.status is TaskStatus.COMPLETED and len(r.phases) == 1 for r in records)
    assert all(r.model_load_time_seconds == float(r.task_id.split("-")[1]) for r in records)
    assert m.self_stats()["samples_taken"] > 1


def test_debug_logging_says_what_each_task_did(monitor, caplog):
    with caplog.at_level(logging.DEBUG, logger="genperf"):
        monitor.start_task_monitoring("dbg", "m", "720p", 4)
        monitor._sampler.sample_once()
        monitor.complete_task_monitoring("dbg")
    text = caplog.text
    assert "task dbg started" in text
    assert "task dbg completed" in text
    assert "sample" in text


def test_text_longer_than_its_column_is_refused_naming_the_field(monitor):
    with pytest.raises(InvalidFieldValueError, match="task_id"):
        monitor.start_task_monitoring("x" * 201, "m", "720p", 1)
    with pytest.raises(InvalidFieldValueError, match="model_type"):
        monitor.start_task_monitoring("t", "m" * 101, "720p", 1)
    monitor.start_task_monitoring("t", "m", "720p", 1)
    with pytest.raises(InvalidFieldValueError, match="model_used"):
        monitor.update_task_metrics("t", model_used="/very/long/path/" * 10)
    with pytest.raises(InvalidFieldValueError, match="phase"), monitor.phase("t", "p" * 101):
        pass


def test_text_limits_match_the_store_columns():
    from genperf.records import TEXT_LIMITS
    from genperf.storage.schema import generation_tasks

    for name, limit in TEXT_LIMITS.items():
        if name in generation_tasks.c:
            assert generation_tasks.c[name].type.length == limit, name


def test_the_stored_running_record_says_which_phase_the_task_is_in(monitor, store):
    monitor.start_task_monitoring("p", "m", "720p", 4)
    with monitor.phase("p", "denoise"):
        monitor.flush()
        assert store.get_task("p").current_phase == "denoise"
    done = monitor.complete_task_monitoring("p")
    assert done.current_phase is None
    assert store.get_task("p").current_phase is None


def test_optimisation_tokens_are_stored_in_one_spelling(monitor):
    monitor.start_task_monitoring("o", "m", "720p", 1)
    monitor.update_task_metrics(
        "o", optimizations_applied=["Dtype:BF16", " vae_tiling", "dtype:bf16"]
    )
    assert monitor.complete_task_monitoring("o").optimizations_applied == (
        "dtype:bf16",
        "vae_tiling",
    )


def test_task_listeners_hear_every_finished_task_and_cannot_break_it(monitor):
    heard = []
    monitor.add_task_listener(lambda r: heard.append((r.task_id, r.status)))
    monitor.add_task_listener(lambda r: 1 / 0)  # a broken listener is logged, not felt
    monitor.start_task_monitoring("a", "m", "720p", 1)
    monitor.complete_task_monitoring("a")
    monitor.start_task_monitoring("b", "m", "720p", 1)
    monitor.complete_task_monitoring("b", success=False, error="boom")
    assert heard == [("a", TaskStatus.COMPLETED), ("b", TaskStatus.FAILED)]


def test_where_a_task_runs_decides_what_the_samples_tell(monitor, clock, readings):
    monitor.start_task_monitoring("here", "m", "720p", 1)
    monitor.start_task_monitoring("child", "m", "720p", 1, runs_in="this_host")
    monitor.start_task_monitoring("remote", "m", "720p", 1, runs_in="elsewhere")
    readings.cpu = 77.0
    tick(monitor, clock, 1.0)
    here = monitor.complete_task_monitoring("here")
    child = monitor.complete_task_monitoring("child")
    remote = monitor.complete_task_monitoring("remote")
    assert here.peak_cpu_percent == child.peak_cpu_percent == 77.0  # the host is shared
    assert here.peak_process_rss_mb >= 500.0  # sampled, raised by the exact VmHWM peak
    assert child.peak_process_rss_mb is None  # this process's memory is not the child's
    assert remote.peak_cpu_percent is None and remote.samples_count == 0


def test_a_task_of_another_process_leaves_exact_peaks_to_the_local_one(monitor):
    monitor.start_task_monitoring("local", "m", "720p", 1)
    monitor.start_task_monitoring("child", "m", "720p", 1, runs_in="this_host")
    assert monitor._tracker.is_exclusive("local")
    assert not monitor._tracker.is_exclusive("child")
