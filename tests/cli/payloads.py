"""Hand-written payloads in the API's shapes, for renderer tests that must not depend on the
wording of the analysis (which has tests of its own)."""

from __future__ import annotations

from typing import Any


def _trend(metric: str, direction: str, start: float | None, end: float | None, **kw: Any) -> Any:
    rel = None if start is None or end is None else (end - start) / start
    return {
        "metric": metric,
        "resolution_class": kw.get("cls"),
        "direction": direction,
        "better": kw.get("better", "lower"),
        "tasks": kw.get("tasks", 12),
        "points": kw.get("tasks", 12),
        "bucketed": False,
        "slope_per_hour": 0.0,
        "start_value": start,
        "end_value": end,
        "change": None if rel is None else end - start,  # type: ignore[operator]
        "relative_change": rel,
        "z": 0.0,
    }


REPORT: dict[str, Any] = {
    "average_generation_time": 392.0,
    "success_rate": 0.9,
    "resource_efficiency": 0.72,
    "bottleneck_analysis": {
        "status": "bottlenecks_found",
        "message": "2 bottleneck(s); the main one: vram.",
        "bottlenecks": [
            {
                "resource": "model_loading",
                "severity": "warning",
                "summary": (
                    "Model loading took 25% or more of the generation time in 6 of 20 tasks."
                ),
                "evidence": {},
                "affected_count": 6,
                "affected_share": 0.3,
                "affected_tasks": [],
            },
            {
                "resource": "vram",
                "severity": "critical",
                "summary": "Peak GPU memory reached 95% or more in 8 of 20 tasks.",
                "evidence": {},
                "affected_count": 8,
                "affected_share": 0.4,
                "affected_tasks": [],
            },
        ],
        "checks": {},
        "primary_bottleneck": "vram",
        "task_count": 20,
    },
    "optimization_recommendations": [
        {
            "id": "keep_cached",
            "category": "workflow",
            "priority": "medium",
            "action": "Keep the pipeline loaded between tasks.",
            "evidence": "6 cold loads of 20 tasks.",
            "expected_effect": "Saves the load time of each task.",
            "affected_count": 6,
            "suggests": [],
        },
        {
            "id": "vae_tiling",
            "category": "configuration",
            "priority": "high",
            "action": "Enable VAE tiling.",
            "evidence": "2 tasks ran out of memory in the VAE decode.",
            "expected_effect": "The decode's peak memory drops several-fold.",
            "affected_count": 2,
            "suggests": ["vae_tiling"],
        },
        {
            "id": "ssd",
            "category": "hardware",
            "priority": "low",
            "action": "Move the model files to an SSD.",
            "evidence": "",
            "expected_effect": "",
            "affected_count": 0,
            "suggests": [],
        },
    ],
    "performance_trends": {
        "generation_time": {
            "720p": _trend("generation_time_seconds", "degrading", 240.0, 300.0, cls="720p"),
        },
        "success_rate": _trend("success_rate", "insufficient_data", None, None, better="higher"),
        "peak_vram_percent": _trend("peak_vram_percent", "improving", 96.0, 80.0),
    },
    "time_window_hours": 24.0,
    "task_count": 20,
    "summary": {
        "task_count": 20,
        "completed": 18,
        "failed": 2,
        "interrupted": 0,
        "success_rate": 0.9,
        "average_generation_time": 392.0,
        "median_generation_time": 250.0,
        "p95_generation_time": 1000.0,
        "average_model_load_time": 61.0,
        "by_resolution": [
            {
                "model_type": "*",
                "resolution_class": "720p",
                "optimizations": "*",
                "task_count": 15,
                "success_rate": 0.8667,
                "average_generation_time": 260.0,
                "median_generation_time": 250.0,
                "p95_generation_time": 300.0,
                "average_model_load_time": 60.0,
            },
            {
                "model_type": "*",
                "resolution_class": "1080p",
                "optimizations": "*",
                "task_count": 5,
                "success_rate": 1.0,
                "average_generation_time": 1400.0,
                "median_generation_time": 1400.0,
                "p95_generation_time": 1500.0,
                "average_model_load_time": 64.0,
            },
        ],
        "breakdown": [],
        "estimated": False,
    },
    "benchmarks": [],
    "failures": {
        "failed": 2,
        "failure_rate": 0.1,
        "by_category": {"out_of_memory_gpu": 2},
        "groups": [
            {
                "category": "out_of_memory_gpu",
                "phase": "vae_decode",
                "count": 2,
                "share_of_tasks": 0.1,
                "suggestions": ["Enable VAE tiling.", "Enable VAE slicing."],
            }
        ],
    },
    "method": {"aggregation": "records", "tasks_read": 20, "sample_fraction": 1.0},
}

EMPTY_REPORT: dict[str, Any] = {
    "average_generation_time": None,
    "success_rate": None,
    "resource_efficiency": None,
    "bottleneck_analysis": {"status": "no_data", "message": "No finished task.", "bottlenecks": []},
    "optimization_recommendations": [],
    "performance_trends": {},
    "time_window_hours": 6.0,
    "task_count": 0,
    "summary": {"task_count": 0, "completed": 0, "failed": 0, "interrupted": 0},
    "method": {"sample_fraction": 1.0},
}


def _benchmark(
    name: str, unit: str, value: float | None, lines: tuple[Any, ...], status: str
) -> Any:
    target, acceptable, limit = lines
    return {
        "name": name,
        "unit": unit,
        "better": "higher" if unit == "fraction" else "lower",
        "statistic": "",
        "value": value,
        "target": target,
        "acceptable": acceptable,
        "limit": limit,
        "status": status,
        "tasks": 0 if value is None else 20,
    }


BENCHMARKS: dict[str, Any] = {
    "time_window_hours": 24.0,
    "targets": {},
    "benchmarks": [
        _benchmark("generation_time_720p", "seconds", 250.0, (300.0, 450.0, None), "target_met"),
        _benchmark("generation_time_1080p", "seconds", None, (900.0, 1350.0, None), "no_data"),
        _benchmark("vram_usage_percent", "percent", 96.4, (70.0, 85.0, 95.0), "below_minimum"),
        _benchmark("ram_usage_percent", "percent", 80.0, (60.0, 75.0, 90.0), "marginal"),
        _benchmark("success_rate", "fraction", 0.96, (0.98, 0.95, 0.90), "acceptable"),
    ],
}
