"""The monitor: PerformanceMonitor (the spec's API) and the parts it is made of."""

from genperf.monitor.core import ActiveTask, PerformanceMonitor, TaskHandle
from genperf.monitor.sampler import Sampler
from genperf.monitor.stats import RunningStats
from genperf.monitor.tracker import Tracker

__all__ = ["ActiveTask", "PerformanceMonitor", "RunningStats", "Sampler", "TaskHandle", "Tracker"]
