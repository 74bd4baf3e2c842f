"""Learning a model's time and peak memory from its own history, and predicting with it.

Pure: task records in, a fitted :class:`HistoryModel` out, predictions from it. No I/O.

How, and why this way:

* Runs are reduced to **configurations** (resolution x frames x steps x optimisation set) with
  the median of each target and the count. Repeats of one configuration then weigh as one
  point (with their count), a noisy outlier run cannot drag the fit, and fitting 100k tasks
  costs what fitting a few dozen configurations costs.
* Each target (total time, each phase, peak RAM, peak VRAM) is a **non-negative** linear
  combination of the features its physics names (:mod:`genperf.prediction.features`),
  fitted by non-negative least squares (SciPy's, as scikit-learn uses) weighted to minimise
  *relative* error (the errors that matter are percentages). Non-negative: no term of the
  cost can save time, so extrapolation follows the physical curve.
* Optimisation sets that change the curve (VAE tiling and slicing, offload, dtype ...) are
  fitted separately: one group each. With VAE tiling the decode's time follows the pixels of
  its overlapping tiles (:func:`targets_of`), not the frame's.
* The **interval** (90 %) comes from the fit's leave-one-configuration-out relative errors
  combined with the run-to-run spread inside configurations: what the model got wrong on
  configurations it had not seen, not what it claims.
* A prediction is only made where the history can answer it: enough configurations for the
  features, and the request inside (twice) the range of what was run, along every dimension
  it varies. Otherwise it says why and which runs would make it answerable.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.optimize import nnls

from genperf.optimizations import VAE_TILING
from genperf.prediction.features import (
    CONSTANT_FEATURES,
    DECODE_FEATURES,
    DENOISE_FEATURES,
    MEMORY_FEATURES,
    TILED_DECODE_FEATURES,
    TILED_TIME_FEATURES,
    TIME_FEATURES,
    FeatureFn,
    Features,
    Workload,
    parse_size,
    tunable,
)
from genperf.records import TaskRecord

INTERVAL_LEVEL = 0.9
EXTRAPOLATION_FACTOR = 2.0  # how far beyond the history's range a dimension may go
MAX_LOO_FOLDS = 24  # configurations left out, at most, to measure the fit's error
SUGGESTIONS = 4

# Target name -> (what it is, its features). Phases are "phase:<name>".
TIME = "generation_time_seconds"
PEAK_RAM = "peak_ram_mb"
PEAK_RAM_GROWTH = "peak_ram_growth_mb"  # above the process's RSS as the generation began
PEAK_VRAM = "peak_vram_mb"
MODEL_LOAD = "model_load"
PREDICTED_PHASES = ("text_encode", "denoise", "vae_decode")
TARGETS: dict[str, tuple[tuple[str, FeatureFn], ...]] = {
    TIME: TIME_FEATURES,
    "phase:text_encode": CONSTANT_FEATURES,
    "phase:denoise": DENOISE_FEATURES,
    "phase:vae_decode": DECODE_FEATURES,
    PEAK_RAM: MEMORY_FEATURES,
    PEAK_RAM_GROWTH: MEMORY_FEATURES,
    PEAK_VRAM: MEMORY_FEATURES,
}
# VAE tiling changes the decode's curve (overlapping tiles): its time has its own feature.
TILED_TARGETS: dict[str, Features] = {
    **TARGETS,
    TIME: TILED_TIME_FEATURES,
    "phase:vae_decode": TILED_DECODE_FEATURES,
}


def targets_of(optimizations: frozenset[str]) -> dict[str, Features]:
    """Each target's features for a history of this optimisation set."""
    return TILED_TARGETS if VAE_TILING in optimizations else TARGETS


# --- observations ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Observation:
    """One successful run, reduced to its configuration and what was measured."""

    workload: Workload
    optimizations: frozenset[str]
    values: Mapping[str, float]
    model_load_seconds: float | None = None


