"""Integrations that monitor generation libraries without extra code in the service.

- :mod:`genperf.integrations.diffusers`: ``monitor_pipeline(pipe, monitor, model_type=...)``
  and ``load_pipeline(cls, path, monitor=..., model_type=...)``. Neither imports torch or
  diffusers: genperf without the ``diffusers`` extra still imports.
"""

from genperf.integrations.call_recorder import CallSummary
from genperf.integrations.diffusers import (
    LoadInfo,
    MonitoredPipeline,
    load_pipeline,
    monitor_pipeline,
)
from genperf.integrations.pipeline_inspect import detect_optimizations

__all__ = [
    "CallSummary",
    "LoadInfo",
    "MonitoredPipeline",
    "detect_optimizations",
    "load_pipeline",
    "monitor_pipeline",
]
