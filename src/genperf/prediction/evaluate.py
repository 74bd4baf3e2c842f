"""How well predictions hold on configurations the model has not seen (pure).

Whole configurations are held out (every run of a resolution x frames x steps x optimisation
set goes to the same side), the model is fitted on the rest, and each held-out run's absolute
percentage error is taken against the median of its configuration's runs (what a person would
call its time). The naive baseline predicts the mean of the training runs of the same
resolution class and optimisation set: what a table of averages would say.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from genperf.prediction.model import (
    PEAK_RAM,
    PEAK_VRAM,
    TIME,
    Observation,
    Prediction,
    fit_observations,
)
from genperf.records import resolution_class

Config = tuple[int, int, int, int, frozenset[str]]


@dataclass(frozen=True, slots=True)
class ErrorStats:
    """Absolute percentage errors over held-out configurations."""

    median: float
    p90: float
    count: int


@dataclass(frozen=True, slots=True)
class Accuracy:
    """Errors of the model and of the naive baseline, per target; configurations unanswered."""

    model: dict[str, ErrorStats]
    baseline: dict[str, ErrorStats]
    unanswered: int
    held_out: int


def config_of(o: Observation) -> Config:
    w = o.workload
    return (w.width, w.height, w.frames, w.steps, o.optimizations)


def holdout_accuracy(
    observations: Sequence[Observation],
    *,
    held_out: Sequence[Config] | None = None,
    folds: int = 5,
    seed: int = 0,
) -> Accuracy:
    """Fit on all configurations but the held-out ones, predict those; ``held_out=None``
    splits every configuration into ``folds`` random folds and holds each out in turn."""
    by_config: dict[Config, list[Observation]] = defaultdict(list)
    for o in observations:
        by_config[config_of(o)].append(o)
    if held_out is not None:
        splits = [list(held_out)]
    else:
        # Sorted on values, not repr (a frozenset's order changes with the hash seed), so
        # a seed gives the same folds in every process.
        configs = sorted(by_config, key=lambda c: (c[:4], sorted(c[4])))
        random.Random(seed).shuffle(configs)
        splits = [configs[i::folds] for i in range(folds)]
    errors: dict[str, list[float]] = defaultdict(list)
    naive: dict[str, list[float]] = defaultdict(list)
    unanswered = 0
    total = 0
    for split in splits:
        test = set(split)
        train = [o for c, obs in by_config.items() if c not in test for o in obs]
        model = fit_observations(train, "benchmark")
        baseline = _class_means(train)
        for config in split:
            runs = by_config.get(config, [])
            if not runs:
                continue
            total += 1
            w, opts = runs[0].workload, config[4]
            prediction = model.predict(w.resolution, w.frames, w.steps, opts)
            if not prediction.answerable:
                unanswered += 1
                continue
            for target in (TIME, PEAK_RAM, PEAK_VRAM):
                actual = [o.values[target] for o in runs if target in o.values]
                predicted = _value(prediction, target)
                if not actual or predicted is None:
                    continue
                truth = float(np.median(actual))
                errors[target].append(abs(predicted / truth - 1.0))
                mean = baseline.get((resolution_class(w.resolution), opts, target))
                if mean is not None:
                    naive[target].append(abs(mean / truth - 1.0))
    return Accuracy(_stats(errors), _stats(naive), unanswered, total)


def repeat_spread(observations: Sequence[Observation], target: str) -> ErrorStats | None:
    """How far each run lies from the median of its configuration's runs (configurations run
    more than once): the floor of any prediction's error, since no model predicts a
    configuration better than its own repeats agree."""
    by_config: dict[Config, list[float]] = defaultdict(list)
    for o in observations:
        if target in o.values:
            by_config[config_of(o)].append(o.values[target])
    deviations = [
        abs(v / float(np.median(runs)) - 1.0)
        for runs in by_config.values()
        if len(runs) > 1
        for v in runs
    ]
    return _stats({target: deviations}).get(target)


def _value(prediction: Prediction, target: str) -> float | None:
    estimate = {
        TIME: prediction.generation_time_seconds,
        PEAK_RAM: prediction.peak_ram_mb,
        PEAK_VRAM: prediction.peak_vram_mb,
    }[target]
    return None if estimate is None else estimate.value


def _class_means(train: Sequence[Observation]) -> dict[tuple[str, frozenset[str], str], float]:
    sums: dict[tuple[str, frozenset[str], str], list[float]] = defaultdict(list)
    for o in train:
        cls = resolution_class(o.workload.resolution)
        for target, value in o.values.items():
            sums[(cls, o.optimizations, target)].append(value)
    return {k: float(np.mean(v)) for k, v in sums.items()}


def _stats(errors: dict[str, list[float]]) -> dict[str, ErrorStats]:
    return {
        t: ErrorStats(float(np.median(v)), float(np.quantile(v, 0.9)), len(v))
        for t, v in errors.items()
        if v
    }