def observe(record: TaskRecord) -> Observation | None:
    """The observation of a completed run, or None (failed, or its shape is unknown).

    Time is the generation's without the model load (a loaded model is kept between requests:
    the load is predicted on its own). Peak RAM is the process's own peak (VmHWM), not the
    host's, which other processes move.
    """
    if not record.success or record.steps is None or record.frames is None:
        return None
    size = parse_size(record.resolution)
    if size is None:
        return None
    values: dict[str, float] = {}
    durations = {p.name: p.duration_seconds for p in record.phases}  # the last of each name
    encode = record.phase("text_encode")
    load_seconds = durations.get(MODEL_LOAD)
    if record.generation_time_seconds is not None:
        values[TIME] = record.generation_time_seconds - (load_seconds or 0.0)
    for name in PREDICTED_PHASES:
        if name in durations:
            values[f"phase:{name}"] = durations[name]
    if record.peak_process_rss_mb is not None:
        values[PEAK_RAM] = record.peak_process_rss_mb
        # The text encode is the generation's first, small phase: its peak is the process
        # with the model loaded, so the rest is what the generation itself adds (what a
        # worker subprocess's memory headroom must hold).
        if encode is not None and encode.peak_ram_mb is not None:
            values[PEAK_RAM_GROWTH] = record.peak_process_rss_mb - encode.peak_ram_mb
    if record.peak_vram_usage_mb is not None:
        values[PEAK_VRAM] = record.peak_vram_usage_mb
    values = {k: v for k, v in values.items() if math.isfinite(v) and v > 0}
    if not values:
        return None
    return Observation(
        Workload(size[0], size[1], record.frames, record.steps),
        tunable(record.optimizations_applied),
        values,
        load_seconds,
    )


# --- results -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Estimate:
    """A predicted value and its interval (``INTERVAL_LEVEL``)."""

    value: float
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class SuggestedRun:
    """A configuration to run so that a question becomes answerable."""

    resolution: str
    frames: int
    steps: int
    optimizations: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Prediction:
    """What the history says a generation will cost, or why it cannot say."""

    model_type: str
    node: str | None
    resolution: str
    frames: int
    steps: int
    optimizations: tuple[str, ...]
    answerable: bool
    generation_time_seconds: Estimate | None = None
    phases: Mapping[str, Estimate] = field(default_factory=dict)
    peak_ram_mb: Estimate | None = None
    peak_ram_growth_mb: Estimate | None = None
    peak_vram_mb: Estimate | None = None
    interval_level: float = INTERVAL_LEVEL
    tasks: int = 0
    configurations: int = 0
    reasons: tuple[str, ...] = ()
    suggested_runs: tuple[SuggestedRun, ...] = ()


# --- fitting -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Config:
    workload: Workload
    count: int
    medians: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class TargetFit:
    """One target of one optimisation set: coefficients on its features, and its error."""

    coefficients: tuple[float, ...]
    relative_error: float  # half-width of the interval, relative to the value
    configurations: int
    steps_range: tuple[int, int]
    tokens_range: tuple[float, float]
    frame_pixels_range: tuple[float, float]

    def predict(self, features: Sequence[tuple[str, FeatureFn]], w: Workload) -> Estimate:
        value = sum(c * fn(w) for c, (_, fn) in zip(self.coefficients, features, strict=True))
        value = max(value, 0.0)
        return Estimate(
            value, max(value * (1 - self.relative_error), 0.0), value * (1 + self.relative_error)
        )


@dataclass(frozen=True, slots=True)
class GroupModel:
    """The fits of one optimisation set."""

    optimizations: frozenset[str]
    tasks: int
    configs: tuple[_Config, ...]
    fits: Mapping[str, TargetFit]

    def has(self, w: Workload) -> bool:
        return any(c.workload == w for c in self.configs)


