"""NvmlCollector with FakeNvml (no GPU here), and with the real pynvml of this machine."""

from __future__ import annotations

import dataclasses
import inspect
import logging
import os
import threading
from typing import Any

import pynvml
import pytest

from genperf.collectors import Collector, NvmlCollector
from genperf.collectors.nvml import THROTTLE_REASONS, decode_throttle_reasons
from genperf.records import GPU_METRICS, GpuReading
from genperf.testing import FakeGpu, FakeNvml

LOGGER = "genperf.collectors.nvml"
GIB = 2**30
NOT_SUPPORTED = pynvml.NVML_ERROR_NOT_SUPPORTED
NOBODY = 99_999_999  # a PID above Linux's pid_max: no process has it


def busy_h200() -> FakeGpu:
    return FakeGpu(
        "NVIDIA H200",
        uuid="GPU-0000",
        memory_used_bytes=70 * GIB,
        memory_total_bytes=140 * GIB,
        memory_reserved_bytes=GIB // 2,
        utilization_percent=97,
        memory_utilization_percent=41,
        temperature_celsius=71,
        power_mw=612_345,
        power_limit_mw=700_000,
        sm_clock_mhz=1980,
        memory_clock_mhz=3201,
        throttle_reasons=pynvml.nvmlClocksEventReasonSwPowerCap
        | pynvml.nvmlClocksEventReasonSwThermalSlowdown,
        processes=[(os.getpid(), 60 * GIB), (os.getppid(), 9 * GIB)],
    )


def only_gpu(collector: NvmlCollector) -> GpuReading:
    (gpu,) = collector.collect()["gpus"]
    assert isinstance(gpu, GpuReading)
    return gpu


def test_reads_every_field_in_base_units() -> None:
    collector = NvmlCollector(FakeNvml([busy_h200()]))
    assert isinstance(collector, Collector)
    assert collector.name == "nvml"
    assert collector.available
    gpu = only_gpu(collector)
    assert gpu == GpuReading(
        index=0,
        name="NVIDIA H200",
        uuid="GPU-0000",
        memory_used_bytes=70 * GIB,  # v2: without the driver's reserve, as nvidia-smi shows
        memory_total_bytes=140 * GIB,
        utilization_percent=97.0,
        memory_utilization_percent=41.0,
        temperature_celsius=71.0,
        power_watts=612.345,
        power_limit_watts=700.0,
        sm_clock_mhz=1980,
        memory_clock_mhz=3201,
        throttle_reasons=("sw_power_cap", "sw_thermal"),
        process_memory_bytes=60 * GIB,
    )
    assert all(getattr(gpu, m.name) is not None for m in GPU_METRICS)


def test_several_gpus_each_with_its_own_readings() -> None:
    gpus = [busy_h200(), FakeGpu("NVIDIA H200", uuid="GPU-0001", memory_used_bytes=GIB)]
    readings = NvmlCollector(FakeNvml(gpus)).collect()["gpus"]
    assert [g.index for g in readings] == [0, 1]
    assert [g.uuid for g in readings] == ["GPU-0000", "GPU-0001"]
    assert [g.memory_used_bytes for g in readings] == [70 * GIB, GIB]
    assert readings[1].throttle_reasons == ()  # idle is not a throttle
    assert readings[1].process_memory_bytes == 0  # not listed, and every listed PID is visible


def test_readings_follow_the_gpu_and_handles_are_cached() -> None:
    nvml = FakeNvml([busy_h200()])
    collector = NvmlCollector(nvml)
    collector.collect()
    nvml.gpus[0].memory_used_bytes = 100 * GIB
    nvml.gpus[0].temperature_celsius = 80
    gpu = only_gpu(collector)
    assert (gpu.memory_used_bytes, gpu.temperature_celsius) == (100 * GIB, 80.0)
    assert nvml.calls["nvmlInit"] == 1
    assert nvml.calls["nvmlDeviceGetHandleByIndex"] == 1
    assert nvml.calls["nvmlDeviceGetName"] == 1  # static: read once


