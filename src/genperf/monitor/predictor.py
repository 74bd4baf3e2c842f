"""Predictions from a store's history: reads the runs, fits, and keeps the fit until new runs land.

The model itself is pure (:mod:`genperf.prediction`); this is the part that reads. A fit is
kept per store, model type and node, and refitted only when the number of completed runs of
that model type (and node) changed, so a prediction costs one ``COUNT`` and the model's
arithmetic. At most :data:`MAX_HISTORY_TASKS` of the newest runs are read, and at most
:data:`MAX_CACHED_FITS` fits are kept (the oldest used is dropped): a client asking about many
model types cannot grow the cache.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from genperf.errors import GenperfError
from genperf.storage.base import Store, TaskQuery

if TYPE_CHECKING:
    from genperf.prediction import HistoryModel, Prediction

MAX_HISTORY_TASKS = 100_000
MAX_CACHED_FITS = 64


class HistoryPredictor:
    """Fits of stores' histories, cached; thread-safe."""

    def __init__(self, max_tasks: int = MAX_HISTORY_TASKS) -> None:
        self._max_tasks = max_tasks
        self._fits: OrderedDict[tuple[int, str, str | None], tuple[int, HistoryModel]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()

    def model(self, store: Store, model_type: str, node: str | None = None) -> HistoryModel:
        """The fitted history of ``model_type`` (on ``node``, or every node).

        Raises:
            GenperfError: numpy or scipy (the ``predict`` extra) is not installed.
            StoreError: the database cannot be read.
        """
        try:
            from genperf.prediction import fit_history
        except ImportError as exc:  # numpy / scipy: the "predict" extra
            raise GenperfError(
                f"prediction needs numpy and scipy ({exc.name} is missing): "
                "pip install 'genperf[predict]'"
            ) from None

        query = TaskQuery(model_type=model_type, node=node, success_only=True)
        count = store.count_tasks(query)
        key = (id(store), model_type, node)
        with self._lock:
            cached = self._fits.get(key)
            if cached is not None and cached[0] == count:
                self._fits.move_to_end(key)
                return cached[1]
        records = store.iter_tasks(
            TaskQuery(
                model_type=model_type,
                node=node,
                success_only=True,
                newest_first=True,
                limit=self._max_tasks,
            )
        )
        fitted = fit_history(records, model_type, node)
        with self._lock:
            self._fits[key] = (count, fitted)
            self._fits.move_to_end(key)
            while len(self._fits) > MAX_CACHED_FITS:
                self._fits.popitem(last=False)
        return fitted

    def predict(
        self,
        store: Store,
        model_type: str,
        resolution: str,
        frames: int,
        steps: int,
        *,
        optimizations: Iterable[str] | None = None,
        node: str | None = None,
    ) -> Prediction:
        """Predict from ``node``'s history when given and it has runs of this model type,
        else from every node's (and then says so).

        Raises:
            ValueError: a bad resolution, frames or steps (the message names it).
            StoreError: the database cannot be read.
        """
        model = self.model(store, model_type, node)
        if node is not None and model.tasks == 0:
            fleet = self.model(store, model_type, None)
            p = fleet.predict(resolution, frames, steps, optimizations)
            note = f"no completed run of {model_type} on node {node}: predicted from every node"
            return replace(p, reasons=(note, *p.reasons))
        return model.predict(resolution, frames, steps, optimizations)
