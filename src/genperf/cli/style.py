"""Grades against the spec's targets, and the colours that show them.

Green: the target is met. Yellow: acceptable. Red: worse than acceptable ("marginal" while
still inside the limit, bold red beyond it: "over limit" for usage and time, "below minimum"
for success rate and efficiency). The numbers come from the settings
(``benchmark_targets`` and ``performance_thresholds``), never from here.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from genperf.config import Band, QualityBand, Settings


class Grade(enum.StrEnum):
    """Where a value stands; the values are analysis's benchmark statuses."""

    TARGET = "target_met"
    ACCEPTABLE = "acceptable"
    MARGINAL = "marginal"  # worse than acceptable, still inside the limit
    BELOW_MINIMUM = "below_minimum"  # higher is better, and it is under the limit
    OVER_LIMIT = "over_limit"  # lower is better, and it is over the limit

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


STYLES: Mapping[Grade | None, str] = {
    Grade.TARGET: "green",
    Grade.ACCEPTABLE: "yellow",
    Grade.MARGINAL: "red",
    Grade.BELOW_MINIMUM: "bold red",
    Grade.OVER_LIMIT: "bold red",
    None: "",
}

STATUS_STYLES: Mapping[str, str] = {
    "completed": "green",
    "running": "cyan",
    "failed": "red",
    "interrupted": "yellow",
}

SEVERITY_STYLES: Mapping[str, str] = {
    "critical": "bold red",
    "high": "red",
    "warning": "yellow",
    "medium": "yellow",
    "low": "cyan",
    "info": "dim",
}

# A GPU this hot is slowing down on most data-centre parts; the spec names no target for it.
HOT_CELSIUS = 85.0
WARM_CELSIUS = 80.0


def style_of(grade: Grade | None) -> str:
    return STYLES[grade]


def status_style(status: str) -> str:
    """The colour of a benchmark status as analysis writes it ("no_data" is dim)."""
    try:
        return STYLES[Grade(status)]
    except ValueError:
        return "dim"


@dataclass(frozen=True)
class Targets:
    """The spec's targets, as the renderers need them."""

    vram: Band
    ram: Band
    cpu: Band
    success_rate: QualityBand
    efficiency: QualityBand
    generation_time: Mapping[str, float] = field(default_factory=dict)  # seconds per class
    acceptable_factor: float = 1.5

    @classmethod
    def from_settings(cls, settings: Settings) -> Targets:
        bt = settings.benchmark_targets
        return cls(
            vram=bt.vram_usage_percent,
            ram=bt.ram_usage_percent,
            cpu=bt.cpu_usage_percent,
            success_rate=bt.success_rate,
            efficiency=bt.resource_efficiency,
            generation_time=settings.performance_thresholds.generation_time_targets(),
            acceptable_factor=bt.generation_time_acceptable_factor,
        )

    def generation_time_target(self, resolution_class: str | None) -> float | None:
        return self.generation_time.get(resolution_class or "")


def grade_usage(percent: float | None, band: Band) -> Grade | None:
    """Lower is better (VRAM, RAM, CPU usage in percent)."""
    if percent is None:
        return None
    if percent <= band.optimal:
        return Grade.TARGET
    if percent <= band.acceptable:
        return Grade.ACCEPTABLE
    if percent <= band.maximum:
        return Grade.MARGINAL
    return Grade.OVER_LIMIT


def grade_quality(fraction: float | None, band: QualityBand) -> Grade | None:
    """Higher is better (success rate, resource efficiency, as fractions 0..1)."""
    if fraction is None:
        return None
    if fraction >= band.target:
        return Grade.TARGET
    if fraction >= band.acceptable:
        return Grade.ACCEPTABLE
    if fraction >= band.minimum:
        return Grade.MARGINAL
    return Grade.BELOW_MINIMUM


def grade_time(seconds: float | None, target: float | None, factor: float) -> Grade | None:
    """A generation time against its class's target; acceptable is ``factor`` times it."""
    if seconds is None or target is None:
        return None
    if seconds <= target:
        return Grade.TARGET
    if seconds <= target * factor:
        return Grade.ACCEPTABLE
    return Grade.OVER_LIMIT


def temperature_style(celsius: float | None) -> str:
    if celsius is None:
        return ""
    if celsius >= HOT_CELSIUS:
        return "red"
    if celsius >= WARM_CELSIUS:
        return "yellow"
    return "green"
