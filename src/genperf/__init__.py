"""genperf: the performance monitor for AI generation services.

The public surface is what ``__all__`` lists (checked by tests/core/test_public_api.py).
"""

from genperf.config import Settings, load_settings
from genperf.errors import (
    ConfigError,
    GenperfError,
    InvalidFieldValueError,
    StoreError,
    StoreUnavailableError,
    TaskStateError,
    UnknownFieldError,
    UnknownTaskError,
)
from genperf.monitor import ActiveTask, PerformanceMonitor, TaskHandle
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
    "ActiveTask",
    "ConfigError",
    "ErrorCategory",
    "GenperfError",
    "GpuReading",
    "InvalidFieldValueError",
    "PerformanceMonitor",
    "PhaseRecord",
    "Settings",
    "StoreError",
    "StoreUnavailableError",
    "SystemSample",
    "TaskHandle",
    "TaskRecord",
    "TaskStateError",
    "TaskStatus",
    "UnknownFieldError",
    "UnknownTaskError",
    "__version__",
    "load_settings",
    "resolution_class",
]
