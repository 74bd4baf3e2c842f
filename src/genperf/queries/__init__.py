"""The query layer: every read of genperf, answered as the response models of
:mod:`genperf.queries.models`. The API's routers and the CLI's local source both call
:class:`~genperf.queries.reads.Queries`; the CLI's remote source parses the same models.
"""

from genperf.queries.reads import EVERY, Filters, Queries

__all__ = ["EVERY", "Filters", "Queries"]
