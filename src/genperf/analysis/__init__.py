"""Analysis: pure functions from task records and samples to answers a person can act on.

Nothing here imports psutil, NVML, torch, SQLAlchemy, FastAPI, Typer or rich
(tests/analysis/test_purity.py checks it). :func:`build_report` is the one entry point that
reads a store; the other functions take task records (or a prepared :class:`Window`).
"""

from genperf.analysis.benchmarks import Benchmark, BenchmarkStatus, evaluate_benchmarks
from genperf.analysis.bottlenecks import (
    AnalysisStatus,
    Bottleneck,
    BottleneckAnalysis,
    CheckStatus,
    Severity,
    detect_bottlenecks,
)
from genperf.analysis.efficiency import Efficiency, resource_efficiency
from genperf.analysis.failures import (
    Diagnosis,
    FailureSummary,
    count_failures,
    diagnose,
    summarize_failures,
)
from genperf.analysis.recommendations import (
    RULES,
    Category,
    Priority,
    Recommendation,
    recommend,
)
from genperf.analysis.report import SPEC_KEYS, Report, analyze, build_report, load_window
from genperf.analysis.summary import GroupSummary, Summary, summarize
from genperf.analysis.trends import Direction, Trend, Trends, compute_trends
from genperf.analysis.window import Tally, Window, tally

__all__ = [
    "RULES",
    "SPEC_KEYS",
    "AnalysisStatus",
    "Benchmark",
    "BenchmarkStatus",
    "Bottleneck",
    "BottleneckAnalysis",
    "Category",
    "CheckStatus",
    "Diagnosis",
    "Direction",
    "Efficiency",
    "FailureSummary",
    "GroupSummary",
    "Priority",
    "Recommendation",
    "Report",
    "Severity",
    "Summary",
    "Tally",
    "Trend",
    "Trends",
    "Window",
    "analyze",
    "build_report",
    "compute_trends",
    "count_failures",
    "detect_bottlenecks",
    "diagnose",
    "evaluate_benchmarks",
    "load_window",
    "recommend",
    "resource_efficiency",
    "summarize",
    "summarize_failures",
    "tally",
]
