"""Failure diagnosis: from a real exception (or its stored message) to a category and advice.

Classification never imports torch, diffusers or safetensors: it compares the class names of
every exception in the chain (``__cause__`` and ``__context__``, and the members of exception
groups) and their messages against :data:`RULES`, one table, first match wins. Its order is
the priority: an OOM that surfaces as a model-load error is an OOM; a ``TimeoutError`` raised
from a ``CancelledError`` (``asyncio.wait_for``) is a timeout.

The advice (advice.py) depends on the category, what caused it and the phase: an OOM in
``vae_decode`` asks for VAE tiling first, not a smaller model. Advice for an optimisation
already applied (``applied``, the task's ``optimizations_applied`` tokens) is left out.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from genperf import optimizations as opt
from genperf.analysis.advice import suggestions_for
from genperf.records import ErrorCategory, JsonFields, TaskRecord, TaskStatus
from genperf.tally import FailureRow

_MAX_MESSAGE = 4000
_MAX_CHAIN = 16


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """Why a generation failed and what to do about it.

    Attributes:
        category: the failure class (drives the advice and the failure breakdown).
        suggestions: concrete recovery steps, most effective first.
        phase: the phase the advice is for (given, or inferred from the error), or None.
        cause: a finer slug of what matched (``"corrupt_weights"``, ``"gpu_allocator"``), or None.
        evidence: the class name or message fragment that decided it, or None.
    """

    category: ErrorCategory
    suggestions: tuple[str, ...]
    phase: str | None = None
    cause: str | None = None
    evidence: str | None = None


@dataclass(frozen=True, slots=True)
class _Rule:
    category: ErrorCategory
    cause: str
    names: frozenset[str] = frozenset()  # exception class names anywhere in the MRO
    pattern: re.Pattern[str] | None = None  # searched in the message
    phases: frozenset[str] | None = None  # only in these phases (None: any)
    outer_only: bool = False  # only the raised exception, not its causes


def _rx(*alternatives: str) -> re.Pattern[str]:
    return re.compile("|".join(alternatives), re.IGNORECASE)


_C = ErrorCategory
_LOAD = frozenset({"model_load"})

# First match wins; the order is the priority.
RULES: tuple[_Rule, ...] = (
    _Rule(
        _C.OUT_OF_MEMORY_HOST,
        "host_allocator",
        pattern=_rx(r"DefaultCPUAllocator", r"alloc_cpu\.cpp"),
    ),
    _Rule(
        _C.OUT_OF_MEMORY_GPU,
        "gpu_allocator",
        names=frozenset({"OutOfMemoryError"}),
        pattern=_rx(
            r"(CUDA|HIP|MPS backend|XPU) out of memory",
            r"CUDA error: out of memory",
            r"CUBLAS_STATUS_ALLOC_FAILED",
            r"CUDNN_STATUS_ALLOC_FAILED",
            r"CUDACachingAllocator",
            r"GPU \d+ has a total capacity",
            r"out of memory on device",
            r"RESOURCE_EXHAUSTED",
        ),
    ),
    _Rule(
        _C.OUT_OF_MEMORY_HOST,
        "oom_killer",  # the kernel killed the process: it never saw an exception
        pattern=_rx(
            r"Memory cgroup out of memory",
            r"oom[-_ ]?kill",
            r"Out of memory: Killed process",
            r"(exit|return) ?(code|status)[ =:]*(137|-9)\b",
            r"killed by signal 9\b",
            r"\bsignal 9 \(SIGKILL\)",
            r"\bSIGKILL\b",
            r"died with <Signals\.SIGKILL: 9>",  # subprocess.CalledProcessError
            r"exitcode[ =:]*-9\b",  # multiprocessing
        ),
    ),
    _Rule(
        _C.OUT_OF_MEMORY_HOST,
        "host_memory",
        names=frozenset({"MemoryError"}),
        pattern=_rx(
            r"can't allocate memory",
            r"cannot allocate memory",
            r"\[Errno 12\]",
            r"std::bad_alloc",
            r"Unable to allocate [\d.]+ ?[KMGT]i?B",
            # oneDNN (torch's CPU kernels) when the buffers of a convolution cannot be had:
            # seen under an address-space limit in a real VAE decode. Not "... primitive
            # descriptor", which is an unsupported shape.
            r"could not create a primitive(?! descriptor)",
        ),
    ),
    # GPU faults the driver reports (dmesg shows an Xid): the process's CUDA context is dead.
    _Rule(
        _C.GPU_FAULT,
        "ecc_error",
        pattern=_rx(r"uncorrectable ECC error", r"\bECC error", r"cudaErrorECCUncorrectable"),
    ),
    _Rule(
        _C.GPU_FAULT,
        "illegal_memory_access",
        pattern=_rx(
            r"illegal memory access",
            r"cudaErrorIllegalAddress",
            r"CUDA_ERROR_ILLEGAL_ADDRESS",
            r"misaligned address",
            r"illegal instruction was encountered",
        ),
    ),
    _Rule(
        _C.GPU_FAULT,
        "launch_failure",
        pattern=_rx(
            r"unspecified launch failure",
            r"cudaErrorLaunchFailure",
            r"CUDA_ERROR_LAUNCH_FAILED",
            r"the launch timed out and was terminated",
        ),
    ),
    _Rule(
        _C.GPU_FAULT,
        "xid",
        pattern=_rx(
            r"\bNVRM: Xid\b",
            r"\bXid\b.{0,40}\b\d{2,3}\b",
            r"GPU has fallen off the bus",
            r"CUDA error: unknown error",
        ),
    ),
    # torch's CUDA against the driver, or no usable GPU at all.
    _Rule(
        _C.CUDA_SETUP_ERROR,
        "driver_mismatch",
        pattern=_rx(
            r"NVIDIA driver on your system is too old",
            r"CUDA driver version is insufficient for CUDA runtime version",
            r"no kernel image is available for execution on the device",
            r"forward compatibility was attempted on non supported HW",
            r"cudaErrorInsufficientDriver",
            r"(is|are) not compatible with the current PyTorch installation",
        ),
    ),
    _Rule(
        _C.CUDA_SETUP_ERROR,
        "no_cuda",
        pattern=_rx(
            r"Found no NVIDIA driver on your system",
            r"Torch not compiled with CUDA enabled",
            r"no CUDA-capable device is detected",
            r"CUDA driver initialization failed",
        ),
    ),
    _Rule(
        _C.TIMEOUT,
        "timeout",
        names=frozenset(
            {"TimeoutError", "TimeoutExpired", "ReadTimeout", "ConnectTimeout", "Timeout"}
        ),
        pattern=_rx(r"\btimed? ?out\b", r"deadline exceeded", r"\btimeout\b"),
    ),
    _Rule(
        _C.STORAGE_ERROR,
        "disk_full",
        pattern=_rx(
            r"No space left on device",
            r"\[Errno 28\]",
            r"\bENOSPC\b",
            r"Disk quota exceeded",
            r"\[Errno 122\]",
        ),
    ),
    _Rule(
        _C.STORAGE_ERROR,
        "io_error",
        pattern=_rx(
            r"Input/output error",
            r"\[Errno 5\]",
            r"\bEIO\b",
            r"Read-only file system",
            r"\[Errno 30\]",
            r"Stale file handle",
            r"\[Errno 116\]",
            r"\bBus error\b",
            r"\bSIGBUS\b",
        ),
    ),
    _Rule(
        _C.INTERRUPTED,
        "interrupted",
        names=frozenset({"KeyboardInterrupt", "CancelledError", "SystemExit", "InterruptedError"}),
        pattern=_rx(
            r"KeyboardInterrupt", r"\bcancell?ed\b", r"\binterrupted\b", r"\bSIG(TERM|INT)\b"
        ),
    ),
    _Rule(
        _C.MODEL_LOAD_ERROR,
        "corrupt_weights",
        names=frozenset({"SafetensorError", "UnpicklingError", "BadZipFile"}),
        pattern=_rx(
            r"Unable to load weights from checkpoint",
            r"Error while deserializing header",
            r"HeaderTooLarge",
            r"HeaderTooSmall",
            r"MetadataIncompleteBuffer",
            r"InvalidHeader",
            r"incomplete metadata",
            r"PytorchStreamReader failed",
            r"failed finding central directory",
            r"invalid load key",
        ),
    ),
    _Rule(
        _C.MODEL_LOAD_ERROR,
        "config_mismatch",
        pattern=_rx(
            r"expected shape .*but got",
            r"size mismatch for",
            r"Error\(s\) in loading state_dict",
            r"Missing key\(s\) in state_dict",
            r"Unexpected key\(s\) in state_dict",
            r"Cannot load\s+because",
            r"is not a valid JSON file",
        ),
    ),
    _Rule(
        _C.MODEL_LOAD_ERROR,
        "missing_files",
        names=frozenset(
            {
                "EntryNotFoundError",
                "LocalEntryNotFoundError",
                "RepositoryNotFoundError",
                "RevisionNotFoundError",
                "GatedRepoError",
                "OfflineModeIsEnabled",
                "HFValidationError",
            }
        ),
        pattern=_rx(
            r"no file named",
            r"does not appear to have (a )?files? named",
            r"is not a valid model identifier",
            r"is not a local folder",
            r"Can't load (the )?(tokenizer|config|model|weights)",
            r"couldn't connect to",
        ),
    ),
    _Rule(
        _C.NETWORK_ERROR,
        "connection",
        names=frozenset(
            {
                "ConnectionError",
                "ConnectionResetError",
                "ConnectionRefusedError",
                "ConnectionAbortedError",
                "RemoteDisconnected",
                "ChunkedEncodingError",
                "IncompleteRead",
                "ProtocolError",
                "SSLError",
                "ProxyError",
                "gaierror",
                "NewConnectionError",
                "ConnectError",
                "RemoteProtocolError",
            }
        ),
        pattern=_rx(
            r"Max retries exceeded",
            r"Connection (reset|refused|aborted)",
            r"Temporary failure in name resolution",
            r"Name or service not known",
            r"Network is unreachable",
            r"No route to host",
            r"CERTIFICATE_VERIFY_FAILED",
            r"IncompleteRead",
            r"\b(502 Bad Gateway|503 Service Unavailable|504 Gateway Time-?out)\b",
        ),
    ),
    _Rule(
        _C.MODEL_LOAD_ERROR,
        "missing_files",
        names=frozenset({"FileNotFoundError", "NotADirectoryError", "IsADirectoryError"}),
        pattern=_rx(r"No such file or directory"),
        phases=_LOAD,
    ),
    _Rule(
        _C.NUMERICAL_ERROR,
        "nan_output",
        pattern=_rx(
            r"invalid value encountered in cast",
            r"\bNaNs?\b.{0,60}\b(output|latents?|image|frame|video|decode|produced|detected)",
            r"\b(output|latents?|image|frames?|video)\b.{0,60}\b(NaN|nan|inf)s?\b",
            r"\b(all[- ]?)?black (image|frame|video|output)s?\b",
            r"\boutput is (all )?black\b",
        ),
    ),
    _Rule(
        _C.INVALID_INPUT,
        "input_shape",
        pattern=_rx(
            r"mat1 and mat2 shapes cannot be multiplied",
            r"is invalid for input of size",
            r"must match the size of tensor",
            r"Sizes of tensors must match",
            r"must have the same shape",
        ),
    ),
    _Rule(
        _C.INVALID_INPUT,
        "input_value",
        names=frozenset({"ValidationError"}),
        pattern=_rx(
            r"num_inference_steps.*cannot be larger",
            r"cannot be larger than",
            r"ha(ve|s) to be divisible by",
            r"must be divisible by",
            r"Cannot forward both",
            r"Provide either `?prompt",
            r"has to be of type",
        ),
    ),
    # Fallbacks on the raised exception's class alone.
    _Rule(
        _C.MODEL_LOAD_ERROR,
        "load_failed",
        names=frozenset({"OSError", "ValueError"}),
        phases=_LOAD,
        outer_only=True,
    ),
    _Rule(
        _C.INVALID_INPUT,
        "rejected_input",
        names=frozenset({"ValueError"}),
        phases=frozenset({"text_encode", "denoise", "vae_decode", "validate", "preprocess"}),
        outer_only=True,
    ),
)

# Phase names people and tools use for the standard phases.
_PHASE_ALIASES = {
    "load": "model_load",
    "loading": "model_load",
    "from_pretrained": "model_load",
    "encode": "text_encode",
    "text_encoding": "text_encode",
    "encode_prompt": "text_encode",
    "denoising": "denoise",
    "sampling": "denoise",
    "decode": "vae_decode",
    "vae": "vae_decode",
    "generate/decode": "vae_decode",
    "decoding": "vae_decode",
    # writing the result: saving, encoding or uploading the video
    "save": "save_output",
    "saving": "save_output",
    "save_video": "save_output",
    "export": "save_output",
    "export_video": "save_output",
    "write_output": "save_output",
    "upload": "save_output",
    "postprocess": "save_output",
}

_INFERRED_PHASE = {
    "corrupt_weights": "model_load",
    "config_mismatch": "model_load",
    "missing_files": "model_load",
    "driver_mismatch": "model_load",
    "no_cuda": "model_load",
}


def normalize_phase(phase: str | None) -> str | None:
    """Lower-case, ``-``/space to ``_``, common aliases to the standard phase names."""
    if phase is None or not phase.strip():
        return None
    p = phase.strip().lower().replace("-", "_").replace(" ", "_")
    return _PHASE_ALIASES.get(p, p)


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The exception, then its causes and contexts (and group members), each once."""
    seen: set[int] = set()
    todo = [error]
    while todo and len(seen) < _MAX_CHAIN:
        exc = todo.pop(0)
        if id(exc) in seen:
            continue
        seen.add(id(exc))
        yield exc
        if isinstance(exc, BaseExceptionGroup):
            todo.extend(exc.exceptions)
        if exc.__cause__ is not None:
            todo.append(exc.__cause__)
        if exc.__context__ is not None:
            todo.append(exc.__context__)


