"""Integrations that monitor generation libraries without extra code in the service.

- :mod:`genperf.integrations.diffusers`: ``monitor_pipeline(pipe, monitor, model_type=...)``
  and ``load_pipeline(cls, path, monitor=..., model_type=...)``. Neither imports torch or
  diffusers: genperf without the ``diffusers`` extra still imports.
"""

from genperf.integrations.diffusers import (
    CallSummary,
    LoadInfo,
    MonitoredPipeline,
    detect_optimizations,
    load_pipeline,
    monitor_pipeline,
)

__all__ = [
    "CallSummary",
    "LoadInfo",
    "MonitoredPipeline",
    "detect_optimizations",
    "load_pipeline",
    "monitor_pipeline",
]