@dataclass(frozen=True, slots=True)
class HistoryModel:
    """Everything learnt from one model type's history (on one node, or all)."""

    model_type: str
    node: str | None
    groups: Mapping[frozenset[str], GroupModel]
    model_load: Estimate | None
    tasks: int

    @property
    def usual_optimizations(self) -> frozenset[str]:
        """The optimisation set most runs used: what "as the service runs now" means."""
        if not self.groups:
            return frozenset()
        return max(
            self.groups.values(), key=lambda g: (g.tasks, sorted(g.optimizations))
        ).optimizations

    def predict(
        self,
        resolution: str,
        frames: int,
        steps: int,
        optimizations: Iterable[str] | None = None,
    ) -> Prediction:
        """Predict a generation; ``optimizations=None`` means the usual set of the history.

        Raises:
            ValueError: the resolution is not WIDTHxHEIGHT, or frames or steps below 1.
        """
        size = parse_size(resolution)
        if size is None:
            raise ValueError("resolution must be WIDTHxHEIGHT, such as 832x480")
        if frames < 1 or steps < 1:
            raise ValueError("frames and steps must be at least 1")
        w = Workload(size[0], size[1], frames, steps)
        key = self.usual_optimizations if optimizations is None else tunable(optimizations)
        base = Prediction(
            model_type=self.model_type,
            node=self.node,
            resolution=w.resolution,
            frames=frames,
            steps=steps,
            optimizations=tuple(sorted(key)),
            answerable=False,
            tasks=self.tasks,
        )
        group = self.groups.get(key)
        if group is None:
            label = "+".join(sorted(key)) or "no optimisations"
            reason = (
                f"no completed run of {self.model_type} with {label} in the history"
                if self.tasks
                else f"no completed run of {self.model_type} in the history"
            )
            return replace(
                base,
                reasons=(reason,),
                suggested_runs=_suggest(w, key, set(), TIME_FEATURES),
            )
        reasons: list[str] = []
        estimates: dict[str, Estimate] = {}
        for target, features in targets_of(key).items():
            fit = group.fits.get(target)
            if fit is None:
                continue
            why = _why_not(fit, w)
            if why is not None:
                if target == TIME:
                    reasons.append(why)
                continue
            estimates[target] = fit.predict(features, w)
        if TIME not in group.fits:
            need = len(TIME_FEATURES) + 1
            reasons.append(
                f"{len(group.configs)} configuration(s) of this optimisation set in the "
                f"history; the time model needs at least {need} different ones"
            )
        answerable = TIME in estimates
        phases = {
            t.removeprefix("phase:"): e for t, e in estimates.items() if t.startswith("phase:")
        }
        if self.model_load is not None:
            phases[MODEL_LOAD] = self.model_load
        seen = {c.workload for c in group.configs}
        return replace(
            base,
            answerable=answerable,
            generation_time_seconds=estimates.get(TIME),
            phases=phases if answerable else {},
            peak_ram_mb=estimates.get(PEAK_RAM) if answerable else None,
            peak_ram_growth_mb=estimates.get(PEAK_RAM_GROWTH) if answerable else None,
            peak_vram_mb=estimates.get(PEAK_VRAM) if answerable else None,
            tasks=group.tasks,
            configurations=len(group.configs),
            reasons=tuple(reasons),
            suggested_runs=() if answerable else _suggest(w, key, seen, TIME_FEATURES),
        )


def fit_history(
    records: Iterable[TaskRecord], model_type: str, node: str | None = None
) -> HistoryModel:
    """Fit every target of every optimisation set from ``records`` (one model type's runs)."""
    return fit_observations((o for r in records if (o := observe(r)) is not None), model_type, node)


def fit_observations(
    observations: Iterable[Observation], model_type: str, node: str | None = None
) -> HistoryModel:
    # One pass: each run's values go straight into its configuration's lists (no per-run
    # objects kept), so 100k runs cost what reading them costs.
    runs: dict[frozenset[str], dict[Workload, _Runs]] = defaultdict(dict)
    loads: list[float] = []
    total = 0
    for o in observations:
        by_config = runs[o.optimizations]
        bucket = by_config.get(o.workload)
        if bucket is None:
            bucket = by_config[o.workload] = _Runs()
        bucket.count += 1
        for target, value in o.values.items():
            bucket.values[target].append(value)
        if o.model_load_seconds is not None and o.model_load_seconds > 0:
            loads.append(o.model_load_seconds)
        total += 1
    groups = {key: _fit_group(key, by_config) for key, by_config in runs.items()}
    return HistoryModel(model_type, node, groups, _constant_estimate(loads), total)


@dataclass(slots=True)
class _Runs:
    """The runs of one configuration: how many, and each target's values."""

    count: int = 0
    values: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))


def _fit_group(key: frozenset[str], by_config: Mapping[Workload, _Runs]) -> GroupModel:
    configs: list[_Config] = []
    spreads: dict[str, list[float]] = defaultdict(list)
    for workload, runs in by_config.items():
        medians: dict[str, float] = {}
        for target, measured in runs.values.items():
            arr = np.asarray(measured)
            median = float(np.median(arr))
            medians[target] = median
            if arr.size > 1:
                spreads[target].extend(np.abs(arr / median - 1.0).tolist())
        configs.append(_Config(workload, runs.count, medians))
    fits: dict[str, TargetFit] = {}
    for target, features in targets_of(key).items():
        rows = [c for c in configs if target in c.medians]
        fit = _fit_target(rows, target, features, spreads.get(target, []))
        if fit is not None:
            fits[target] = fit
    return GroupModel(key, sum(c.count for c in configs), tuple(configs), fits)


