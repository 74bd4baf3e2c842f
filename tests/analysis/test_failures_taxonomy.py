"""The taxonomy wide enough for real services, on errors that arrive as text (the ingestion
API's error_message) and on real exceptions this machine can raise: a full disk (/dev/full),
NaN cast by numpy, a refused connection, a subprocess killed by SIGKILL, CUDA on a CPU-only
torch. GPU driver texts are torch's and the driver's own wording."""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import warnings

import pytest

from genperf.analysis.failures import classify, diagnose
from genperf.records import ErrorCategory

C = ErrorCategory


def raised(fn) -> BaseException:  # type: ignore[no-untyped-def]
    try:
        fn()
    except BaseException as exc:  # the real exception
        return exc
    pytest.fail("expected the call to raise")


# --- real exceptions ---------------------------------------------------------------------------


def test_a_full_disk_while_saving_the_output() -> None:
    def save() -> None:
        with open("/dev/full", "wb") as f:  # the kernel's always-full device
            f.write(b"\0" * 65536)
            f.flush()

    exc = raised(save)
    d = diagnose(exc, "save")
    assert (d.category, d.cause, d.phase) == (C.STORAGE_ERROR, "disk_full", "save_output")
    assert "output volume is full" in d.suggestions[0]
    # the same failure as text through the ingestion API, while loading weights
    d = diagnose(f"OSError: {exc}", "model_load")
    assert (d.category, d.cause) == (C.STORAGE_ERROR, "disk_full")
    assert "HF_HOME" in d.suggestions[0]


def test_an_io_error_reading_weights() -> None:
    exc = OSError(errno.EIO, os.strerror(errno.EIO), "/models/wan/transformer/x.safetensors")
    d = diagnose(exc, "model_load")
    assert (d.category, d.cause) == (C.STORAGE_ERROR, "io_error")
    assert "smartctl" in d.suggestions[0]
    ro = OSError(errno.EROFS, os.strerror(errno.EROFS), "/outputs/v.mp4")
    assert classify(ro, "save_output")[:2] == (C.STORAGE_ERROR, "io_error")


def test_nan_output_cast_by_numpy() -> None:
    np = pytest.importorskip("numpy")

    def to_uint8() -> None:  # what diffusers' numpy_to_pil does to a NaN frame
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            (np.array([np.nan, 0.5]) * 255).round().astype("uint8")

    exc = raised(to_uint8)
    d = diagnose(exc, "vae_decode")
    assert (d.category, d.cause) == (C.NUMERICAL_ERROR, "nan_output")
    assert "float32" in d.suggestions[0] and "fp16" in d.suggestions[0]
    assert classify("VAE output is all black: 81 of 81 frames are zero")[0] is C.NUMERICAL_ERROR
    assert classify("NaN detected in latents after step 12", "denoise")[0] is C.NUMERICAL_ERROR
    # a fp32 pipeline gets no advice to run the VAE in fp32
    fp32 = diagnose(exc, "vae_decode", applied=["dtype:fp32"])
    assert not any("float32" in s for s in fp32.suggestions)


def test_a_refused_connection_while_downloading() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    exc = raised(lambda: socket.create_connection(("127.0.0.1", port), timeout=5))
    d = diagnose(exc, "model_load")
    assert (d.category, d.cause) == (C.NETWORK_ERROR, "connection")
    assert "HF_HUB_OFFLINE" in d.suggestions[0]
    hub = (
        "requests.exceptions.ConnectionError: HTTPSConnectionPool(host='huggingface.co', "
        "port=443): Max retries exceeded with url: /api/models/Wan-AI/Wan2.2-T2V-A14B-Diffusers "
        "(Caused by NewConnectionError('<urllib3.connection.HTTPSConnection object>: Failed to "
        "establish a new connection: [Errno -3] Temporary failure in name resolution'))"
    )
    assert classify(hub, "model_load")[:2] == (C.NETWORK_ERROR, "connection")
    assert diagnose(hub, "upload").suggestions[0].startswith("Uploading the output failed")


