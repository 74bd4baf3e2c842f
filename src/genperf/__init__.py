"""genperf: the performance monitor for AI generation services."""

from genperf.records import (
    ErrorCategory,
    GpuReading,
    PhaseRecord,
    SystemSample,
    TaskRecord,
    TaskStatus,
    resolution_class,
)

__version__ = "0.1.0"

__all__ = [
    "ErrorCategory",
    "GpuReading",
    "PhaseRecord",
    "SystemSample",
    "TaskRecord",
    "TaskStatus",
    "__version__",
    "resolution_class",
]