def test_memory_falls_back_to_v1_with_an_old_nvidia_ml_py() -> None:
    collector = NvmlCollector(FakeNvml([busy_h200()], missing={"nvmlMemory_v2"}))
    assert only_gpu(collector).memory_used_bytes == 70 * GIB + GIB // 2  # v1 counts the reserve


@pytest.mark.parametrize(
    ("init_error", "message"),
    [
        (pynvml.NVML_ERROR_LIBRARY_NOT_FOUND, "Library Not Found"),
        (pynvml.NVML_ERROR_DRIVER_NOT_LOADED, "Driver Not Loaded"),
    ],
)
def test_no_library_or_driver_is_unavailable_logged_once_and_not_retried(
    init_error: int, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    nvml = FakeNvml([busy_h200()], init_error=init_error)
    collector = NvmlCollector(nvml)
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        for _ in range(50):
            assert collector.collect() == {}
        assert not collector.available
    assert nvml.calls == {"nvmlInit": 1}
    records = [r for r in caplog.records if r.name == LOGGER]
    assert len(records) == 1
    assert records[0].levelno == logging.INFO
    assert message in records[0].getMessage()
    collector.shutdown()  # harmless when NVML never started
    assert collector.collect() == {}
    assert nvml.calls == {"nvmlInit": 1}


def test_no_gpu_is_unavailable_and_releases_nvml(caplog: pytest.LogCaptureFixture) -> None:
    nvml = FakeNvml([])
    with caplog.at_level(logging.INFO, logger=LOGGER):
        assert not NvmlCollector(nvml).available
    assert nvml.init_count == 0  # nvmlShutdown balanced the nvmlInit
    assert "no GPU" in caplog.text


def test_a_gpu_whose_handle_is_refused_is_left_out() -> None:
    hidden = FakeGpu(errors={"nvmlDeviceGetHandleByIndex": pynvml.NVML_ERROR_NO_PERMISSION})
    readings = NvmlCollector(FakeNvml([hidden, busy_h200()])).collect()["gpus"]
    assert [g.index for g in readings] == [1]


@pytest.mark.parametrize(
    ("function", "fields"),
    [
        ("nvmlDeviceGetName", ["name"]),
        ("nvmlDeviceGetUUID", ["uuid"]),
        ("nvmlDeviceGetMemoryInfo", ["memory_used_bytes", "memory_total_bytes"]),
        ("nvmlDeviceGetUtilizationRates", ["utilization_percent", "memory_utilization_percent"]),
        ("nvmlDeviceGetTemperature", ["temperature_celsius"]),
        ("nvmlDeviceGetPowerUsage", ["power_watts"]),
        ("nvmlDeviceGetEnforcedPowerLimit", ["power_limit_watts"]),
        ("nvmlDeviceGetComputeRunningProcesses", ["process_memory_bytes"]),
    ],
)
def test_an_unsupported_call_empties_only_its_fields_and_is_not_asked_again(
    function: str, fields: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    gpu = busy_h200()
    gpu.errors[function] = NOT_SUPPORTED
    nvml = FakeNvml([gpu, busy_h200()])
    collector = NvmlCollector(nvml)
    expected = NvmlCollector(FakeNvml([busy_h200()])).collect()["gpus"][0]
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        first, second = collector.collect()["gpus"]
        asked = nvml.calls[function]
        for _ in range(4):
            first, second = collector.collect()["gpus"]
    assert first == dataclasses.replace(expected, **dict.fromkeys(fields))
    assert second == dataclasses.replace(expected, index=1)  # the other GPU supports it
    static = function in ("nvmlDeviceGetName", "nvmlDeviceGetUUID")
    assert nvml.calls[function] - asked == (0 if static else 4)  # only the GPU that has it
    debug = [r for r in caplog.records if function in r.getMessage()]
    assert len(debug) == 1
    assert debug[0].levelno == logging.DEBUG
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_an_unsupported_clock_empties_only_that_clock() -> None:
    nvml = FakeNvml([busy_h200()])
    collector = NvmlCollector(nvml)
    real = nvml.nvmlDeviceGetClockInfo

    def no_memory_clock(handle: Any, type: int) -> int:
        if type == pynvml.NVML_CLOCK_MEM:
            raise pynvml.NVMLError_NotSupported()
        return real(handle, type)

    nvml.nvmlDeviceGetClockInfo = no_memory_clock  # type: ignore[method-assign]
    gpu = only_gpu(collector)
    assert (gpu.sm_clock_mhz, gpu.memory_clock_mhz) == (1980, None)
    assert only_gpu(collector).sm_clock_mhz == 1980


def test_throttle_reasons_fall_back_to_the_older_call() -> None:
    gpu = busy_h200()
    gpu.errors["nvmlDeviceGetCurrentClocksEventReasons"] = pynvml.NVML_ERROR_FUNCTION_NOT_FOUND
    nvml = FakeNvml([gpu])
    collector = NvmlCollector(nvml)
    for _ in range(3):
        assert only_gpu(collector).throttle_reasons == ("sw_power_cap", "sw_thermal")
    assert nvml.calls["nvmlDeviceGetCurrentClocksEventReasons"] == 1
    assert nvml.calls["nvmlDeviceGetCurrentClocksThrottleReasons"] == 3


def test_throttle_reasons_with_an_nvidia_ml_py_that_lacks_the_new_name() -> None:
    nvml = FakeNvml([busy_h200()], missing={"nvmlDeviceGetCurrentClocksEventReasons"})
    assert only_gpu(NvmlCollector(nvml)).throttle_reasons == ("sw_power_cap", "sw_thermal")


def test_a_failing_gpu_is_retried_and_warned_about_once(caplog: pytest.LogCaptureFixture) -> None:
    gpu = busy_h200()
    gpu.errors["nvmlDeviceGetPowerUsage"] = pynvml.NVML_ERROR_GPU_IS_LOST
    nvml = FakeNvml([gpu])
    collector = NvmlCollector(nvml)
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        for _ in range(4):
            assert only_gpu(collector).power_watts is None
    assert nvml.calls["nvmlDeviceGetPowerUsage"] == 4  # may recover: asked again each tick
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "GPU is lost" in warnings[0].getMessage()
    del gpu.errors["nvmlDeviceGetPowerUsage"]
    assert only_gpu(collector).power_watts == 612.345


@pytest.mark.parametrize(
    ("processes", "expected"),
    [
        ([(os.getpid(), 3 * GIB)], 3 * GIB),
        ([(os.getpid(), 3 * GIB), (os.getpid(), GIB)], 4 * GIB),  # one entry per MIG instance
        ([(os.getpid(), None)], None),  # listed, usage not reported (WDDM, some containers)
        ([], 0),
        ([(os.getppid(), GIB)], 0),  # others listed, all visible: we share NVML's PID space
        ([(NOBODY, GIB)], None),  # a PID we cannot see: another namespace, ours unknown
    ],
)
def test_this_process_gpu_memory(
    processes: list[tuple[int, int | None]], expected: int | None
) -> None:
    gpu = busy_h200()
    gpu.processes = processes
    assert only_gpu(NvmlCollector(FakeNvml([gpu]))).process_memory_bytes == expected


def test_shutdown_releases_nvml_and_collect_starts_it_again() -> None:
    nvml = FakeNvml([busy_h200()])
    collector = NvmlCollector(nvml)
    collector.collect()
    collector.shutdown()
    assert nvml.init_count == 0
    collector.shutdown()  # twice is harmless
    assert only_gpu(collector).name == "NVIDIA H200"
    assert nvml.calls["nvmlInit"] == 2
    assert nvml.init_count == 1


def test_lazy_init_happens_once_across_threads() -> None:
    nvml = FakeNvml([busy_h200(), busy_h200()])
    collector = NvmlCollector(nvml)
    start = threading.Barrier(8)
    results: list[int] = []

    def read() -> None:
        start.wait()
        for _ in range(20):
            results.append(len(collector.collect()["gpus"]))

    threads = [threading.Thread(target=read) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [2] * 160
    assert nvml.calls["nvmlInit"] == 1


def test_nothing_touches_nvml_before_the_first_use() -> None:
    nvml = FakeNvml([busy_h200()])
    NvmlCollector(nvml)
    assert nvml.calls == {}


def test_decode_throttle_reasons() -> None:
    assert decode_throttle_reasons(0) == ()
    assert decode_throttle_reasons(pynvml.nvmlClocksEventReasonGpuIdle) == ()
    every = sum(bit for bit, _ in THROTTLE_REASONS)
    assert decode_throttle_reasons(every | 1) == tuple(name for _, name in THROTTLE_REASONS)
    assert decode_throttle_reasons(
        pynvml.nvmlClocksThrottleReasonHwSlowdown
        | pynvml.nvmlClocksThrottleReasonHwThermalSlowdown
        | pynvml.nvmlClocksThrottleReasonHwPowerBrakeSlowdown
        | 0x800
    ) == ("hw_slowdown", "hw_thermal", "hw_power_brake", "unknown_0x800")


def test_the_names_match_pynvml_constants() -> None:
    by_name = {
        "applications_clocks": pynvml.nvmlClocksEventReasonApplicationsClocksSetting,
        "sw_power_cap": pynvml.nvmlClocksEventReasonSwPowerCap,
        "hw_slowdown": pynvml.nvmlClocksEventReasonHwSlowdown,
        "sync_boost": pynvml.nvmlClocksEventReasonSyncBoost,
        "sw_thermal": pynvml.nvmlClocksEventReasonSwThermalSlowdown,
        "hw_thermal": pynvml.nvmlClocksEventReasonHwThermalSlowdown,
        "hw_power_brake": pynvml.nvmlClocksEventReasonHwPowerBrakeSlowdown,
        "display_clocks": pynvml.nvmlClocksEventReasonDisplayClockSetting,
        "board_limit": pynvml.nvmlClocksThrottleReasonBoardLimit,
        "reliability": pynvml.nvmlClocksThrottleReasonReliability,
    }
    assert {name: bit for bit, name in THROTTLE_REASONS} == by_name


def test_fake_nvml_mirrors_pynvml_signatures() -> None:
    functions = [name for name in vars(FakeNvml) if name.startswith("nvml")]
    assert len(functions) >= 15
    for name in functions:
        real = inspect.signature(getattr(pynvml, name))
        fake = inspect.signature(getattr(FakeNvml([]), name))
        assert list(fake.parameters) == list(real.parameters), name
        defaults = [p.default for p in real.parameters.values()]
        assert [p.default for p in fake.parameters.values()] == defaults, name


def test_fake_nvml_refuses_calls_before_init() -> None:
    with pytest.raises(pynvml.NVMLError_Uninitialized):
        FakeNvml([busy_h200()]).nvmlDeviceGetCount()


def test_the_real_pynvml_here() -> None:
    """No driver on the CI machine: unavailable, no exception. On a GPU host: real readings."""
    collector = NvmlCollector()
    try:
        if not collector.available:
            assert collector.collect() == {}
            return
        readings = collector.collect()["gpus"]
        assert readings
        for gpu in readings:
            assert gpu.name
            assert gpu.uuid is not None
            assert gpu.uuid.startswith(("GPU-", "MIG-"))
            assert gpu.memory_total_bytes is not None
            assert gpu.memory_total_bytes > GIB
            assert gpu.memory_used_bytes is not None
            assert 0 <= gpu.memory_used_bytes <= gpu.memory_total_bytes
            assert gpu.temperature_celsius is None or 5 < gpu.temperature_celsius < 110
            assert gpu.power_watts is None or 0 < gpu.power_watts < 2000
            assert gpu.throttle_reasons is None or isinstance(gpu.throttle_reasons, tuple)
    finally:
        collector.shutdown()
