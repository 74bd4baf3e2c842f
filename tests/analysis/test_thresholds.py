"""The spec's ``performance_thresholds`` drive the verdicts: each one, changed, changes them.

``max_vram_usage_percent`` and ``max_ram_usage_percent`` are the ``maximum`` of the VRAM and RAM
bands, ``min_success_rate`` the ``minimum`` of the success-rate band (see
``Settings._thresholds_are_the_limits``); bottlenecks, benchmarks and recommendations all read
those bands.
"""

from __future__ import annotations

import pytest

from genperf.analysis.benchmarks import BenchmarkStatus, evaluate_benchmarks
from genperf.analysis.bottlenecks import Severity, detect_bottlenecks
from genperf.analysis.recommendations import recommend
from genperf.analysis.window import tally
from genperf.config import Settings, load_settings
from genperf.errors import ConfigError
from genperf.records import TaskStatus

from .conftest import history, vary


def with_thresholds(**thresholds: float) -> Settings:
    return Settings.model_validate({"performance_thresholds": thresholds})


def benchmark(tasks: list, settings: Settings, name: str) -> object:  # type: ignore[type-arg]
    return next(b for b in evaluate_benchmarks(tasks, settings) if b.name == name)


def test_max_vram_usage_percent_is_the_vram_limit() -> None:
    tasks = history(20, peak_vram_usage_mb=81_920.0 * 0.60)  # 60 % of an 80 GiB GPU
    default, strict = Settings(), with_thresholds(max_vram_usage_percent=50)
    assert detect_bottlenecks(tasks, default).get("vram") is None
    vram = detect_bottlenecks(tasks, strict).get("vram")
    assert vram is not None and vram.severity is Severity.CRITICAL
    assert vram.evidence["maximum_percent"] == 50
    assert benchmark(tasks, default, "vram_usage_percent").status is BenchmarkStatus.TARGET_MET  # type: ignore[attr-defined]
    assert benchmark(tasks, strict, "vram_usage_percent").status is BenchmarkStatus.OVER_LIMIT  # type: ignore[attr-defined]
    assert tally(tasks, strict).memory_over == 20 and tally(tasks, default).memory_over == 0


def test_max_ram_usage_percent_is_the_ram_limit() -> None:
    tasks = history(20, peak_ram_usage_mb=65_536.0 * 0.30, ram_total_mb=65_536.0)
    default, strict = Settings(), with_thresholds(max_ram_usage_percent=10)
    assert detect_bottlenecks(tasks, default).get("ram") is None
    ram = detect_bottlenecks(tasks, strict).get("ram")
    assert ram is not None and ram.severity is Severity.CRITICAL
    assert ram.evidence["maximum_percent"] == 10
    assert benchmark(tasks, strict, "ram_usage_percent").status is BenchmarkStatus.OVER_LIMIT  # type: ignore[attr-defined]
    assert "host_memory" not in {r.id for r in recommend(tasks, default)}
    host = next(r for r in recommend(tasks, strict) if r.id == "host_memory")
    assert host.affected_count == ram.affected_count == 20  # the count its evidence names


def test_min_success_rate_is_the_success_rate_minimum() -> None:
    tasks = vary(history(100), 0.02, status=TaskStatus.FAILED)  # 98 % succeed
    default, strict = Settings(), with_thresholds(min_success_rate=1.0)
    assert benchmark(tasks, default, "success_rate").status is BenchmarkStatus.TARGET_MET  # type: ignore[attr-defined]
    b = benchmark(tasks, strict, "success_rate")
    assert b.status is BenchmarkStatus.BELOW_MINIMUM  # type: ignore[attr-defined]
    assert b.limit == 1.0  # type: ignore[attr-defined]
    assert "success_rate_target" not in {r.id for r in recommend(tasks, default)}
    rec = next(r for r in recommend(tasks, strict) if r.id == "success_rate_target")
    assert rec.expected_effect == "Success rate back to its 100% target."


def test_the_inner_lines_move_inside_a_tighter_limit() -> None:
    bt = with_thresholds(max_vram_usage_percent=80, min_success_rate=0.97).benchmark_targets
    assert (bt.vram_usage_percent.optimal, bt.vram_usage_percent.acceptable) == (70, 80)
    assert bt.vram_usage_percent.maximum == 80
    assert (bt.success_rate.target, bt.success_rate.acceptable, bt.success_rate.minimum) == (
        0.98,
        0.97,
        0.97,
    )


def test_a_band_set_alone_sets_its_threshold() -> None:
    s = Settings.model_validate(
        {
            "benchmark_targets": {
                "ram_usage_percent": {"optimal": 50, "acceptable": 70, "maximum": 95}
            }
        }
    )
    assert s.performance_thresholds.max_ram_usage_percent == 95
    assert s.benchmark_targets.ram_usage_percent.maximum == 95


def test_a_band_and_its_threshold_that_disagree_are_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "genperf.json"
    path.write_text(
        '{"performance_monitoring": {"performance_thresholds": {"max_vram_usage_percent": 80},'
        ' "benchmark_targets": {"vram_usage_percent":'
        ' {"optimal": 60, "acceptable": 70, "maximum": 95}}}}'
    )
    with pytest.raises(ConfigError) as err:
        load_settings(path, environ={})
    text = str(err.value)
    assert "benchmark_targets.vram_usage_percent.maximum" in text
    assert "performance_thresholds.max_vram_usage_percent" in text


def test_the_environment_threshold_reaches_the_bands() -> None:
    s = load_settings(environ={"GENPERF_PERFORMANCE_THRESHOLDS__MAX_VRAM_USAGE_PERCENT": "75"})
    assert s.benchmark_targets.vram_usage_percent.maximum == 75
