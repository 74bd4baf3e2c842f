"""What a live sink adds to a generation: InfluxDB up, and InfluxDB down.

Method: ``monitor_overhead.py``'s interleaved pairs. The workload is the same real CPU work
shaped like a generation (torch matmuls when torch is installed, else SHA-256), about 1 s per
run in four phases. Two monitors run side by side for the whole benchmark, sampling at the same
interval into their own SQLite files: one without sinks, one with the InfluxDB sink
(``influxdb_url``; default batching, queue and back-off, so it sends every
``sink_flush_seconds`` = 1 s). Each pair runs the workload once tracked by each monitor, the
order alternating from pair to pair; we report the median of the per-pair ratios
with-sink / without-sink. Then influxd is stopped and the same pairs run again: the sink
queues, fails to connect and backs off (up to ``sink_retry_max_seconds``).

Each run's CPU time on the generation's thread (``time.thread_time``) is read too, and the
median per-pair ratio of those is reported beside the wall-clock one: on a loaded machine the
wall time of a 1 s run varies by tens of percent with what else runs, its CPU time far less,
and everything the sink does on the generation's thread (``offer_task``) is in it.

What the ratios cannot see: the sink's thread works in the background, so its cost falls on
whichever run comes next, of either arm. The script therefore also reads the sink thread's own
CPU time (from /proc/self/task/<id>/schedstat, in nanoseconds) over each phase and divides it
by the with-sink runs' total time: that is the most its background work can take from a
generation on a machine with no idle core (divided by the runs instead: its cost per task).
Aim: both figures under 0.5 %.

A real influxd (Debian's ``influxdb``) is started on free loopback ports in a temporary
directory by the tests' own helper (tests/sinks/influx_server.py), so both start it one way.

Run: ``.venv/bin/python benchmarks/sink_overhead.py [PAIRS] [INTERVAL_SECONDS] [auto|sha256]``
(the workload: ``auto`` is torch where installed; ``sha256`` is single-threaded).
"""

from __future__ import annotations

import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from genperf.config import Settings
from genperf.monitor import PerformanceMonitor
from genperf.records import TaskRecord
from genperf.sinks.base import BatchingSink, QueueLimits
from genperf.sinks.influx import InfluxSink
from monitor_overhead import make_workload, run

# The tests' influxd helper, so the benchmark and the tests start influxd the same one way.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "sinks"))
from influx_server import InfluxServer


