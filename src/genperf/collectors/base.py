"""The Collector protocol: one method, ``collect()``.

A collector returns a partial mapping of :class:`genperf.records.SystemSample` field names to
values (e.g. ``{"cpu_percent": 12.5, "ram_used_bytes": ...}`` or ``{"gpus": (GpuReading, ...)}``).
The sampler merges the mappings of all collectors into one sample. A collector that cannot read
a value leaves it out (None); one that raises is logged once by the sampler and the tick goes on.
Collectors know nothing of tasks or storage.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Collector(Protocol):
    """Reads part of a system sample. Must be cheap and never block (no sleeping intervals)."""

    name: str

    def collect(self) -> dict[str, Any]:
        """Return SystemSample field values; leave out what is unknown."""
        ...
