"""Prediction: a generation's time and peak memory before it runs, learnt from history.

Pure, like :mod:`genperf.analysis`: task records in, predictions out, no I/O (the monitor,
the API and the CLI read the store and hand the records over). See :mod:`.model` for how.
"""

from genperf.prediction.features import Workload, tunable
from genperf.prediction.model import (
    INTERVAL_LEVEL,
    Estimate,
    HistoryModel,
    Observation,
    Prediction,
    SuggestedRun,
    fit_history,
    fit_observations,
    observe,
)

__all__ = [
    "INTERVAL_LEVEL",
    "Estimate",
    "HistoryModel",
    "Observation",
    "Prediction",
    "SuggestedRun",
    "Workload",
    "fit_history",
    "fit_observations",
    "observe",
    "tunable",
]