def _class_names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _message(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # a broken __str__ must not break diagnosis
        text = ""
    return text[:_MAX_MESSAGE]


def _match(rule: _Rule, names: set[str] | None, message: str) -> str | None:
    """What matched (a class name or a message fragment), or None."""
    if names is not None:
        hit = rule.names & names
        if hit:
            return sorted(hit)[0]
    else:  # a stored message: class names appear in its text, if at all
        for name in sorted(rule.names):
            if re.search(rf"\b{re.escape(name)}\b", message):
                return name
    if rule.pattern is not None and (m := rule.pattern.search(message)):
        return m.group(0)
    return None


def classify(
    error: BaseException | str | None, phase: str | None = None
) -> tuple[ErrorCategory, str | None, str | None]:
    """(category, cause, evidence) for an error; UNKNOWN with no cause when nothing matches."""
    if error is None:
        return ErrorCategory.UNKNOWN, None, None
    phase = normalize_phase(phase)
    if isinstance(error, str):
        links: list[tuple[set[str] | None, str, bool]] = [(None, error[:_MAX_MESSAGE], True)]
    else:
        links = [(_class_names(e), _message(e), i == 0) for i, e in enumerate(_chain(error))]
    for rule in RULES:
        if rule.phases is not None and phase not in rule.phases:
            continue
        for names, message, outer in links:
            if rule.outer_only and not outer:
                continue
            evidence = _match(rule, names, message)
            if evidence is not None:
                return rule.category, rule.cause, evidence
    return ErrorCategory.UNKNOWN, None, None


def _as_category(category: str | ErrorCategory) -> ErrorCategory | None:
    try:
        return ErrorCategory(category)
    except ValueError:
        return None


def diagnose(
    error: BaseException | str | None,
    phase: str | None = None,
    *,
    category: str | None = None,
    applied: Iterable[str] = (),
) -> Diagnosis:
    """Classify a failure and say what to do about it.

    Args:
        error: the exception raised (its whole cause/context chain is read), or a stored error
            message, or None when nothing is known.
        phase: the phase the task failed in (``model_load``, ``text_encode``, ``denoise``,
            ``vae_decode`` or any other name); the advice depends on it.
        category: an :class:`ErrorCategory` value the caller already knows; it overrides the
            classification (an unknown value is ignored). The cause is still read from the error.
        applied: the task's ``optimizations_applied`` tokens; advice to apply them is left out.

    Returns:
        A :class:`Diagnosis`. Never raises.
    """
    found, cause, evidence = classify(error, phase)
    forced = _as_category(category) if category is not None else None
    if forced is not None and forced is not found:
        found, cause = forced, None
    phase_used = normalize_phase(phase) or (_INFERRED_PHASE.get(cause) if cause else None)
    return Diagnosis(
        category=found,
        suggestions=suggestions_for(found, phase_used, cause, applied),
        phase=phase_used,
        cause=cause,
        evidence=evidence,
    )


# --- failures of a window ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FailureCount:
    """How many runs failed with this category, in this phase, with these optimisations."""

    category: ErrorCategory
    phase: str | None
    optimizations: tuple[str, ...]
    count: int


def failure_category(task: TaskRecord) -> ErrorCategory:
    """The task's stored category, INTERRUPTED for an interrupted run, else UNKNOWN."""
    return category_of(task.error_category, task.status)


def category_of(stored: str | None, status: TaskStatus | str) -> ErrorCategory:
    """A stored error_category as an enum (UNKNOWN when unknown); INTERRUPTED when missing on
    an interrupted run."""
    if stored:
        try:
            return ErrorCategory(stored)
        except ValueError:
            return ErrorCategory.UNKNOWN
    if status == TaskStatus.INTERRUPTED:
        return ErrorCategory.INTERRUPTED
    return ErrorCategory.UNKNOWN


FailureKey = tuple[ErrorCategory, str | None, tuple[str, ...]]


def failure_key(task: TaskRecord) -> FailureKey | None:
    """(category, normalised phase, sorted optimisation tokens) of a failed or interrupted run,
    None for any other."""
    if task.status not in (TaskStatus.FAILED, TaskStatus.INTERRUPTED):
        return None
    tokens = tuple(sorted(opt.normalize(task.optimizations_applied)))
    return failure_category(task), normalize_phase(task.failed_phase), tokens


def count_failures(tasks: Iterable[TaskRecord]) -> tuple[FailureCount, ...]:
    """Failed and interrupted runs grouped by (category, phase, optimisation set), most first."""
    counts: Counter[FailureKey] = Counter()
    for t in tasks:
        if (key := failure_key(t)) is not None:
            counts[key] += 1
    return from_counts(counts)


def from_counts(counts: Mapping[FailureKey, int]) -> tuple[FailureCount, ...]:
    """FailureCounts from a key -> count mapping, most first."""
    return merge_failures(FailureCount(c, p, o, n) for (c, p, o), n in counts.items())


def from_rows(rows: Iterable[FailureRow]) -> tuple[FailureCount, ...]:
    """FailureCounts from the rows a store groups (``AggregatingStore``), most first: the
    same names as :func:`failure_key` gives a record."""
    counts: Counter[FailureKey] = Counter()
    for row in rows:
        tokens = tuple(sorted(opt.normalize(row.optimizations)))
        key = (category_of(row.error_category, row.status), normalize_phase(row.failed_phase))
        counts[(*key, tokens)] += row.runs
    return from_counts(counts)


def merge_failures(rows: Iterable[FailureCount]) -> tuple[FailureCount, ...]:
    """Rows with the same key added up, ordered by count (most first), then by key."""
    counts: Counter[FailureKey] = Counter()
    for r in rows:
        counts[(r.category, r.phase, r.optimizations)] += r.count
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0][0], kv[0][1] or "", kv[0][2]))
    return tuple(FailureCount(cat, phase, tokens, n) for (cat, phase, tokens), n in ordered)


