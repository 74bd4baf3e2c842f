"""``genperf tune``: measure each preset on this machine, keep the best, record the change.

A short grid of real generations (every preset this machine can run, at the sizes asked,
``repeats`` times, round-robin), each a monitored task stored in the database like any other
(the predictor learns from them too). The chosen preset is the fastest median time among the
presets that never failed; it is written to the configuration file (``tuned_presets``), and
the change is kept in the database's ``configuration_changes`` table with the median time and
peak of the preset before (the one configured, or ``default``) and after.
"""

from __future__ import annotations

import json
import os
import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genperf.config import ROOT_KEY
from genperf.generation.grid import GridPoint, grid, run_grid
from genperf.generation.pipelines import load_model
from genperf.generation.presets import Preset
from genperf.generation.registry import ModelRegistry
from genperf.monitor import PerformanceMonitor
from genperf.records import TaskRecord, utc_now
from genperf.storage.changes import record_change as store_change
from genperf.storage.engine import make_engine, store_errors


@dataclass(frozen=True, slots=True)
class PresetResult:
    """A preset's measured medians over the grid (None: every run of it failed)."""

    preset: Preset
    runs: int
    failed: int
    time_seconds: float | None
    peak_mb: float | None


def measure(
    monitor: PerformanceMonitor,
    registry: ModelRegistry,
    model_type: str,
    points: Sequence[GridPoint],
    *,
    repeats: int,
    on_done: Callable[[GridPoint, TaskRecord], None] | None = None,
) -> list[PresetResult]:
    """Run the grid; each preset's medians (time, and VRAM peak, else process RSS peak)."""
    spec = registry.ensure_ready(model_type)
    pipe = load_model(spec, monitor, None)
    results = run_grid(
        pipe,
        points,
        repeats=repeats,
        call_kwargs=spec.call_kwargs,
        on_done=on_done,
        task_prefix=f"tune-{utc_now():%Y%m%dT%H%M%S}",
    )
    by_preset: dict[str, list[TaskRecord]] = defaultdict(list)
    presets: dict[str, Preset] = {}
    for point, record in results:
        by_preset[point.preset.name].append(record)
        presets[point.preset.name] = point.preset
    out = []
    for name, records in by_preset.items():
        ok = [r for r in records if r.success]
        times = [r.generation_time_seconds for r in ok if r.generation_time_seconds is not None]
        peaks = [r.peak_vram_usage_mb or r.peak_process_rss_mb for r in ok]
        known = [p for p in peaks if p is not None]
        out.append(
            PresetResult(
                presets[name],
                len(records),
                len(records) - len(ok),
                statistics.median(times) if times else None,
                statistics.median(known) if known else None,
            )
        )
    return out


def best(results: Sequence[PresetResult]) -> PresetResult | None:
    """The fastest preset that never failed."""
    ok = [r for r in results if r.failed == 0 and r.time_seconds is not None]
    return min(ok, key=lambda r: r.time_seconds or 0.0) if ok else None


def write_preset(config: Path, model_type: str, preset: str) -> str | None:
    """Set ``tuned_presets[model_type]`` in the JSON config file (created if absent, written
    atomically); returns the value it replaced."""
    data: dict[str, Any] = json.loads(config.read_text()) if config.exists() else {}
    block = data.setdefault(ROOT_KEY, {}) if ROOT_KEY in data or not data else data
    tuned = block.setdefault("tuned_presets", {})
    old = tuned.get(model_type)
    tuned[model_type] = preset
    staging = config.with_name(f".{config.name}.{os.getpid()}.tmp")
    staging.write_text(json.dumps(data, indent=2) + "\n")
    staging.replace(config)
    return old if isinstance(old, str) else None


def record_change(
    url: str,
    key: str,
    *,
    old: str | None,
    new: str,
    before: PresetResult | None,
    after: PresetResult,
) -> None:
    """Keep a configuration change with its before/after figures (the spec's "keep records
    of configuration changes")."""
    engine = make_engine(url)
    try:
        with store_errors("record a configuration change", url):
            store_change(
                engine,
                {
                    "changed_at": utc_now(),
                    "key": key,
                    "old_value": old,
                    "new_value": new,
                    "source": "genperf tune",
                    "before_time_seconds": before.time_seconds if before else None,
                    "after_time_seconds": after.time_seconds,
                    "before_peak_mb": before.peak_mb if before else None,
                    "after_peak_mb": after.peak_mb,
                },
            )
    finally:
        engine.dispose()


__all__ = ["PresetResult", "best", "grid", "measure", "record_change", "write_preset"]
