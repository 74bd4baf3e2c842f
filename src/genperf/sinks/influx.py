"""The InfluxDB live sink: line protocol to InfluxDB 1.x's ``POST /write`` through httpx.

``influxdb_url`` is the server (``http://host:8086``; credentials as ``http://user:pass@host``
go as HTTP basic auth, which InfluxDB 1.x accepts), ``influxdb_database`` the database. A
database that does not exist yet is created once (``CREATE DATABASE`` is idempotent in 1.x;
without the admin right it stays an error in the log). A connection error, a timeout, a 5xx or
a 429 keeps the batch for a retry; any other refusal (a 400: bad points, a field's type
conflict) drops it, counted. Rewriting a batch after an error is safe: a point is keyed by its
series and time, so a retried task replaces itself (see :mod:`genperf.exporters.influx`).
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from genperf.exporters.influx import sample_lines, task_line
from genperf.records import SystemSample, TaskRecord
from genperf.sinks.base import BatchingSink, QueueLimits, SinkRefusedError, SinkRetryError


class InfluxSink(BatchingSink[bytes]):
    """Tasks and samples to an InfluxDB 1.x database."""

    def __init__(
        self,
        url: str,
        database: str,
        limits: QueueLimits,
        *,
        timeout_seconds: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__("influxdb", limits)
        self.database = database
        self._client = httpx.Client(
            base_url=url.rstrip("/"), timeout=timeout_seconds, transport=transport
        )
        self._database_checked = False

    def encode(self, tasks: Sequence[TaskRecord], samples: Sequence[SystemSample]) -> bytes:
        lines = [task_line(record) for record in tasks]
        for sample in samples:
            lines.extend(sample_lines(sample))
        return "\n".join(lines).encode("utf-8")

    def send(self, payload: bytes) -> None:
        if not payload:
            return
        response = self._post(
            "/write", params={"db": self.database, "precision": "ns"}, content=payload
        )
        if response.status_code == 404 and not self._database_checked:
            self._create_database()
            response = self._post(
                "/write", params={"db": self.database, "precision": "ns"}, content=payload
            )
        _check(response)

    def _create_database(self) -> None:
        self._database_checked = True
        _check(self._post("/query", data={"q": f'CREATE DATABASE "{self.database}"'}))

    def _post(self, path: str, **kwargs: object) -> httpx.Response:
        try:
            return self._client.post(path, **kwargs)  # type: ignore[arg-type]
        except httpx.HTTPError as exc:
            raise SinkRetryError(f"{type(exc).__name__}: {exc}") from exc

    def _close_endpoint(self) -> None:
        self._client.close()


def _check(response: httpx.Response) -> None:
    code = response.status_code
    if code < 300:
        return
    text = response.text.strip()[:300]
    if code >= 500 or code in (404, 408, 429):
        raise SinkRetryError(f"InfluxDB answered {code}: {text}")
    raise SinkRefusedError(f"InfluxDB answered {code}: {text}")