@dataclass(frozen=True, slots=True)
class FailureGroup(JsonFields):
    """Failures of one category in one phase, and what to do about them."""

    category: ErrorCategory
    phase: str | None
    count: int
    share_of_tasks: float | None
    suggestions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FailureSummary(JsonFields):
    """The failures of a window: how many, of which kind, where, and the advice for each."""

    failed: int
    failure_rate: float | None
    by_category: Mapping[str, int]
    groups: tuple[FailureGroup, ...]


def summarize_failures(failures: Iterable[FailureCount], task_count: int) -> FailureSummary:
    """Failure counts grouped by category and phase, most first, each with its advice.

    Advice already made moot for every run of a group (its optimisation is applied on all of
    them) is left out.
    """
    rows = tuple(failures)
    by_cat: Counter[str] = Counter()
    groups: dict[tuple[ErrorCategory, str | None], list[FailureCount]] = {}
    for r in rows:
        by_cat[r.category.value] += r.count
        groups.setdefault((r.category, r.phase), []).append(r)
    out = []
    for (cat, phase), members in groups.items():
        applied = frozenset.intersection(*(frozenset(m.optimizations) for m in members))
        n = sum(m.count for m in members)
        out.append(
            FailureGroup(
                category=cat,
                phase=phase,
                count=n,
                share_of_tasks=n / task_count if task_count else None,
                suggestions=suggestions_for(cat, phase, None, applied),
            )
        )
    out.sort(key=lambda g: (-g.count, g.category.value, g.phase or ""))
    failed = sum(by_cat.values())
    return FailureSummary(
        failed=failed,
        failure_rate=failed / task_count if task_count else None,
        by_category=dict(by_cat.most_common()),
        groups=tuple(out),
    )


__all__ = [
    "RULES",
    "Diagnosis",
    "FailureCount",
    "FailureGroup",
    "FailureSummary",
    "category_of",
    "classify",
    "count_failures",
    "diagnose",
    "failure_category",
    "failure_key",
    "from_counts",
    "merge_failures",
    "normalize_phase",
    "suggestions_for",
    "summarize_failures",
]
