"""The Elasticsearch live sink: task documents through the official client's bulk helpers
(the ``elasticsearch`` extra), with the queue rules of every sink (:mod:`genperf.sinks.base`).

Each task is indexed under its ``run_id`` (see :mod:`genperf.exporters.elastic`), so a batch
sent again after an error replaces its documents rather than duplicating them. A connection
error, a timeout, a 429 or a 5xx (for the request or for any document in it) keeps the batch
for a retry with back-off; documents refused for good (a mapping conflict: 400) are dropped
and counted, the rest of their batch is indexed. The index template
(``deploy/elasticsearch/``) is the operator's to install; the sink only writes documents.

The client's major version must match the server's (``elasticsearch>=9`` talks to
Elasticsearch 9; pin ``elasticsearch>=8,<9`` for an 8.x cluster).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from elasticsearch import ApiError, Elasticsearch, TransportError
from elasticsearch.helpers import streaming_bulk

from genperf.exporters.elastic import bulk_action
from genperf.records import SystemSample, TaskRecord
from genperf.sinks.base import BatchingSink, QueueLimits, SinkRefusedError, SinkRetryError


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


class ElasticSink(BatchingSink[list[dict[str, Any]]]):
    """Task documents to an Elasticsearch index (or alias, or data stream's index pattern)."""

    def __init__(
        self,
        url: str,
        index: str,
        limits: QueueLimits,
        *,
        timeout_seconds: float = 10.0,
        client: Elasticsearch | None = None,
    ) -> None:
        super().__init__("elasticsearch", limits, takes_samples=False)
        self.index = index
        self.client = (
            client
            if client is not None
            else Elasticsearch(url, request_timeout=timeout_seconds, max_retries=0)
        )

    def encode(
        self, tasks: Sequence[TaskRecord], samples: Sequence[SystemSample]
    ) -> list[dict[str, Any]]:
        return [bulk_action(record, self.index) for record in tasks]

    def send(self, payload: list[dict[str, Any]]) -> None:
        if not payload:
            return
        refused: list[str] = []
        retry: list[str] = []
        try:
            for ok, item in streaming_bulk(
                self.client,
                payload,
                chunk_size=len(payload),
                raise_on_error=False,
                raise_on_exception=True,
                max_retries=0,  # the sink's own back-off retries
            ):
                if ok:
                    continue
                result = next(iter(item.values()))
                status = int(result.get("status", 500))
                reason = f"{result.get('_id')}: {status} {result.get('error')}"
                (retry if _retryable(status) else refused).append(reason)
        except ApiError as exc:
            if _retryable(exc.meta.status):
                raise SinkRetryError(f"Elasticsearch answered {exc.meta.status}: {exc}") from exc
            raise SinkRefusedError(f"Elasticsearch answered {exc.meta.status}: {exc}") from exc
        except TransportError as exc:  # connection refused, timeout, TLS
            raise SinkRetryError(f"{type(exc).__name__}: {exc}") from exc
        if retry:  # documents indexed meanwhile are replaced (same _id) by the retry
            raise SinkRetryError(f"{len(retry)} documents not indexed yet, e.g. {retry[0]}")
        if refused:
            raise SinkRefusedError(
                f"{len(refused)} documents refused, e.g. {refused[0]}", tasks=len(refused)
            )

    def _close_endpoint(self) -> None:
        self.client.close()