def thread_cpu(native_id: int | None) -> float:
    """CPU seconds of one thread of this process: from its schedstat (nanoseconds) on Linux,
    else from psutil (clock ticks, 10 ms: coarse for a thread that works ~100 ms a run)."""
    try:
        with open(f"/proc/self/task/{native_id}/schedstat") as f:
            return int(f.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        pass
    for t in psutil.Process().threads():
        if t.id == native_id:
            return float(t.user_time + t.system_time)
    return 0.0


Pairs = tuple[list[float], list[float], list[float], list[float]]


def pairs_of(
    pairs: int,
    work: Callable[[], None],
    plain: PerformanceMonitor,
    with_sink: PerformanceMonitor,
    label: str,
) -> Pairs:
    """Per pair: the wall-clock ratio, both wall times, and the ratio of CPU times."""
    ratios, plain_times, sink_times, cpu_ratios = [], [], [], []
    for i in range(pairs):

        def timed(monitor: PerformanceMonitor, i: int = i) -> tuple[float, float]:
            began, began_cpu = time.perf_counter(), time.thread_time()
            with monitor.track(f"{label}{i}", model_type="bench", resolution="720p") as task:
                run(work, task.phase)
            return time.perf_counter() - began, time.thread_time() - began_cpu

        if i % 2:
            (s, s_cpu), (p, p_cpu) = timed(with_sink), timed(plain)
        else:
            (p, p_cpu), (s, s_cpu) = timed(plain), timed(with_sink)
        plain_times.append(p)
        sink_times.append(s)
        ratios.append(s / p)
        cpu_ratios.append(s_cpu / p_cpu)
        print(f"  {label} pair {i + 1}/{pairs}: {p:.3f} s, {s:.3f} s", file=sys.stderr, flush=True)
    return ratios, plain_times, sink_times, cpu_ratios


def offer_cost(record: TaskRecord, calls: int = 10_000) -> tuple[float, float]:
    """Median and p99 (µs) of one ``offer_task``: all the sink asks of the finishing thread.
    Timed in blocks of 100 calls, on a sink whose thread is not started (the same code)."""
    sink = InfluxSink("http://127.0.0.1:9", "genperf", QueueLimits(queue_size=calls + 1))
    blocks = []
    for _ in range(calls // 100):
        began = time.perf_counter()
        for _ in range(100):
            sink.offer_task(record)
        blocks.append((time.perf_counter() - began) / 100 * 1e6)
    blocks.sort()
    return statistics.median(blocks), blocks[int(len(blocks) * 0.99)]


def report(title: str, result: Pairs, cpu: float) -> None:
    ratios, plain_times, sink_times, cpu_ratios = result
    median = statistics.median(ratios)
    cpu_median = statistics.median(cpu_ratios)
    print(f"{title}:", flush=True)
    print(
        f"  median without sink {statistics.median(plain_times):.4f} s, "
        f"with sink {statistics.median(sink_times):.4f} s"
    )
    print(f"  median ratio with/without: {median:.4f} (overhead {100 * (median - 1):+.2f} %)")
    print(
        f"  median ratio of the generation thread's CPU time: {cpu_median:.4f} "
        f"(overhead {100 * (cpu_median - 1):+.2f} %)"
    )
    print(
        f"  sink thread CPU {1000 * cpu:.1f} ms over {sum(sink_times):.1f} s of with-sink runs "
        f"({100 * cpu / sum(sink_times):.3f} %; {1000 * cpu / len(sink_times):.2f} ms per task)"
    )


def main() -> None:
    print(f"load average at start: {psutil.getloadavg()[0]:.2f}")
    pairs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    interval = float(sys.argv[2]) if len(sys.argv) > 2 else 0.5
    name, work = make_workload(sys.argv[3] if len(sys.argv) > 3 else "auto")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop influxd on the way out
    work()  # warm up caches and thread pools
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        influxd = InfluxServer(root)
        influxd.start()
        try:

            def settings(db: str, **extra: object) -> Settings:
                return Settings(
                    monitoring_interval_seconds=interval,
                    data_dir=root,
                    database_url=f"sqlite:///{root / db}",
                    **extra,  # type: ignore[arg-type]
                )

            plain = PerformanceMonitor(settings("plain.db"))
            with_sink = PerformanceMonitor(settings("sink.db", influxdb_url=influxd.url))
            last: TaskRecord | None = None
            with plain, with_sink:
                sink = with_sink.sinks[0]
                assert isinstance(sink, BatchingSink)
                tid = sink._thread.native_id if sink._thread is not None else None
                cpu0 = thread_cpu(tid)
                up = pairs_of(pairs, work, plain, with_sink, "up")
                assert with_sink.flush_sinks(60)
                cpu_up = thread_cpu(tid) - cpu0
                sent_up = sink.stats()
                print(f"workload: {name}, {pairs} pairs, sampler interval {interval} s")
                report("influxd up", up, cpu_up)
                print(f"  sent {sent_up['tasks_sent']} tasks, {sent_up['samples_sent']} samples")
                influxd.stop()
                cpu1 = thread_cpu(tid)
                down = pairs_of(pairs, work, plain, with_sink, "down")
                cpu_down = thread_cpu(tid) - cpu1
                stats = sink.stats()
                last = with_sink.get_task_metrics("down0")
        finally:
            influxd.stop()
    report("influxd down", down, cpu_down)
    print(
        f"  while down: {stats['send_errors']} failed sends, {stats['queued']} items queued, "
        f"{stats['tasks_dropped'] + stats['samples_dropped']} dropped"
    )
    assert last is not None
    median, p99 = offer_cost(last)
    print(f"offer_task on the finishing thread: median {median:.2f} µs, p99 {p99:.2f} µs per task")
    print(f"load average at end: {psutil.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
