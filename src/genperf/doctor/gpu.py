"""GPU checks: NVML (loadable, driver, each GPU's fields) and torch (installed, CUDA build,
CUDA available, its CUDA against the driver's). The spec's "GPU monitoring not working".

A GPU is optional (the spec's Hardware Requirements): no NVML or a CPU-only torch is
``not_available`` with the reason, not a failure. Both modules are passed in so the GPU
branches run in tests with :class:`genperf.testing.FakeNvml` and ``FakeTorchCuda``.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from typing import Any

from genperf.doctor.core import Check, Verdict

V = Verdict
NVML_FIX = (
    "Install the NVIDIA driver (nvidia-smi must work), pip install nvidia-ml-py, and in a "
    "container run with the GPU exposed (docker --gpus all, NVIDIA_VISIBLE_DEVICES)."
)


def _import(name: str) -> tuple[Any, str | None]:
    try:
        return importlib.import_module(name), None
    except ImportError as exc:
        return None, f"{name} is not installed ({exc})"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def cuda_version_text(code: int) -> str:
    """NVML's CUDA driver version (12080) as people write it (12.8)."""
    return f"{code // 1000}.{code % 1000 // 10}"


def nvml_checks(nvml: Any = None, *, enabled: bool = True) -> Iterator[Check]:
    """NVML loadable, the driver, and every GPU's readable fields."""
    if not enabled:
        yield Check(
            "nvml",
            "NVML loadable",
            V.NOT_AVAILABLE,
            "not checked: enable_gpu_monitoring is false in the settings",
            "Set enable_gpu_monitoring to true to monitor GPUs.",
        )
        return
    if nvml is None:
        nvml, why = _import("pynvml")
        if nvml is None:
            yield Check("nvml", "NVML loadable", V.NOT_AVAILABLE, f"not available: {why}", NVML_FIX)
            return
    try:
        nvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        yield Check(
            "nvml",
            "NVML loadable",
            V.NOT_AVAILABLE,
            f"not available: NVML cannot start ({exc})",
            NVML_FIX,
            {"error": str(exc)},
        )
        return
    try:
        yield Check("nvml", "NVML loadable", V.OK, "NVML initialised")
        yield from _driver(nvml)
        yield from _gpus(nvml)
    finally:
        with contextlib.suppress(Exception):  # nothing to do about a failed shutdown here
            nvml.nvmlShutdown()


def _driver(nvml: Any) -> Iterator[Check]:
    try:
        driver = _text(nvml.nvmlSystemGetDriverVersion())
    except Exception as exc:
        yield Check(
            "nvml_driver",
            "NVIDIA driver version",
            V.WARNING,
            f"NVML cannot read the driver version ({exc})",
            "Update nvidia-ml-py and the driver.",
        )
        return
    cuda: str | None = None
    try:
        cuda = cuda_version_text(int(nvml.nvmlSystemGetCudaDriverVersion()))
    except Exception:  # older drivers: the CUDA version stays unknown
        cuda = None
    yield Check(
        "nvml_driver",
        "NVIDIA driver version",
        V.OK,
        f"driver {driver}" + (f", supports CUDA up to {cuda}" if cuda else ""),
        data={"driver_version": driver, "cuda_driver_version": cuda},
    )


# (what, NVML function, extra arguments) read for every GPU.
_FIELDS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("name", "nvmlDeviceGetName", ()),
    ("memory", "nvmlDeviceGetMemoryInfo", ()),
    ("utilization", "nvmlDeviceGetUtilizationRates", ()),
    ("temperature", "nvmlDeviceGetTemperature", ("NVML_TEMPERATURE_GPU",)),
    ("power", "nvmlDeviceGetPowerUsage", ()),
    ("clocks", "nvmlDeviceGetClockInfo", ("NVML_CLOCK_SM",)),
    ("processes", "nvmlDeviceGetComputeRunningProcesses", ()),
)


