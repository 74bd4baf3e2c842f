"""HostCollector against the real psutil of this machine; fakes only for what it lacks."""

from __future__ import annotations

import logging
import threading
import time
from collections import namedtuple
from pathlib import Path
from typing import Any

import psutil
import pytest

from genperf.collectors import Collector, HostCollector
from genperf.records import SAMPLE_FIELDS, SystemSample, utc_now
from genperf.testing import ManualClock

Temp = namedtuple("Temp", "label current high critical")
DiskIO = namedtuple("DiskIO", "read_bytes write_bytes")


def test_is_a_collector_and_reads_plausible_values(tmp_path: Path) -> None:
    host = HostCollector(tmp_path)
    assert isinstance(host, Collector)
    assert host.name == "host"
    values = host.collect()
    assert set(values) <= set(SAMPLE_FIELDS)
    SystemSample(taken_at=utc_now(), node="n", **values)  # every key is a sample field

    cores = psutil.cpu_count()
    assert values["cpu_count"] == cores
    assert 0.0 <= values["cpu_percent"] <= 100.0
    assert len(values["cpu_per_core_percent"]) == cores
    assert all(0.0 <= c <= 100.0 for c in values["cpu_per_core_percent"])
    assert values["ram_total_bytes"] == psutil.virtual_memory().total
    assert 0 < values["ram_used_bytes"] < values["ram_total_bytes"]
    assert values["ram_percent"] == pytest.approx(
        100 * values["ram_used_bytes"] / values["ram_total_bytes"], abs=0.5
    )
    assert values["swap_used_bytes"] >= 0
    assert 0.0 <= values["swap_percent"] <= 100.0
    assert values["disk_path"] == str(tmp_path)
    assert values["disk_total_bytes"] > 0
    assert 0 <= values["disk_free_bytes"] <= values["disk_total_bytes"]
    assert 0 <= values["disk_used_bytes"] <= values["disk_total_bytes"]
    assert 0.0 <= values["disk_percent"] <= 100.0
    assert 10 * 2**20 < values["process_rss_bytes"] < values["ram_total_bytes"]
    temp = values.get("cpu_temperature_celsius")
    assert temp is None or 0 < temp < 130


def test_cpu_is_read_without_an_interval_and_never_sleeps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[Any, bool]] = []
    real = psutil.cpu_percent

    def spy(interval: float | None = None, percpu: bool = False) -> Any:
        calls.append((interval, percpu))
        return real(interval, percpu=percpu)

    def no_sleep(seconds: float) -> None:
        raise AssertionError(f"the collector slept {seconds} s")

    monkeypatch.setattr(psutil, "cpu_percent", spy)
    monkeypatch.setattr(time, "sleep", no_sleep)
    host = HostCollector(tmp_path)
    assert calls == [(None, False), (None, True)]  # primed once, at construction
    for _ in range(3):
        assert "cpu_percent" in host.collect()
    assert calls[2:] == [(None, False), (None, True)] * 3
    assert all(interval is None for interval, _ in calls)


def test_per_core_can_be_turned_off(tmp_path: Path) -> None:
    values = HostCollector(tmp_path, per_core=False).collect()
    assert "cpu_percent" in values
    assert "cpu_per_core_percent" not in values


def test_a_new_thread_is_primed_and_leaves_cpu_out_once(tmp_path: Path) -> None:
    host = HostCollector(tmp_path)
    readings: list[dict[str, Any]] = []
    worker = threading.Thread(target=lambda: readings.extend([host.collect(), host.collect()]))
    worker.start()
    worker.join()
    first, second = readings
    assert "cpu_percent" not in first  # psutil has no baseline in that thread: not a fake 0.0
    assert "ram_used_bytes" in first
    assert 0.0 <= second["cpu_percent"] <= 100.0


def test_disk_rates_are_unknown_first_then_measured(tmp_path: Path) -> None:
    clock = ManualClock()
    host = HostCollector(tmp_path, clock=clock)
    first = host.collect()
    assert "disk_read_bytes_per_second" not in first
    assert "disk_write_bytes_per_second" not in first
    clock.advance(2.0)
    second = host.collect()
    assert second["disk_read_bytes_per_second"] >= 0.0
    assert second["disk_write_bytes_per_second"] >= 0.0
    third = host.collect()  # no time has passed: no rate rather than a division by zero
    assert "disk_read_bytes_per_second" not in third