def _fit_target(
    rows: Sequence[_Config],
    target: str,
    features: Sequence[tuple[str, FeatureFn]],
    spread: Sequence[float],
) -> TargetFit | None:
    if len(rows) < len(features) + 1:
        return None
    x = np.array([[fn(c.workload) for _, fn in features] for c in rows])
    y = np.array([c.medians[target] for c in rows])
    n = np.array([float(c.count) for c in rows])
    coef = _nnls(x, y, n)
    # Leave whole configurations out (evenly spread, at most MAX_LOO_FOLDS) and measure the
    # relative error on each: the honest error of predicting a configuration not yet run.
    folds = np.unique(np.linspace(0, len(rows) - 1, min(len(rows), MAX_LOO_FOLDS)).astype(int))
    errors: list[float] = []
    for i in folds:
        keep = np.ones(len(rows), dtype=bool)
        keep[i] = False
        c = _nnls(x[keep], y[keep], n[keep])
        errors.append(abs(float(x[i] @ c) / y[i] - 1.0))
    model_error = float(np.quantile(errors, INTERVAL_LEVEL))
    noise = float(np.quantile(spread, INTERVAL_LEVEL)) if spread else 0.0
    steps = [c.workload.steps for c in rows]
    tokens = [c.workload.tokens for c in rows]
    pixels = [c.workload.frame_pixels for c in rows]
    return TargetFit(
        tuple(float(v) for v in coef),
        math.hypot(model_error, noise),
        len(rows),
        (min(steps), max(steps)),
        (min(tokens), max(tokens)),
        (min(pixels), max(pixels)),
    )


def _nnls(x: np.ndarray, y: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Non-negative least squares on relative error: row weights sqrt(count) / y. Columns are
    scaled to [0, 1] first so terms of very different size (tokens squared) fit equally well.

    SciPy's solver is the one scikit-learn's ``LinearRegression(positive=True)`` calls; called
    directly it skips about 8 ms of input validation per fit, which matters for the hundreds
    of leave-one-out refits a history takes."""
    scale = np.abs(x).max(axis=0)
    scale[scale == 0] = 1.0
    weight = np.sqrt(counts) / y
    coef, _ = nnls((x / scale) * weight[:, None], y * weight)
    result: np.ndarray = coef / scale
    return result


def _constant_estimate(values: Sequence[float]) -> Estimate | None:
    if len(values) < 2:
        return None
    arr = np.array(values)
    return Estimate(
        float(np.median(arr)),
        float(np.quantile(arr, (1 - INTERVAL_LEVEL) / 2)),
        float(np.quantile(arr, (1 + INTERVAL_LEVEL) / 2)),
    )


def _why_not(fit: TargetFit, w: Workload) -> str | None:
    """Why the fit cannot answer for ``w`` (outside what was run), or None."""
    for name, value, (lo, hi) in (
        ("steps", float(w.steps), fit.steps_range),
        ("latent tokens (frames x resolution)", w.tokens, fit.tokens_range),
        ("frames x pixels", w.frame_pixels, fit.frame_pixels_range),
    ):
        if lo == hi and value != lo:
            return (
                f"every run in the history has the same {name}: "
                "the effect of changing it is unknown"
            )
        if value > hi * EXTRAPOLATION_FACTOR or value < lo / EXTRAPOLATION_FACTOR:
            return (
                f"{name} {value:g} is far outside the history's range ({lo:g} to {hi:g}): "
                "no run near it"
            )
    return None


def _suggest(
    w: Workload,
    key: frozenset[str],
    seen: set[Workload],
    features: Sequence[tuple[str, FeatureFn]],
) -> tuple[SuggestedRun, ...]:
    """The nearest configurations not in the history: the request itself, then neighbours
    that vary steps, frames and resolution (so every feature's effect can be learnt)."""
    candidates = [w]
    for steps in (max(1, w.steps // 2), w.steps * 2):
        candidates.append(Workload(w.width, w.height, w.frames, steps))
    for span in ((w.frames - 1) // 2, (w.frames - 1) * 2):
        candidates.append(Workload(w.width, w.height, span // 4 * 4 + 1, w.steps))
    for factor in (0.5, 0.75, 1.5):
        width = max(16, round(w.width * factor / 16) * 16)
        height = max(16, round(w.height * factor / 16) * 16)
        candidates.append(Workload(width, height, w.frames, w.steps))
    unique = list(dict.fromkeys(c for c in candidates if c not in seen))
    count = max(1, min(SUGGESTIONS, len(features) + 1 - len(seen)))
    opts = tuple(sorted(key))
    return tuple(
        SuggestedRun(c.resolution, c.frames, c.steps, opts) for c in unique[: max(count, 1)]
    )
