"""start_daemon: one running thread per part, and a stopped part can start again."""

from __future__ import annotations

import threading

from genperf.threads import start_daemon


def test_a_running_thread_is_kept_and_a_finished_one_replaced_with_stop_cleared() -> None:
    stop = threading.Event()
    release = threading.Event()
    runs: list[str] = []

    def loop() -> None:
        runs.append(threading.current_thread().name)
        release.wait()

    first = start_daemon(None, stop, loop, "genperf-test")
    assert first.daemon and first.name == "genperf-test"
    assert start_daemon(first, stop, loop, "genperf-test") is first  # still running: kept

    stop.set()
    release.set()
    first.join()
    second = start_daemon(first, stop, loop, "genperf-test")
    second.join()
    assert second is not first
    assert not stop.is_set()  # a restarted part would otherwise stop at once
    assert runs == ["genperf-test", "genperf-test"]