def _gpus(nvml: Any) -> Iterator[Check]:
    try:
        count = int(nvml.nvmlDeviceGetCount())
    except Exception as exc:
        yield Check("gpus", "GPUs visible", V.FAILURE, f"NVML cannot count GPUs ({exc})", NVML_FIX)
        return
    if count == 0:
        yield Check("gpus", "GPUs visible", V.NOT_AVAILABLE, "not available: NVML sees no GPU")
        return
    yield Check("gpus", "GPUs visible", V.OK, f"{count} GPU(s)", data={"count": count})
    for index in range(count):
        read: dict[str, Any] = {}
        unreadable: dict[str, str] = {}
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
        except Exception as exc:
            yield Check(
                f"gpu:{index}",
                f"GPU {index} readable",
                V.FAILURE,
                f"no handle for GPU {index} ({exc}): this process cannot see it",
                "Check the container's device permissions and CUDA_VISIBLE_DEVICES.",
            )
            continue
        for what, fn, consts in _FIELDS:
            try:
                read[what] = getattr(nvml, fn)(handle, *(getattr(nvml, c) for c in consts))
            except Exception as exc:
                unreadable[what] = str(exc)
        name = _text(read.get("name", "?"))
        memory = read.get("memory")
        total_gib = memory.total / 2**30 if memory is not None else None
        evidence = f"{name}" + (f", {total_gib:.1f} GiB" if total_gib is not None else "")
        must = {"memory", "utilization"}  # what the monitor cannot do without
        if must & set(unreadable):
            verdict, fix = V.FAILURE, "Update the driver; check the GPU with nvidia-smi -q."
        elif unreadable:
            verdict, fix = V.WARNING, "Some fields are not supported on this GPU or driver."
        else:
            verdict, fix = V.OK, None
        if unreadable:
            evidence += "; unreadable: " + ", ".join(f"{k} ({v})" for k, v in unreadable.items())
        else:
            evidence += "; every field the monitor reads is readable"
        yield Check(
            f"gpu:{index}",
            f"GPU {index} readable",
            verdict,
            evidence,
            fix,
            {
                "name": name,
                "memory_total_bytes": memory.total if memory else None,
                "unreadable": unreadable,
            },
        )


def torch_checks(
    torch: Any = None, *, driver_cuda: str | None = None, nvml_gpus: int = 0
) -> Iterator[Check]:
    """torch installed, a CUDA build, CUDA available, and its CUDA not newer than the driver's.

    Args:
        torch: the torch module or a stand-in; None imports it.
        driver_cuda: the newest CUDA the driver supports ("12.8"), from NVML, if known.
        nvml_gpus: GPUs NVML sees: CUDA unusable with GPUs present is a failure, without
            any (a CUDA build of torch on a CPU host, pip's default on Linux) it is not.
    """
    if torch is None:
        torch, why = _import("torch")
        if torch is None:
            yield Check(
                "torch",
                "PyTorch installed",
                V.NOT_AVAILABLE,
                f"not available: {why}; exact GPU memory peaks need torch",
                "pip install torch (the CUDA build for your driver: see pytorch.org).",
            )
            return
    version = str(getattr(torch, "__version__", "?"))
    yield Check("torch", "PyTorch installed", V.OK, f"torch {version}", data={"version": version})
    built = getattr(getattr(torch, "version", None), "cuda", None)
    if not built:
        yield Check(
            "torch_cuda_build",
            "PyTorch built with CUDA",
            V.NOT_AVAILABLE,
            f"not available: torch {version} is a CPU-only build",
            "For a GPU install the CUDA build: pip install torch --index-url "
            "https://download.pytorch.org/whl/cu128 (pick the CUDA your driver supports).",
        )
        return
    yield Check(
        "torch_cuda_build",
        "PyTorch built with CUDA",
        V.OK,
        f"built for CUDA {built}",
        data={"cuda": built},
    )
    try:
        available = bool(torch.cuda.is_available())
        count = int(torch.cuda.device_count()) if available else 0
    except Exception as exc:
        available, count = False, 0
        reason = str(exc)
    else:
        reason = "torch.cuda.is_available() is False"
    if available:
        names = []
        for i in range(count):
            try:
                names.append(str(torch.cuda.get_device_name(i)))
            except Exception:
                names.append("?")
        yield Check(
            "torch_cuda_available",
            "CUDA available to PyTorch",
            V.OK,
            f"{count} device(s): {', '.join(names)}",
            data={"devices": names},
        )
    elif not nvml_gpus:
        yield Check(
            "torch_cuda_available",
            "CUDA available to PyTorch",
            V.NOT_AVAILABLE,
            f"not available: torch has CUDA {built} and this host shows no GPU ({reason})",
        )
    else:
        yield Check(
            "torch_cuda_available",
            "CUDA available to PyTorch",
            V.FAILURE,
            f"torch has CUDA {built} but no device is usable: {reason}",
            "Check the driver (nvidia-smi), CUDA_VISIBLE_DEVICES, and that the driver supports "
            f"CUDA {built}.",
        )
    if driver_cuda is None:
        return
    if _version(built) > _version(driver_cuda):
        yield Check(
            "torch_cuda_driver",
            "PyTorch's CUDA against the driver",
            V.FAILURE,
            f"torch is built for CUDA {built}, the driver supports up to CUDA {driver_cuda}",
            f"Upgrade the NVIDIA driver, or install a torch built for CUDA {driver_cuda} or older.",
            {"torch_cuda": built, "driver_cuda": driver_cuda},
        )
    else:
        yield Check(
            "torch_cuda_driver",
            "PyTorch's CUDA against the driver",
            V.OK,
            f"torch's CUDA {built} <= the driver's CUDA {driver_cuda}",
            data={"torch_cuda": built, "driver_cuda": driver_cuda},
        )


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for p in text.split(".")[:2]:
        digits = "".join(ch for ch in p if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)
