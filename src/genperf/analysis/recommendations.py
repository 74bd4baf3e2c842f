"""Optimisation recommendations, from one rule table: :data:`RULES`.

A rule has an id, the spec's category (hardware, configuration, workflow, targets), a priority,
the action, the expected effect, and a trigger: a function of the window's facts (bottlenecks,
failures, benchmarks, tasks) that returns the evidence and the optimisation sets of the tasks it
concerns, or None. Before a rule fires its ``suggests`` tokens are checked against each
concerned task's ``optimizations_applied``: tasks that already have the optimisation don't
count, and when none is left the rule stays silent. So an applied optimisation is never
recommended. ``requires`` restricts a rule to tasks that already have some optimisation
(VAE slicing once tiling is on; sequential offload once model offload is on).
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from genperf import optimizations as opt
from genperf.analysis.benchmarks import Benchmark, BenchmarkStatus, evaluate_benchmarks
from genperf.analysis.bottlenecks import (
    Bottleneck,
    BottleneckAnalysis,
    Severity,
    detect_bottlenecks,
)
from genperf.analysis.efficiency import Efficiency, resource_efficiency
from genperf.analysis.stats import ratio
from genperf.analysis.window import (
    FailureCount,
    TaskSource,
    Window,
    as_window,
    failure_category,
    generation_targets,
)
from genperf.config import Settings
from genperf.numbers import percent
from genperf.records import ErrorCategory, JsonFields, SystemSample, TaskRecord, TaskStatus
from genperf.tally import LOAD_SHARE, LOAD_SLOW_SECONDS
from genperf.units import count_of


class Category(enum.StrEnum):
    HARDWARE = "hardware"
    CONFIGURATION = "configuration"
    WORKFLOW = "workflow"
    TARGETS = "targets"


class Priority(enum.StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


_PRIORITY_RANK = {Priority.HIGH: 0, Priority.MEDIUM: 1, Priority.LOW: 2}

OptSets = Counter[tuple[str, ...]]  # optimisation set (sorted tokens) -> tasks


@dataclass(frozen=True, slots=True)
class Recommendation(JsonFields):
    """One thing to change, why, and what it should bring."""

    id: str
    category: Category
    priority: Priority
    action: str
    evidence: str
    expected_effect: str
    affected_count: int
    suggests: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Facts:
    """What the triggers read."""

    window: Window
    settings: Settings
    bottlenecks: BottleneckAnalysis
    benchmarks: tuple[Benchmark, ...]
    efficiency: Efficiency

    def bottleneck(self, resource: str, at_least: Severity = Severity.INFO) -> Bottleneck | None:
        b = self.bottlenecks.get(resource)
        return b if b is not None and b.severity.rank >= at_least.rank else None

    def failures(
        self, categories: Iterable[ErrorCategory], phases: Iterable[str | None] | None = None
    ) -> list[FailureCount]:
        cats = set(categories)
        wanted = None if phases is None else set(phases)
        return [
            f
            for f in self.window.failures
            if f.category in cats and (wanted is None or f.phase in wanted)
        ]

    def benchmark(self, name: str) -> Benchmark | None:
        return next((b for b in self.benchmarks if b.name == name), None)

    def tasks(self, when: Callable[[TaskRecord], bool]) -> list[TaskRecord]:
        return [t for t in self.window.tasks if when(t)]

    def opt_sets(self, tasks: Iterable[TaskRecord]) -> OptSets:
        """Optimisation sets of these tasks, counts scaled to the window when it is sampled."""
        raw = Counter(tuple(sorted(opt.normalize(t.optimizations_applied))) for t in tasks)
        return Counter({k: max(1, self.window.scale(n)) for k, n in raw.items()})


def _failure_sets(rows: Iterable[FailureCount]) -> OptSets:
    out: OptSets = Counter()
    for r in rows:
        out[r.optimizations] += r.count
    return out


@dataclass(frozen=True, slots=True)
class Trigger:
    """Why a rule fires: the evidence, and the optimisation sets of the tasks it concerns
    (None when it is not about particular tasks). ``priority`` overrides the rule's;
    ``affected`` is the count of tasks the evidence names when ``concerned`` is None (a
    bottleneck's affected_count), so the two never disagree; ``effect`` overrides the rule's
    expected effect where the facts change it (no GPU on the host)."""

    evidence: str
    concerned: OptSets | None = None
    priority: Priority | None = None
    affected: int | None = None
    effect: str | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    category: Category
    priority: Priority
    action: str
    expected_effect: str
    when: Callable[[Facts], Trigger | None]
    suggests: tuple[str, ...] = ()  # tokens (or families) this rule would apply
    requires: tuple[str, ...] = ()  # tokens (or families) the tasks must all already have


# --- triggers ----------------------------------------------------------------------------

_GPU_OOM = (ErrorCategory.OUT_OF_MEMORY_GPU,)
_ANY_OOM = (ErrorCategory.OUT_OF_MEMORY_GPU, ErrorCategory.OUT_OF_MEMORY_HOST)
_NOT_DECODE = ("model_load", "text_encode", "denoise", None)


def _vram_pct(t: TaskRecord) -> float:
    return percent(t.peak_vram_usage_mb, t.vram_total_mb) or 0.0


def _merge(*sets: OptSets) -> OptSets:
    out: OptSets = Counter()
    for s in sets:
        out.update(s)
    return out


def _vram_pressure(f: Facts, band: str) -> Trigger | None:
    """VRAM at or over a band, or GPU OOM outside the VAE decode (tiling handles that one)."""
    b = f.bottleneck("vram", Severity.WARNING)
    ooms = f.failures(_GPU_OOM, _NOT_DECODE)
    if b is None and not ooms:
        return None
    line = getattr(f.settings.benchmark_targets.vram_usage_percent, band)
    high = f.tasks(lambda t: _vram_pct(t) >= line and failure_category(t) not in _GPU_OOM)
    concerned = _merge(f.opt_sets(high), _failure_sets(ooms))
    if not concerned:
        return None
    n_oom = sum(r.count for r in ooms)
    parts = [b.summary] if b is not None else []
    if n_oom:
        parts.append(f"{n_oom} GPU out-of-memory failures outside the VAE decode.")
    evidence = " ".join(parts)
    critical = (b is not None and b.severity is Severity.CRITICAL) or n_oom > 0
    return Trigger(evidence, concerned, Priority.HIGH if critical else Priority.MEDIUM)


def _vram_critical(f: Facts) -> Trigger | None:
    b = f.bottleneck("vram", Severity.CRITICAL)
    if b is None:
        return None
    return _vram_pressure(f, "maximum")


def _vram_high(f: Facts) -> Trigger | None:
    return _vram_pressure(f, "acceptable")


def _full_precision(f: Facts) -> Trigger | None:
    targets = generation_targets(f.settings)
    acc = f.settings.benchmark_targets.vram_usage_percent.acceptable

    def heavy(t: TaskRecord) -> bool:
        if not t.vram_total_mb:
            return False
        target = targets.get(t.resolution_class)
        slow = (
            target is not None
            and t.generation_time_seconds is not None
            and t.generation_time_seconds > target
        )
        return slow or _vram_pct(t) >= acc or failure_category(t) in _GPU_OOM

    tasks = f.tasks(heavy)
    if not tasks:
        return None
    return Trigger(
        f"{f.window.scale(len(tasks))} GPU tasks ran over their time target or near the VRAM "
        "limit, some without a half-precision or quantised dtype.",
        f.opt_sets(tasks),
    )


def _decode_oom(f: Facts) -> Trigger | None:
    rows = f.failures(_ANY_OOM, ("vae_decode",))
    n = sum(r.count for r in rows)
    if not n:
        return None
    share = ratio(n, f.window.tally.tasks) or 0.0
    return Trigger(
        f"{count_of(n, 'task')} ({share:.0%}) ran out of memory in the VAE decode.",
        _failure_sets(rows),
        Priority.HIGH if share >= 0.05 else Priority.MEDIUM,
    )


def _gpu_oom_any(f: Facts) -> Trigger | None:
    rows = f.failures(_GPU_OOM)
    n = sum(r.count for r in rows)
    if not n:
        return None
    return Trigger(f"{n} GPU out-of-memory failures.", _failure_sets(rows))


def _gpu_oom_not_decode(f: Facts) -> Trigger | None:
    rows = f.failures(_GPU_OOM, _NOT_DECODE)
    n = sum(r.count for r in rows)
    if not n:
        return None
    return Trigger(f"{n} GPU out-of-memory failures outside the VAE decode.", _failure_sets(rows))


def _host_memory(f: Facts) -> Trigger | None:
    b = f.bottleneck("ram", Severity.WARNING)
    if b is None:
        return None
    critical = b.severity is Severity.CRITICAL
    return Trigger(
        b.summary, None, Priority.HIGH if critical else Priority.MEDIUM, b.affected_count
    )


def _over_acceptable(f: Facts) -> Trigger | None:
    t = f.window.tally
    share = ratio(t.over_acceptable, t.target_n)
    if share is None or share < 0.25:
        return None
    return Trigger(
        f"{t.over_acceptable} of {t.target_n} completed tasks took longer than "
        f"{f.settings.benchmark_targets.generation_time_acceptable_factor:g}x their time target."
    )


def _over_target_gpu(f: Facts) -> Trigger | None:
    targets = generation_targets(f.settings)

    def slow(t: TaskRecord) -> bool:
        target = targets.get(t.resolution_class)
        gen = t.generation_time_seconds
        return bool(t.vram_total_mb) and target is not None and gen is not None and gen > target

    tasks = f.tasks(lambda t: t.status is TaskStatus.COMPLETED and slow(t))
    completed = f.tasks(lambda t: t.status is TaskStatus.COMPLETED and bool(t.vram_total_mb))
    if not tasks or len(tasks) < 0.25 * len(completed):
        return None
    return Trigger(
        f"{f.window.scale(len(tasks))} GPU tasks finished over their generation-time target.",
        f.opt_sets(tasks),
    )


def _offload_headroom(f: Facts) -> Trigger | None:
    b = f.bottleneck("offload")
    if b is None:
        return None
    vram = b.evidence.get("median_peak_vram_percent")
    optimal = f.settings.benchmark_targets.vram_usage_percent.optimal
    if vram is None or vram >= optimal:
        return None
    return Trigger(f"{b.summary} Median peak VRAM of those runs: {vram:.0f}%.")


# --- over-optimisation: memory savings paid for in time on a GPU that does not need them ----

# Tiling cuts the decode's peak "several-fold"; undone, the decode is assumed to need this
# many times its tiled peak (conservative: Wan's VAE saves 3-4x at 720p).
VAE_TILING_SAVING = 4.0


def _mostly_free(f: Facts, t: TaskRecord) -> bool:
    """Peak VRAM so low that even twice it stays under the optimal band."""
    optimal = f.settings.benchmark_targets.vram_usage_percent.optimal
    pct = percent(t.peak_vram_usage_mb, t.vram_total_mb)
    return pct is not None and 2 * pct <= optimal and failure_category(t) not in _GPU_OOM


def _over_saving(token: str, what: str) -> Callable[[Facts], Trigger | None]:
    def trigger(f: Facts) -> Trigger | None:
        if f.failures(_GPU_OOM):
            return None  # memory did run out somewhere: keep every saving
        if token.startswith(opt.OFFLOAD) and f.bottleneck("offload") is not None:
            return None  # relax_offload already says it, with the GPU's idle time
        tasks = f.tasks(lambda t: opt.is_applied(t.optimizations_applied, (token,)))
        free = [t for t in tasks if _mostly_free(f, t)]
        if not tasks or len(free) < 0.5 * len(tasks):
            return None
        top = max(_vram_pct(t) for t in free)
        return Trigger(
            f"{f.window.scale(len(free))} of {f.window.scale(len(tasks))} tasks with {what} "
            f"peaked at {top:.0f}% of GPU memory or less: twice that is still under the "
            f"{f.settings.benchmark_targets.vram_usage_percent.optimal:g}% optimal line.",
            f.opt_sets(free),
        )

    return trigger


def _needless_vae_tiling(f: Facts) -> Trigger | None:
    if f.failures(_ANY_OOM, ("vae_decode",)):
        return None
    acceptable = f.settings.benchmark_targets.vram_usage_percent.acceptable

    def decode_pct(t: TaskRecord) -> float | None:
        phase = t.phase("vae_decode")
        return None if phase is None else percent(phase.peak_vram_mb, t.vram_total_mb)

    tiled = f.tasks(
        lambda t: (
            opt.is_applied(t.optimizations_applied, (opt.VAE_TILING,)) and decode_pct(t) is not None
        )
    )
    roomy = [t for t in tiled if VAE_TILING_SAVING * (decode_pct(t) or 0.0) <= acceptable]
    if not tiled or len(roomy) < 0.5 * len(tiled):
        return None
    top = max(decode_pct(t) or 0.0 for t in roomy)
    return Trigger(
        f"With VAE tiling the decode peaked at {top:.0f}% of GPU memory in "
        f"{f.window.scale(len(roomy))} of {f.window.scale(len(tiled))} tiled tasks: even "
        f"{VAE_TILING_SAVING:g}x that (untiled) stays under the {acceptable:g}% acceptable line, "
        "and no decode ran out of memory.",
        f.opt_sets(roomy),
    )


def _cpu_bound(f: Facts) -> Trigger | None:
    b = f.bottleneck("cpu", Severity.WARNING)
    if b is None:
        return None
    # Without a GPU the generation itself runs on these cores: there is no GPU to feed.
    effect = None if f.window.tally.gpu_tasks else "Less contention: the generation gets the cores."
    return Trigger(b.summary, None, None, b.affected_count, effect)


def _thermal(f: Facts) -> Trigger | None:
    b = f.bottleneck("thermal", Severity.WARNING)
    if b is None:
        return None
    return Trigger(
        b.summary,
        None,
        Priority.HIGH if b.severity is Severity.CRITICAL else None,
        b.affected_count,
    )


def _node_outlier(f: Facts) -> Trigger | None:
    b = f.bottleneck("node")
    return None if b is None else Trigger(b.summary)


def _slow_disk(f: Facts) -> Trigger | None:
    b = f.bottleneck("disk")
    if b is None or not b.affected_count:
        return None
    return Trigger(b.summary, None, None, b.affected_count)


def _low_disk(f: Facts) -> Trigger | None:
    b = f.bottleneck("disk")
    if b is None:
        return None
    free = b.evidence.get("min_free_bytes")
    need = b.evidence.get("min_free_bytes_required")
    if free is None or need is None or free >= need:
        return None
    return Trigger(b.summary, None, Priority.HIGH if b.severity is Severity.CRITICAL else None)


def _loading(f: Facts) -> Trigger | None:
    b = f.bottleneck("model_loading")
    if b is None:
        return None
    tasks = f.tasks(_load_heavy)
    return Trigger(
        b.summary,
        f.opt_sets(tasks) or None,
        Priority.HIGH if b.severity is Severity.CRITICAL else Priority.MEDIUM,
    )


def _load_heavy(t: TaskRecord) -> bool:
    load, gen = t.model_load_time_seconds, t.generation_time_seconds
    if load is None:
        return False
    return load >= LOAD_SLOW_SECONDS or (bool(gen) and load >= LOAD_SHARE * (gen or 0.0))


def _failures_of(category: ErrorCategory, what: str) -> Callable[[Facts], Trigger | None]:
    def trigger(f: Facts) -> Trigger | None:
        n = sum(r.count for r in f.failures((category,)))
        return Trigger(f"{count_of(n, 'task')} failed: {what}.") if n else None

    return trigger


def _time_targets_missed(f: Facts) -> Trigger | None:
    missed = [
        b for b in f.benchmarks if b.name.startswith("generation_time_") and b.status.beyond_limit
    ]
    if not missed:
        return None
    parts = [
        f"{b.name.removeprefix('generation_time_')}: median {b.value:.0f} s against "
        f"{b.target:.0f} s (acceptable {b.acceptable:.0f} s)"
        for b in missed
        if b.value is not None
    ]
    return Trigger("Generation time misses its target: " + "; ".join(parts) + ".")


def _quality_missed(name: str, label: str) -> Callable[[Facts], Trigger | None]:
    def trigger(f: Facts) -> Trigger | None:
        b = f.benchmark(name)
        if b is None or b.value is None:
            return None
        if b.status is not BenchmarkStatus.MARGINAL and not b.status.beyond_limit:
            return None
        high = b.status.beyond_limit
        return Trigger(
            f"{label} is {b.value:.1%}: under the acceptable {b.acceptable:.0%}"
            + (f" and the minimum {b.limit:.0%}." if high and b.limit is not None else "."),
            None,
            Priority.HIGH if high else Priority.MEDIUM,
            effect=f"{label} back to its {b.target:.0%} target.",  # the configured one
        )

    return trigger


def _untargeted_classes(f: Facts) -> Trigger | None:
    targets = generation_targets(f.settings)
    seen = Counter(
        t.resolution_class
        for t in f.window.tasks
        if t.status is TaskStatus.COMPLETED and t.resolution_class not in targets
    )
    classes = [c for c in sorted(seen) if c not in ("other",)]
    if not classes:
        return None
    keys = ", ".join(f"max_generation_time_{c}" for c in classes)
    return Trigger(f"Completed tasks at {', '.join(classes)} have no time target ({keys}).")


# --- the table ---------------------------------------------------------------------------

RULES: tuple[Rule, ...] = (
    # configuration: memory
    Rule(
        "vae_tiling",
        Category.CONFIGURATION,
        Priority.HIGH,
        "Enable VAE tiling (pipe.vae.enable_tiling()) so the decoder works on tiles, not the "
        "whole video at once.",
        "The decode's peak memory drops several-fold; the decode is a little slower.",
        _decode_oom,
        suggests=(opt.VAE_TILING,),
    ),
    Rule(
        "vae_slicing",
        Category.CONFIGURATION,
        Priority.MEDIUM,
        "VAE tiling is on and the decode still runs out of memory: also enable VAE slicing "
        "(pipe.vae.enable_slicing()), or decode fewer frames at a time.",
        "Decodes one sample at a time: lower decode peak for batched requests.",
        _decode_oom,
        suggests=(opt.VAE_SLICING,),
        requires=(opt.VAE_TILING,),
    ),
    Rule(
        "model_cpu_offload",
        Category.CONFIGURATION,
        Priority.HIGH,
        "Enable model CPU offload (pipe.enable_model_cpu_offload()): only the component that "
        "runs sits on the GPU.",
        "Peak VRAM falls to the largest single component (one Wan2.2 expert instead of both, "
        "plus activations); each task is typically 10-30% slower.",
        _vram_critical,
        suggests=(opt.OFFLOAD,),
    ),
    Rule(
        "quantize_weights",
        Category.CONFIGURATION,
        Priority.MEDIUM,
        "Quantise the transformer weights to fp8 or int8 (torchao, bitsandbytes, optimum-quanto).",
        "Weights take about half the memory of bf16; a small quality cost, speed similar or "
        "better on GPUs with fp8 support.",
        _vram_high,
        suggests=(opt.QUANTIZATION,),
    ),
    Rule(
        "half_precision",
        Category.CONFIGURATION,
        Priority.HIGH,
        "Run the pipeline in bf16 (dtype=torch.bfloat16) instead of fp32.",
        "Half the weight and activation memory and roughly 2x faster matmuls on tensor cores.",
        _full_precision,
        suggests=(*opt.HALF_PRECISION, opt.QUANTIZATION),
    ),
    Rule(
        "sequential_cpu_offload",
        Category.CONFIGURATION,
        Priority.MEDIUM,
        "Model offload is on and the GPU still runs out of memory: use sequential CPU offload "
        "(pipe.enable_sequential_cpu_offload()).",
        "The lowest VRAM possible (layer by layer); several times slower.",
        _gpu_oom_not_decode,
        suggests=(opt.OFFLOAD_SEQUENTIAL,),
        requires=(opt.OFFLOAD_MODEL,),
    ),
    Rule(
        "relax_offload",
        Category.CONFIGURATION,
        Priority.MEDIUM,
        "Offloaded runs leave VRAM unused and the GPU idle: switch sequential offload to model "
        "offload, or turn offload off for this model.",
        "Less time on PCIe transfers: the GPU busy again, generation faster.",
        _offload_headroom,
    ),
    Rule(
        "drop_sequential_offload",
        Category.CONFIGURATION,
        Priority.MEDIUM,
        "Sequential CPU offload on a GPU whose memory stays mostly free: use model offload "
        "(pipe.enable_model_cpu_offload()) or none.",
        "Sequential offload moves every layer over PCIe each step, typically several times "
        "slower; model offload or none keeps the GPU fed.",
        _over_saving(opt.OFFLOAD_SEQUENTIAL, "sequential CPU offload"),
        requires=(opt.OFFLOAD_SEQUENTIAL,),
    ),
    Rule(
        "drop_quantization",
        Category.CONFIGURATION,
        Priority.LOW,
        "Quantised weights on a GPU whose memory stays mostly free: try bf16 weights.",
        "No dequantisation work or quality cost; faster on GPUs without native int8/fp8 "
        "kernels. Measure both: genperf records each configuration.",
        _over_saving(opt.QUANTIZATION, "quantised weights"),
        requires=(opt.QUANTIZATION,),
    ),
    Rule(
        "drop_vae_tiling",
        Category.CONFIGURATION,
        Priority.LOW,
        "VAE tiling is on and the decode never comes near the memory limit: turn it off "
        "(pipe.vae.disable_tiling()).",
        "The decode runs in one pass: faster, without tile seams.",
        _needless_vae_tiling,
        requires=(opt.VAE_TILING,),
    ),
    Rule(
        "fewer_steps_or_frames",
        Category.CONFIGURATION,
        Priority.MEDIUM,
        "Use fewer inference steps or frames for these requests (or a step-distilled variant).",
        "Denoising time scales with steps, and with frames x height x width.",
        _over_acceptable,
    ),
    Rule(
        "torch_compile",
        Category.CONFIGURATION,
        Priority.LOW,
        "torch.compile the transformer(s) of a pipeline that stays loaded.",
        "Often 10-30% faster denoising after a one-off compile per shape.",
        _over_target_gpu,
        suggests=(opt.TORCH_COMPILE,),
    ),
    Rule(
        "attention_backend",
        Category.CONFIGURATION,
        Priority.LOW,
        "Use a fused attention kernel (PyTorch SDPA or flash attention).",
        "Attention dominates video diffusion at high resolution: less memory, faster steps.",
        _over_target_gpu,
        suggests=(opt.ATTENTION,),
    ),
    # hardware: GPU memory management, CPU, cooling, storage
    Rule(
        "expandable_segments",
        Category.HARDWARE,
        Priority.MEDIUM,
        "Set PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True for the worker process.",
        "Less fragmentation of the CUDA caching allocator: fewer OOMs with free memory left.",
        _gpu_oom_any,
        suggests=(opt.EXPANDABLE_SEGMENTS,),
    ),
    Rule(
        "gpu_memory_upgrade",
        Category.HARDWARE,
        Priority.MEDIUM,
        "Offload and quantisation are on and VRAM is still at its limit: use a GPU with more "
        "memory for this model.",
        "Removes the VRAM ceiling and the offload overhead.",
        _vram_critical,
        requires=(opt.OFFLOAD, opt.QUANTIZATION),
    ),
    Rule(
        "host_memory",
        Category.HARDWARE,
        Priority.HIGH,
        "Host RAM is short: run fewer generations at once, load weights memory-mapped, close "
        "other applications, or add RAM.",
        "No more host out-of-memory failures or swapping during loads and decodes.",
        _host_memory,
    ),
    Rule(
        "cpu_threads",
        Category.HARDWARE,
        Priority.MEDIUM,
        "Set the CPU thread count to the physical cores (torch.set_num_threads, OMP_NUM_THREADS) "
        "and avoid several workers oversubscribing them; close CPU-heavy neighbours.",
        "Less contention on the CPU; the GPU is fed faster.",
        _cpu_bound,
    ),
    Rule(
        "inspect_node",
        Category.HARDWARE,
        Priority.MEDIUM,
        "Drain the node that stands out and inspect it: GPU clocks and throttle reasons "
        "(nvidia-smi -q -d PERFORMANCE), cooling, power limits, driver and genperf versions "
        "against a healthy node (genperf nodes); route work elsewhere until it matches them.",
        "Its tasks take the fleet's time again, or it stops failing the work the others finish.",
        _node_outlier,
    ),
    Rule(
        "cooling",
        Category.HARDWARE,
        Priority.MEDIUM,
        "Improve cooling (airflow, fan curve, dust) and check power limits and power management.",
        "Clocks stay at full speed: no thermal slowdown mid-generation.",
        _thermal,
    ),
    Rule(
        "free_disk_space",
        Category.HARDWARE,
        Priority.MEDIUM,
        "Free space on the model volume (old checkpoints, huggingface-cli delete-cache) or move "
        "models to a larger volume.",
        "Downloads and caches no longer fail part-way.",
        _low_disk,
    ),
    Rule(
        "ssd_model_storage",
        Category.HARDWARE,
        Priority.MEDIUM,
        "Keep model files on a local NVMe/SSD, not a hard disk or network share.",
        "Model loads several times faster.",
        _slow_disk,
    ),
    # workflow
    Rule(
        "keep_models_loaded",
        Category.WORKFLOW,
        Priority.MEDIUM,
        "Keep pipelines loaded between tasks (a warm worker per model) and route tasks to a "
        "worker that already has the model.",
        "Removes the load time from every task but the first.",
        _loading,
        suggests=(opt.MODEL_CACHED,),
    ),
    Rule(
        "verify_model_files",
        Category.WORKFLOW,
        Priority.HIGH,
        "Verify model folders before serving: pre-download, check sizes or checksums, and keep "
        "config.json with the weights of the same revision.",
        "No task fails on a missing, truncated or mismatched model file.",
        _failures_of(ErrorCategory.MODEL_LOAD_ERROR, "the model could not be loaded"),
    ),
    Rule(
        "validate_requests",
        Category.WORKFLOW,
        Priority.MEDIUM,
        "Validate requests before queueing them (height and width multiples of 16, frames "
        "4k+1, steps within the scheduler's range).",
        "Bad input fails in milliseconds instead of after a model load.",
        _failures_of(ErrorCategory.INVALID_INPUT, "invalid input"),
    ),
    Rule(
        "review_timeouts",
        Category.WORKFLOW,
        Priority.MEDIUM,
        "Review task timeouts against the generation times of each resolution.",
        "No run cut off just before it would have finished.",
        _failures_of(ErrorCategory.TIMEOUT, "time-out"),
    ),
    # targets
    Rule(
        "generation_time_target",
        Category.TARGETS,
        Priority.HIGH,
        "Generation is slower than its acceptable time: apply the changes above, or revise "
        "max_generation_time_<class> if the target is unrealistic for this hardware.",
        "Generation time back within target.",
        _time_targets_missed,
    ),
    Rule(
        "success_rate_target",
        Category.TARGETS,
        Priority.HIGH,
        "Fix the main failure causes (see the failure breakdown and each task's recovery "
        "suggestions).",
        "Success rate back to the 98% target.",
        _quality_missed("success_rate", "Success rate"),
    ),
    Rule(
        "efficiency_target",
        Category.TARGETS,
        Priority.MEDIUM,
        "Resource efficiency is low: see its parts (on time, GPU busy, memory headroom) for "
        "which to work on.",
        "Efficiency back to the 85% target.",
        _quality_missed("resource_efficiency", "Resource efficiency"),
    ),
    Rule(
        "set_time_targets",
        Category.TARGETS,
        Priority.LOW,
        "Set a generation-time target for these resolutions in performance_thresholds.",
        "Their times are benchmarked and count towards efficiency.",
        _untargeted_classes,
    ),
)


def _eligible(rule: Rule, concerned: OptSets) -> int:
    """Concerned tasks the rule applies to: they have what it requires, lack what it suggests."""
    n = 0
    for tokens, count in concerned.items():
        if not all(opt.is_applied(tokens, (r,)) for r in rule.requires):
            continue
        if rule.suggests and opt.is_applied(tokens, rule.suggests):
            continue
        n += count
    return n


def apply_rules(facts: Facts, rules: Iterable[Rule] = RULES) -> tuple[Recommendation, ...]:
    """Evaluate the rule table over the facts; high priority first, then table order."""
    out: list[Recommendation] = []
    for rule in rules:
        trigger = rule.when(facts)
        if trigger is None:
            continue
        affected = 0
        if trigger.concerned is not None:
            affected = _eligible(rule, trigger.concerned)
            if affected == 0:
                continue
            total = sum(trigger.concerned.values())
            evidence = trigger.evidence
            if affected < total:
                evidence += f" {affected} of {total} concerned tasks lack it."
        elif rule.requires:
            continue  # a rule that needs applied optimisations needs tasks to check them on
        else:
            evidence = trigger.evidence
            affected = trigger.affected or 0
        out.append(
            Recommendation(
                id=rule.id,
                category=rule.category,
                priority=trigger.priority or rule.priority,
                action=rule.action,
                evidence=evidence,
                expected_effect=trigger.effect or rule.expected_effect,
                affected_count=affected,
                suggests=rule.suggests,
            )
        )
    order = {r.id: i for i, r in enumerate(rules)}
    out.sort(key=lambda r: (_PRIORITY_RANK[r.priority], order[r.id]))
    return tuple(out)


def recommend(
    tasks: TaskSource,
    settings: Settings,
    samples: Iterable[SystemSample] = (),
    *,
    bottlenecks: BottleneckAnalysis | None = None,
    benchmarks: tuple[Benchmark, ...] | None = None,
    efficiency: Efficiency | None = None,
) -> tuple[Recommendation, ...]:
    """Recommendations for a window, from :data:`RULES`.

    Args:
        tasks: the window's task records, or a prepared Window.
        settings: targets and bands.
        samples: system samples (disk, temperature); ignored when ``tasks`` is a Window.
        bottlenecks, benchmarks, efficiency: pass them when already computed.
    """
    w = as_window(tasks, settings, samples)
    eff = efficiency if efficiency is not None else resource_efficiency(w, settings)
    facts = Facts(
        window=w,
        settings=settings,
        bottlenecks=bottlenecks if bottlenecks is not None else detect_bottlenecks(w, settings),
        benchmarks=benchmarks
        if benchmarks is not None
        else evaluate_benchmarks(w, settings, efficiency=eff),
        efficiency=eff,
    )
    return apply_rules(facts)


__all__ = ["RULES", "Category", "Priority", "Recommendation", "Rule", "Trigger", "recommend"]
