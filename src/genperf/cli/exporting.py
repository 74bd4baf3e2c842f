"""The local side of ``genperf export``: the query layer's export, written to a file.

The document is :meth:`genperf.queries.Queries.export`'s, the one the API's export streams
(records streamed from the store in batches, so memory stays bounded); this module writes it
and counts the tasks for the bar.
:class:`ExportRequest`, :class:`ExportProgress` and :class:`ExportResult` are defined here,
below ``source.py``,
which imports this module (never the other way round).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Protocol

from genperf.queries import Queries


@dataclass(frozen=True)
class ExportRequest:
    """What to export: the format (one of ``EXPORT_FORMATS``), the window, the nodes (empty:
    every node). Where it goes and who hears of progress are the export's other arguments."""

    fmt: str
    hours: float
    nodes: Sequence[str] = ()


class ExportProgress(Protocol):
    """Told how an export advances: ``start`` once, then ``advance`` as units are written."""

    def start(self, total: int | None, unit: str) -> None: ...

    def advance(self, amount: int) -> None: ...


@dataclass(frozen=True)
class ExportResult:
    tasks: int | None  # None when the server does not say
    bytes_written: int


def export_local(
    queries: Queries, request: ExportRequest, out: IO[bytes], progress: ExportProgress
) -> ExportResult:
    """Write the export ``request`` asks for to ``out``; ``progress`` hears of each task."""
    document = queries.export(
        request.fmt, request.hours, nodes=request.nodes, each=lambda _: progress.advance(1)
    )
    progress.start(document.count, "tasks")
    written = 0
    for chunk in document.chunks:
        data = chunk.encode("utf-8")
        out.write(data)
        written += len(data)
    return ExportResult(document.count, written)