def test_a_process_killed_by_sigkill_is_the_oom_killer() -> None:
    cmd = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"]
    exc = raised(lambda: subprocess.run(cmd, check=True))
    assert isinstance(exc, subprocess.CalledProcessError) and exc.returncode == -signal.SIGKILL
    d = diagnose(str(exc), "denoise")  # "... died with <Signals.SIGKILL: 9>."
    assert (d.category, d.cause) == (C.OUT_OF_MEMORY_HOST, "oom_killer")
    assert "dmesg" in d.suggestions[0]
    isolated = "the worker subprocess was killed by SIGKILL (exit code 137)"
    assert diagnose(isolated, "model_load").cause == "oom_killer"
    assert "memory-mapped" in diagnose(isolated, "model_load").suggestions[0]


def test_cuda_on_a_cpu_only_torch() -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this torch has CUDA")
    exc = raised(lambda: torch.zeros(1, device="cuda"))
    d = diagnose(exc)
    assert (d.category, d.cause) == (C.CUDA_SETUP_ERROR, "no_cuda")
    assert "CUDA build of torch" in d.suggestions[0]


def test_a_timeout_while_saving() -> None:
    exc = raised(lambda: subprocess.run(["sleep", "5"], check=False, timeout=0.05))
    d = diagnose(exc, "save_video")
    assert (d.category, d.phase) == (C.TIMEOUT, "save_output")
    assert "local disk first" in d.suggestions[0]


# --- texts as services report them (torch's and the driver's wording) ---------------------------

TEXTS = [
    (
        "RuntimeError: CUDA error: an illegal memory access was encountered\nCUDA kernel errors "
        "might be asynchronously reported at some other API call, so the stacktrace below might "
        "be incorrect.",
        C.GPU_FAULT,
        "illegal_memory_access",
    ),
    ("RuntimeError: CUDA error: unspecified launch failure", C.GPU_FAULT, "launch_failure"),
    (
        "RuntimeError: CUDA error: uncorrectable ECC error encountered",
        C.GPU_FAULT,
        "ecc_error",
    ),
    (
        "NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, GPU has fallen off the bus.",
        C.GPU_FAULT,
        "xid",
    ),
    (
        "RuntimeError: The NVIDIA driver on your system is too old (found version 11040). "
        "Please update your GPU driver by downloading and installing a new version from the "
        "URL: http://www.nvidia.com/Download/index.aspx",
        C.CUDA_SETUP_ERROR,
        "driver_mismatch",
    ),
    (
        "RuntimeError: CUDA error: no kernel image is available for execution on the device",
        C.CUDA_SETUP_ERROR,
        "driver_mismatch",
    ),
    (
        "RuntimeError: Found no NVIDIA driver on your system. Please check that you have an "
        "NVIDIA GPU and installed a driver from http://www.nvidia.com/Download/index.aspx",
        C.CUDA_SETUP_ERROR,
        "no_cuda",
    ),
    (
        "Memory cgroup out of memory: Killed process 4242 (python)",
        C.OUT_OF_MEMORY_HOST,
        "oom_killer",
    ),
    ("worker exited unexpectedly: exitcode=-9", C.OUT_OF_MEMORY_HOST, "oom_killer"),
    ("OSError: [Errno 28] No space left on device: '/outputs/x.mp4'", C.STORAGE_ERROR, "disk_full"),
    ("OSError: [Errno 122] Disk quota exceeded", C.STORAGE_ERROR, "disk_full"),
    ("Bus error (core dumped)", C.STORAGE_ERROR, "io_error"),
    ("ConnectionResetError: [Errno 104] Connection reset by peer", C.NETWORK_ERROR, "connection"),
    (
        "ssl.SSLError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed",
        C.NETWORK_ERROR,
        "connection",
    ),
]


@pytest.mark.parametrize(("text", "category", "cause"), TEXTS)
def test_text_only_errors_are_classified(text: str, category: ErrorCategory, cause: str) -> None:
    d = diagnose(text)
    assert (d.category, d.cause) == (category, cause)
    assert d.suggestions


def test_a_cuda_out_of_memory_is_still_gpu_memory_not_a_fault() -> None:
    text = "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"
    assert classify(text)[0] is C.OUT_OF_MEMORY_GPU


def test_gpu_fault_advice_tells_to_restart_the_worker() -> None:
    d = diagnose("CUDA error: an illegal memory access was encountered", "denoise")
    assert any("restart the worker" in s.lower() for s in d.suggestions)
    compiled = diagnose(
        "CUDA error: an illegal memory access was encountered", "denoise", applied=["torch_compile"]
    )
    assert len(compiled.suggestions) == len(d.suggestions) - 1
