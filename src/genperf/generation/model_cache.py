"""Loaded pipelines kept between tasks, within a memory budget, least recently used out first.

A pipeline's size is estimated from its components' parameters and buffers (bytes of the
tensors, wherever they live). Keeping a model loaded is what turns a 30 s load into none:
the next task on it runs with ``model_cached`` among its optimisations.
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import psutil

from genperf.integrations.pipeline_inspect import components

logger = logging.getLogger("genperf.generation")

DEFAULT_BUDGET_FRACTION = 0.5  # of the host's RAM, when no budget is given


def estimate_bytes(pipe: Any) -> int:
    """Bytes held by the pipeline's parameters and buffers (each tensor counted once)."""
    total = 0
    seen: set[int] = set()
    for module in components(getattr(pipe, "pipeline", pipe)).values():
        tensors = [*module.parameters(), *module.buffers()]
        for tensor in tensors:
            if id(tensor) in seen:
                continue
            seen.add(id(tensor))
            total += int(tensor.numel()) * int(tensor.element_size())
    return total


def default_budget_bytes() -> int:
    return int(psutil.virtual_memory().total * DEFAULT_BUDGET_FRACTION)


class PipelineCache:
    """model_type -> a loaded pipeline, holding at most ``budget_bytes`` (estimated).

    A pipeline larger than the whole budget is still kept, alone, until the next one comes:
    the task that loaded it could not run otherwise, and the one after may reuse it.
    """

    def __init__(
        self, budget_bytes: int | None = None, *, release: Callable[[], None] | None = None
    ) -> None:
        self.budget_bytes = default_budget_bytes() if budget_bytes is None else budget_bytes
        self._release = release if release is not None else release_memory
        self._items: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, model_type: str) -> Any | None:
        with self._lock:
            item = self._items.get(model_type)
            if item is None:
                return None
            self._items.move_to_end(model_type)
            return item[0]

    def put(self, model_type: str, pipe: Any, size_bytes: int | None = None) -> None:
        """Keep ``pipe``, evicting the least recently used until the budget holds it."""
        size = estimate_bytes(pipe) if size_bytes is None else size_bytes
        evicted: list[str] = []
        with self._lock:
            self._items.pop(model_type, None)
            while self._items and self._used_locked() + size > self.budget_bytes:
                name, _ = self._items.popitem(last=False)
                evicted.append(name)
            self._items[model_type] = (pipe, size)
        if evicted:
            logger.info("unloaded %s to make room for %s", ", ".join(evicted), model_type)
            self._release()

    def evict(self, model_type: str) -> bool:
        with self._lock:
            found = self._items.pop(model_type, None) is not None
        if found:
            self._release()
        return found

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
        self._release()

    @property
    def used_bytes(self) -> int:
        with self._lock:
            return self._used_locked()

    def _used_locked(self) -> int:
        return sum(size for _, size in self._items.values())

    def __contains__(self, model_type: object) -> bool:
        with self._lock:
            return model_type in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


def release_memory() -> None:
    """Collect garbage and give cached CUDA blocks back, so an evicted model's memory is free."""
    gc.collect()
    torch: Any = sys.modules.get("torch")
    cuda = getattr(torch, "cuda", None)
    try:
        if cuda is not None and cuda.is_initialized():
            cuda.empty_cache()
    except Exception:
        logger.debug("could not empty the CUDA cache", exc_info=True)
