"""Running a measured grid of generations on one loaded pipeline (for tuning and benchmarks).

Each point is one monitored task (phases, steps, peaks, optimisations), so what a grid
measures lands in the history like any generation and the predictor learns from it. One
unmonitored warm-up call comes first: the first call in a process pays one-off costs
(allocator growth, kernel selection) that no later request pays.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from genperf.generation.presets import Preset, apply
from genperf.integrations.diffusers import MonitoredPipeline
from genperf.records import TaskRecord

logger = logging.getLogger("genperf.generation")

GRID_PROMPT = "a cat dancing in the rain"


@dataclass(frozen=True, slots=True)
class GridPoint:
    """One configuration to run."""

    width: int
    height: int
    frames: int
    steps: int
    preset: Preset

    @property
    def resolution(self) -> str:
        return f"{self.width}x{self.height}"

    @property
    def config(self) -> tuple[int, int, int, int, str]:
        return (self.width, self.height, self.frames, self.steps, self.preset.name)


def run_grid(
    pipe: MonitoredPipeline,
    points: Sequence[GridPoint],
    *,
    repeats: int = 1,
    call_kwargs: Mapping[str, Any] | None = None,
    on_done: Callable[[GridPoint, TaskRecord], None] | None = None,
    task_prefix: str = "grid",
) -> list[tuple[GridPoint, TaskRecord]]:
    """Run every point ``repeats`` times (round-robin, so slow drift of a busy machine spreads
    over all points), each a monitored task; returns each point with its record. A point
    that fails (out of memory) is recorded as failed and the grid goes on."""
    extra = dict(call_kwargs or {})
    if points:
        first = points[0]
        apply(pipe.pipeline, first.preset)
        pipe.pipeline(**_kwargs(first, extra))  # the warm-up, unmonitored
    results: list[tuple[GridPoint, TaskRecord]] = []
    for r in range(repeats):
        for i, point in enumerate(points):
            apply(pipe.pipeline, point.preset)
            try:
                pipe(**_kwargs(point, extra), task_id=f"{task_prefix}-{r}-{i}")
            except Exception as exc:  # recorded as failed (out of memory ...): go on
                logger.info("grid point %s failed: %s", point.config, type(exc).__name__)
            record = pipe.last_record
            if record is None:
                continue
            results.append((point, record))
            if on_done is not None:
                on_done(point, record)
    return results


def grid(
    sizes: Iterable[tuple[int, int]],
    frames: Iterable[int],
    steps: Iterable[int],
    presets: Iterable[Preset],
) -> list[GridPoint]:
    """The full factorial grid of these values."""
    frames, steps, presets = list(frames), list(steps), list(presets)
    return [
        GridPoint(w, h, f, s, p) for (w, h) in sizes for f in frames for s in steps for p in presets
    ]


def _kwargs(point: GridPoint, extra: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "prompt": GRID_PROMPT,
        **extra,
        "height": point.height,
        "width": point.width,
        "num_frames": point.frames,
        "num_inference_steps": point.steps,
        "output_type": "np",
    }
