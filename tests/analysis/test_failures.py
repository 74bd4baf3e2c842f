"""Failure diagnosis on exceptions built here: classes, messages, chains, phase advice.

The same classifier is checked on exceptions raised by real torch/diffusers code in
test_failures_real.py.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import subprocess

import pytest

from genperf import optimizations as opt
from genperf.analysis.failures import (
    Diagnosis,
    FailureCount,
    classify,
    count_failures,
    diagnose,
    normalize_phase,
    suggestions_for,
    summarize_failures,
)
from genperf.records import ErrorCategory, TaskStatus
from genperf.testing import make_task

C = ErrorCategory


class OutOfMemoryError(RuntimeError):
    """Stands in for torch.OutOfMemoryError by name, as the classifier never imports torch."""


class SafetensorError(Exception):
    """Named like safetensors_rust.SafetensorError."""


def chained(outer: BaseException, cause: BaseException) -> BaseException:
    try:
        try:
            raise cause
        except BaseException as inner:
            raise outer from inner
    except BaseException as exc:
        return exc


CASES = [
    # (error, phase, expected category)
    (
        OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        "denoise",
        C.OUT_OF_MEMORY_GPU,
    ),
    (RuntimeError("CUDA error: out of memory"), None, C.OUT_OF_MEMORY_GPU),
    (RuntimeError("HIP out of memory. Tried to allocate 20.00 MiB"), None, C.OUT_OF_MEMORY_GPU),
    (
        RuntimeError("MPS backend out of memory (MPS allocated: 17.00 GB)"),
        None,
        C.OUT_OF_MEMORY_GPU,
    ),
    (
        RuntimeError("CUBLAS_STATUS_ALLOC_FAILED when calling cublasCreate(handle)"),
        None,
        C.OUT_OF_MEMORY_GPU,
    ),
    (
        RuntimeError(
            "DefaultCPUAllocator: can't allocate memory: you tried to allocate 32348160 bytes"
        ),
        "vae_decode",
        C.OUT_OF_MEMORY_HOST,
    ),
    (MemoryError(), "model_load", C.OUT_OF_MEMORY_HOST),
    (OSError(12, "Cannot allocate memory"), None, C.OUT_OF_MEMORY_HOST),
    (RuntimeError("Unable to allocate 3.00 GiB for an array"), None, C.OUT_OF_MEMORY_HOST),
    (RuntimeError("could not create a primitive"), "vae_decode", C.OUT_OF_MEMORY_HOST),
    (RuntimeError("could not create a primitive descriptor for a convolution"), None, C.UNKNOWN),
    ("worker exited with exit code 137 (oom-kill)", None, C.OUT_OF_MEMORY_HOST),
    (TimeoutError("generation took longer than 900 s"), "denoise", C.TIMEOUT),
    (asyncio.TimeoutError(), None, C.TIMEOUT),  # noqa: UP041 - the alias is what asyncio raises
    (concurrent.futures.TimeoutError(), None, C.TIMEOUT),
    (subprocess.TimeoutExpired("x", 5), None, C.TIMEOUT),
    (KeyboardInterrupt(), "denoise", C.INTERRUPTED),
    (asyncio.CancelledError(), None, C.INTERRUPTED),
    (SystemExit(1), None, C.INTERRUPTED),
    (
        OSError("Error no file named config.json found in directory /models/wan/transformer."),
        "model_load",
        C.MODEL_LOAD_ERROR,
    ),
    (
        OSError("Unable to load weights from checkpoint file for '/m/x.safetensors'"),
        None,
        C.MODEL_LOAD_ERROR,
    ),
    (
        SafetensorError("Error while deserializing header: MetadataIncompleteBuffer"),
        None,
        C.MODEL_LOAD_ERROR,
    ),
    (
        ValueError(
            "Cannot load because blocks.0.attn1.norm_k.weight expected shape [48], but got [24]"
        ),
        "model_load",
        C.MODEL_LOAD_ERROR,
    ),
    (
        RuntimeError("Error(s) in loading state_dict for UNet: size mismatch for conv.weight"),
        None,
        C.MODEL_LOAD_ERROR,
    ),
    (FileNotFoundError(2, "No such file or directory"), "model_load", C.MODEL_LOAD_ERROR),
    (
        RuntimeError("mat1 and mat2 shapes cannot be multiplied (64x7 and 32x64)"),
        "denoise",
        C.INVALID_INPUT,
    ),
    (
        ValueError(
            "`num_inference_steps`: 5000 cannot be larger than `self.config.train_timesteps`: 1000"
        ),
        None,
        C.INVALID_INPUT,
    ),
    (
        ValueError("`height` and `width` have to be divisible by 16 but are 100 and 64."),
        None,
        C.INVALID_INPUT,
    ),
    (ValueError("something odd about the prompt"), "text_encode", C.INVALID_INPUT),
    (ValueError("something odd"), "model_load", C.MODEL_LOAD_ERROR),
    (RuntimeError("Expected all tensors to be on the same device"), "denoise", C.UNKNOWN),
    (ZeroDivisionError("division by zero"), None, C.UNKNOWN),
    (FileNotFoundError(2, "No such file or directory"), "denoise", C.UNKNOWN),
    (None, None, C.UNKNOWN),
    ("", None, C.UNKNOWN),
]


@pytest.mark.parametrize(
    ("error", "phase", "expected"), CASES, ids=[repr(c[0])[:60] for c in CASES]
)
def test_classification(
    error: BaseException | str | None, phase: str | None, expected: ErrorCategory
) -> None:
    assert diagnose(error, phase).category is expected


@pytest.mark.parametrize(
    ("error", "phase", "expected"), [c for c in CASES if isinstance(c[0], BaseException)]
)
def test_stored_message_classifies_like_the_exception(
    error: BaseException, phase: str | None, expected: ErrorCategory
) -> None:
    """The monitor stores "Type: message"; a diagnosis made later from it agrees."""
    text = f"{type(error).__name__}: {error}"
    assert diagnose(text, phase).category is expected


def test_the_cause_chain_is_read() -> None:
    err = chained(RuntimeError("generation failed"), OutOfMemoryError("CUDA out of memory"))
    d = diagnose(err, "denoise")
    assert d.category is C.OUT_OF_MEMORY_GPU
    assert d.evidence == "OutOfMemoryError"


def _decode_failure() -> None:
    try:
        raise MemoryError
    except MemoryError:
        raise RuntimeError("while decoding") from None


def test_the_context_chain_is_read() -> None:
    with pytest.raises(RuntimeError) as info:
        _decode_failure()
    assert diagnose(info.value, "vae_decode").category is C.OUT_OF_MEMORY_HOST


def test_exception_groups_are_read() -> None:
    group = BaseExceptionGroup("workers", [ValueError("x"), OutOfMemoryError("CUDA out of memory")])
    assert diagnose(group).category is C.OUT_OF_MEMORY_GPU


def test_an_oom_behind_a_load_error_is_an_oom() -> None:
    err = chained(OSError("Unable to load weights from checkpoint file"), MemoryError())
    assert diagnose(err, "model_load").category is C.OUT_OF_MEMORY_HOST


def test_a_timeout_raised_from_a_cancellation_is_a_timeout() -> None:
    """asyncio.wait_for raises TimeoutError from the CancelledError of the task it cancels."""
    err = chained(TimeoutError(), asyncio.CancelledError())
    assert diagnose(err).category is C.TIMEOUT


def test_a_cyclic_chain_ends() -> None:
    a, b = RuntimeError("a"), RuntimeError("b")
    a.__context__, b.__context__ = b, a
    assert diagnose(a).category is C.UNKNOWN


def test_a_broken_str_does_not_break_diagnosis() -> None:
    class Weird(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert diagnose(Weird()).category is C.UNKNOWN


def test_the_callers_category_overrides() -> None:
    d = diagnose(RuntimeError("CUDA out of memory"), "denoise", category="timeout")
    assert d.category is C.TIMEOUT
    assert d.suggestions == suggestions_for(C.TIMEOUT, "denoise")


def test_an_unknown_override_is_ignored() -> None:
    assert diagnose(MemoryError(), category="bogus").category is C.OUT_OF_MEMORY_HOST


def test_the_override_may_be_the_enum() -> None:
    assert diagnose(None, category=C.INTERRUPTED).category is C.INTERRUPTED


# --- advice, by category and phase -------------------------------------------------------


def first(d: Diagnosis) -> str:
    return d.suggestions[0].lower()


def test_gpu_oom_in_vae_decode_asks_for_tiling_first_not_a_smaller_model() -> None:
    d = diagnose(OutOfMemoryError("CUDA out of memory"), "vae_decode")
    assert "tiling" in first(d)
    assert "slicing" in d.suggestions[1].lower()
    assert not any("more memory" in s or "smaller model" in s for s in d.suggestions)


def test_gpu_oom_in_denoise_asks_for_offload_quantisation_frames_and_expandable_segments() -> None:
    d = diagnose(OutOfMemoryError("CUDA out of memory"), "denoise")
    text = " ".join(d.suggestions)
    assert "offload" in first(d)
    for word in ("Quantise", "expandable_segments", "fewer frames"):
        assert word in text


def test_host_oom_in_model_load_asks_for_mmap_and_low_cpu_mem_usage_first() -> None:
    d = diagnose(MemoryError(), "model_load")
    assert "low_cpu_mem_usage" in d.suggestions[0]
    assert any("add ram" in s.lower() for s in d.suggestions)


def test_host_oom_in_vae_decode_asks_for_tiling_first() -> None:
    d = diagnose(RuntimeError("DefaultCPUAllocator: can't allocate memory"), "vae_decode")
    assert "tiling" in first(d)


def test_a_phase_alias_is_understood() -> None:
    assert normalize_phase("generate/decode") == "vae_decode"
    assert normalize_phase(" Model-Load ") == "model_load"
    assert diagnose(MemoryError(), "decode").phase == "vae_decode"


def test_the_phase_of_a_load_error_is_inferred() -> None:
    d = diagnose(OSError("Error no file named config.json found in directory /x"))
    assert d.phase == "model_load"
    assert d.cause == "missing_files"
    assert "config.json" in first(d)


@pytest.mark.parametrize(
    ("message", "cause", "word"),
    [
        ("Error no file named config.json found", "missing_files", "download"),
        ("Unable to load weights from checkpoint file", "corrupt_weights", "truncated"),
        ("expected shape [48], but got [24]", "config_mismatch", "config.json"),
    ],
)
def test_load_errors_get_advice_for_their_cause(message: str, cause: str, word: str) -> None:
    d = diagnose(OSError(message), "model_load")
    assert (d.category, d.cause) == (C.MODEL_LOAD_ERROR, cause)
    assert word in first(d)


def test_advice_for_an_applied_optimisation_is_left_out() -> None:
    err = OutOfMemoryError("CUDA out of memory")
    plain = diagnose(err, "vae_decode")
    tiled = diagnose(err, "vae_decode", applied=[opt.VAE_TILING])
    assert len(tiled.suggestions) == len(plain.suggestions) - 1
    assert "slicing" in first(tiled)
    both = diagnose(err, "denoise", applied=["offload:model", "quantization:int8", "dtype:bf16"])
    assert not any("enable_model_cpu_offload" in s for s in both.suggestions)
    assert not any(s.startswith("Quantise") for s in both.suggestions)


@pytest.mark.parametrize("category", list(ErrorCategory))
@pytest.mark.parametrize("phase", [None, "model_load", "text_encode", "denoise", "vae_decode", "x"])
def test_every_category_and_phase_has_advice(category: ErrorCategory, phase: str | None) -> None:
    assert suggestions_for(category, phase)


def test_classify_reports_the_evidence() -> None:
    assert classify("RuntimeError: mat1 and mat2 shapes cannot be multiplied") == (
        C.INVALID_INPUT,
        "input_shape",
        "mat1 and mat2 shapes cannot be multiplied",
    )


# --- failures of a window ------------------------------------------------------------------


def test_failures_are_counted_by_category_phase_and_optimisations() -> None:
    tasks = [
        make_task(
            status=TaskStatus.FAILED, error_category="out_of_memory_gpu", failed_phase="vae_decode"
        ),
        make_task(
            status=TaskStatus.FAILED, error_category="out_of_memory_gpu", failed_phase="decode"
        ),
        make_task(status=TaskStatus.INTERRUPTED),
        make_task(status=TaskStatus.FAILED, error_category="nonsense"),
        make_task(),
    ]
    assert count_failures(tasks) == (
        FailureCount(C.OUT_OF_MEMORY_GPU, "vae_decode", ("dtype:bf16",), 2),
        FailureCount(C.INTERRUPTED, None, ("dtype:bf16",), 1),
        FailureCount(C.UNKNOWN, None, ("dtype:bf16",), 1),
    )


def test_failure_summary_gives_advice_per_group_without_applied_optimisations() -> None:
    rows = [
        FailureCount(C.OUT_OF_MEMORY_GPU, "vae_decode", ("vae_tiling",), 3),
        FailureCount(C.OUT_OF_MEMORY_GPU, "vae_decode", ("dtype:bf16", "vae_tiling"), 1),
        FailureCount(C.TIMEOUT, "denoise", (), 1),
    ]
    s = summarize_failures(rows, task_count=10)
    assert s.failed == 5
    assert s.failure_rate == 0.5
    assert dict(s.by_category) == {"out_of_memory_gpu": 4, "timeout": 1}
    top = s.groups[0]
    assert (top.category, top.phase, top.count, top.share_of_tasks) == (
        C.OUT_OF_MEMORY_GPU,
        "vae_decode",
        4,
        0.4,
    )
    assert "slicing" in top.suggestions[0]  # tiling is on in every one of them
    assert summarize_failures([], 0).failure_rate is None