def test_disk_rates_are_the_counter_deltas_over_the_clock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counters = iter([DiskIO(1000, 5000), DiskIO(3000, 5000), DiskIO(100, 9000)])
    monkeypatch.setattr(psutil, "disk_io_counters", lambda: next(counters))
    clock = ManualClock()
    host = HostCollector(tmp_path, clock=clock)
    host.collect()
    clock.advance(2.0)
    second = host.collect()
    assert second["disk_read_bytes_per_second"] == 1000.0
    assert second["disk_write_bytes_per_second"] == 0.0
    clock.advance(1.0)
    third = host.collect()  # a counter went backwards (a disk went away): unknown, not negative
    assert "disk_read_bytes_per_second" not in third
    assert third["disk_write_bytes_per_second"] == 4000.0


def test_no_disks_means_no_rates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(psutil, "disk_io_counters", lambda: None)
    clock = ManualClock()
    host = HostCollector(tmp_path, clock=clock)
    host.collect()
    clock.advance(1.0)
    assert "disk_read_bytes_per_second" not in host.collect()


def test_a_disk_path_not_yet_created_is_measured_at_its_nearest_parent(tmp_path: Path) -> None:
    wanted = tmp_path / "data" / "models"
    host = HostCollector(wanted)
    values = host.collect()
    assert values["disk_path"] == str(tmp_path)
    assert values["disk_total_bytes"] > 0
    wanted.mkdir(parents=True)
    assert host.collect()["disk_path"] == str(wanted)


def test_a_relative_disk_path_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert HostCollector(Path("not-yet")).collect()["disk_path"] == str(tmp_path)


def test_one_failing_call_leaves_out_only_its_fields_and_is_logged_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> None:
        raise PermissionError("denied")

    monkeypatch.setattr(psutil, "swap_memory", broken)
    host = HostCollector(tmp_path)
    with caplog.at_level(logging.WARNING, logger="genperf.collectors.host"):
        readings = [host.collect() for _ in range(3)]
    for values in readings:
        assert "swap_used_bytes" not in values
        assert "swap_percent" not in values
        assert "ram_used_bytes" in values
        assert "disk_total_bytes" in values
        assert "process_rss_bytes" in values
    assert len(caplog.records) == 1
    assert "swap" in caplog.records[0].getMessage()


def test_a_vanished_process_leaves_out_only_rss(tmp_path: Path) -> None:
    child = psutil.Popen(["sleep", "0"])
    child.wait()
    values = HostCollector(tmp_path, process=child).collect()
    assert "process_rss_bytes" not in values
    assert "ram_used_bytes" in values


def test_the_hottest_cpu_sensor_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chips = {
        "coretemp": [Temp("Package id 0", 61.0, 80.0, 100.0), Temp("Core 3", 67.5, 80.0, 100.0)],
        "acpitz": [Temp("", 90.0, None, None)],  # a board zone: ignored when a CPU chip exists
        "nvme": [Temp("Composite", 95.0, 80.0, 90.0)],  # not the CPU
    }
    monkeypatch.setattr(psutil, "sensors_temperatures", lambda: chips)
    assert HostCollector(tmp_path).collect()["cpu_temperature_celsius"] == 67.5


def test_acpitz_is_the_fallback_sensor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chips = {"acpitz": [Temp("", 45.0, None, None), Temp("", 0.0, None, None)]}
    monkeypatch.setattr(psutil, "sensors_temperatures", lambda: chips)
    assert HostCollector(tmp_path).collect()["cpu_temperature_celsius"] == 45.0


def test_a_platform_without_sensors_is_asked_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[int] = []

    def sensors() -> dict[str, list[Temp]]:
        asked.append(1)
        return {"nvme": [Temp("Composite", 40.0, None, None)]}

    monkeypatch.setattr(psutil, "sensors_temperatures", sensors)
    host = HostCollector(tmp_path)
    for _ in range(5):
        assert "cpu_temperature_celsius" not in host.collect()
    assert len(asked) == 1


def test_a_platform_without_the_sensors_api_is_fine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(psutil, "sensors_temperatures")
    values = HostCollector(tmp_path).collect()
    assert "cpu_temperature_celsius" not in values
    assert "ram_used_bytes" in values
