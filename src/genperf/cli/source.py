"""Where the command line reads from: the local database, or a running genperf server.

Both sources give the same payloads, the JSON of the query layer's response models
(``genperf.queries.models``), so every command draws the same screen and prints the same
``--json`` either way:

* :class:`LocalSource` reads the store the monitored service writes
  (``settings.resolved_database_url``) through :class:`genperf.queries.Queries` (the code the
  API's routers call), and samples this host with the monitor's own collectors. It never
  creates a database: a SQLite file that does not exist yet is "no data yet", said in one
  line.
* :class:`HttpSource` asks a server (``--url`` / ``GENPERF_URL``) with a Bearer token
  (``--token`` / ``GENPERF_TOKEN``), through httpx, and parses each answer as the same model.
  An unreachable server, a refused token or an answer that is not genperf's becomes one
  :class:`SourceError` line.

Payloads (each is also what ``--json`` prints), by endpoint of the API:

``status``      ``GET /status``: ``{timestamp, monitoring, system, active_tasks, monitor}``.
                Locally ``monitor`` is null (no monitor runs in the CLI), ``monitoring``
                describes the service as the database shows it (its newest stored sample),
                and three keys are added: ``database_available``, ``database_error`` (when
                it is not) and ``settings`` (the settings in use, redacted).
``analysis``    ``GET /analysis``: the report (the spec's ``performance_analysis`` and more)
``tasks``       ``GET /metrics``: ``{time_window_hours, model_type, success_only, total, limit,
                nodes, offset, next_offset, metrics}``
``benchmarks``  ``GET /benchmarks``: ``{time_window_hours, targets, benchmarks}``
``live``        the status payload plus ``recent``: the newest finished tasks
``nodes``       ``GET /nodes``: ``{time_window_hours, timestamp, targets, nodes}``
``predict``     ``POST /predict``: the prediction (``PredictionOut``)
``impact``      ``GET /impact``: ``{time_window_hours, model_type, tasks, optimizations}``
``forecast``    ``GET /forecast``: ``{time_window_hours, classes, capacity}``
``config_changes`` ``GET /config-changes``: ``{time_window_hours, compare_hours, changes}``

Every read but ``live`` takes ``nodes`` (the API's repeatable ``node``): those nodes only.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ValidationError

from genperf.cli.exporting import ExportProgress, ExportRequest, ExportResult, export_local
from genperf.config import Settings, redact_url
from genperf.errors import GenperfError
from genperf.queries import EVERY, Filters, Queries
from genperf.queries.models import (
    AnalysisOut,
    BenchmarksOut,
    ConfigChangesOut,
    ForecastOut,
    ImpactListOut,
    MetricsPage,
    NodesOut,
    PredictionOut,
    SampleOut,
    StatusOut,
)
from genperf.queries.reads import active_task as queries_active_task
from genperf.records import SystemSample, TaskRecord, TaskStatus, utc_now
from genperf.storage.base import Store

if TYPE_CHECKING:
    import httpx

    from genperf.collectors.base import Collector
    from genperf.monitor.sampler import Sampler

API_PREFIX = "/api/v1/performance"
RECENT_TASKS = 5
# `genperf tasks` looks back this far unless told otherwise (the longest window the API takes).
ALL_HOURS = 24.0 * 365


class SourceError(GenperfError):
    """The data cannot be read: no database yet, server unreachable, token refused ..."""


class NoDataError(SourceError):
    """The local database does not exist yet: nothing has been monitored here."""


class ServerUnreachableError(SourceError):
    """No genperf server answers at the URL."""


class AuthError(SourceError):
    """The server refused the token (401) or the token lacks the role (403)."""


class Source(Protocol):
    """What every command reads. Payloads are JSON-ready dicts in the API's shape."""

    @property
    def where(self) -> str:
        """Where the data comes from, for people ("local database ...", "server ...")."""

    def status(self, *, nodes: Sequence[str] = ()) -> dict[str, Any]: ...

    def analysis(self, hours: float, filters: Filters = EVERY) -> dict[str, Any]: ...

    def tasks(
        self, limit: int, *, hours: float | None = None, filters: Filters = EVERY
    ) -> dict[str, Any]: ...

    def benchmarks(self, hours: float, *, nodes: Sequence[str] = ()) -> dict[str, Any]: ...

    def live(self, recent: int = RECENT_TASKS) -> dict[str, Any]: ...

    def predict(self, question: dict[str, Any]) -> dict[str, Any]: ...

    def impact(self, hours: float, model_type: str | None = None) -> dict[str, Any]: ...

    def forecast(self, hours: float) -> dict[str, Any]: ...

    def config_changes(self, hours: float, compare_hours: float, limit: int) -> dict[str, Any]: ...

    def nodes(self, hours: float, *, nodes: Sequence[str] = ()) -> dict[str, Any]: ...

    def export(
        self, request: ExportRequest, out: IO[bytes], progress: ExportProgress
    ) -> ExportResult: ...

    def close(self) -> None: ...


def open_source(settings: Settings, *, url: str | None = None, token: str | None = None) -> Source:
    """A server's source when ``url`` is given, else the local database's."""
    if url:
        return HttpSource(url, token)
    if token:
        raise SourceError("--token needs --url (or GENPERF_URL): the local database takes none")
    return LocalSource(settings)


# --- local -------------------------------------------------------------------------------


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL, or None for another database or an in-memory one."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite":
        return None
    if parsed.database in (None, "", ":memory:") or parsed.query.get("mode") == "memory":
        return None
    return Path(parsed.database)


class LocalSource:
    """Reads the local store (or any store passed in) and samples this host.

    Args:
        settings: the database, the targets and the collectors' configuration.
        store: a store to read instead of opening ``settings.resolved_database_url``.
        collectors: what to sample this host with (default: the monitor's own collectors).
        wall_clock: "now", for windows and elapsed times.
        cpu_warmup_seconds: psutil measures CPU between two readings; the first sample waits
            this long after the collectors are made so that its CPU figure means something.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        store: Store | None = None,
        collectors: Sequence[Collector] | None = None,
        wall_clock: Callable[[], datetime] = utc_now,
        cpu_warmup_seconds: float = 0.25,
    ) -> None:
        self.settings = settings
        self.node = settings.node_name or socket.gethostname()
        self._store = store
        self._owns_store = store is None
        self._collectors = collectors
        self._sampler: Sampler | None = None
        self._now = wall_clock
        self._warmup = cpu_warmup_seconds

    @property
    def where(self) -> str:
        return f"local database {redact_url(self.settings.resolved_database_url)}"

    # -- payloads: the query layer's models, as JSON ----------------------------------------

    def queries(self) -> Queries:
        """The query layer over this source's store: the API answers with the same code."""
        return Queries(self.settings, self.store, now=self._now)

    def status(self, *, nodes: Sequence[str] = ()) -> dict[str, Any]:
        from genperf.collectors import gpu_monitoring_state

        sample = self._sample()
        assert self._sampler is not None  # _sample() made it
        gpu = gpu_monitoring_state(self.settings, self._sampler.collectors)
        payload = _json(self.queries().stored_status(sample, self.node, gpu))
        if payload["database_error"] is None:
            del payload["database_error"]
        if nodes:  # as the API's status: the running tasks of these nodes only
            active = payload["active_tasks"]
            payload["active_tasks"] = [t for t in active if t["node"] in nodes]
        return payload

    def analysis(self, hours: float, filters: Filters = EVERY) -> dict[str, Any]:
        return _json(self.queries().analysis(hours, filters))

    def tasks(
        self, limit: int, *, hours: float | None = None, filters: Filters = EVERY
    ) -> dict[str, Any]:
        window = ALL_HOURS if hours is None else hours
        return _json(self.queries().metrics_page(window, limit=limit, filters=filters))

    def benchmarks(self, hours: float, *, nodes: Sequence[str] = ()) -> dict[str, Any]:
        return _json(self.queries().benchmarks(hours, nodes=nodes))

    def nodes(self, hours: float, *, nodes: Sequence[str] = ()) -> dict[str, Any]:
        return _json(self.queries().nodes(hours, nodes=nodes))

    def live(self, recent: int = RECENT_TASKS) -> dict[str, Any]:
        payload = self.status()
        payload.pop("settings", None)
        payload["recent"] = []
        if payload["database_available"]:
            payload["recent"] = [_json(t) for t in self.queries().recent(recent)]
        return payload

    def export(
        self, request: ExportRequest, out: IO[bytes], progress: ExportProgress
    ) -> ExportResult:
        return export_local(self.queries(), request, out, progress)

    def close(self) -> None:
        if self._owns_store and self._store is not None:
            self._store.close()
        self._store = None

    def predict(self, question: dict[str, Any]) -> dict[str, Any]:
        """``POST /predict``'s answer, fitted here from the local history."""
        q = dict(question)
        model_type, resolution = q.pop("model_type"), q.pop("resolution")
        frames, steps = q.pop("frames"), q.pop("steps")
        return _json(self.queries().predict(model_type, resolution, frames, steps, **q))

    def impact(self, hours: float, model_type: str | None = None) -> dict[str, Any]:
        return _json(self.queries().impact(hours, model_type=model_type))

    def forecast(self, hours: float) -> dict[str, Any]:
        return _json(self.queries().forecast(hours))

    def config_changes(self, hours: float, compare_hours: float, limit: int) -> dict[str, Any]:
        return _json(self.queries().config_changes(hours, compare_hours=compare_hours, limit=limit))

    # -- helpers ---------------------------------------------------------------------------

    def store(self) -> Store:
        """The store, opened on first use. A SQLite file is never created by a reader."""
        if self._store is None:
            url = self.settings.resolved_database_url
            path = sqlite_path(url)
            if path is not None and not path.exists():
                raise NoDataError(
                    f"no data yet: the database {path} does not exist. It is created when a "
                    "monitored service runs (try `genperf serve --demo`), or set "
                    "GENPERF_DATABASE_URL to the service's database."
                )
            from genperf.storage import open_store

            self._store = open_store(url)
        return self._store

    def _sample(self) -> SystemSample:
        if self._sampler is None:
            from genperf.collectors import default_collectors
            from genperf.monitor.sampler import Sampler

            collectors = self._collectors
            if collectors is None:
                collectors = default_collectors(self.settings)
            self._sampler = Sampler(
                collectors,
                self.settings.monitoring_interval_seconds,
                lambda *_: None,
                node=self.node,
                wall_clock=self._now,
            )
            if self._warmup > 0:
                time.sleep(self._warmup)  # psutil's CPU figure is a rate over this pause
        return self._sampler.sample_once()


def _with_nodes(params: dict[str, Any], nodes: Sequence[str]) -> dict[str, Any]:
    """The query parameters with the node filter (``node`` once per node)."""
    return {**params, "node": list(nodes)} if nodes else params


def _filtered(params: dict[str, Any], filters: Filters) -> dict[str, Any]:
    """The query parameters with the filters the API takes (only those set)."""
    out = _with_nodes(params, filters.nodes)
    if filters.model_type is not None:
        out["model_type"] = filters.model_type
    if filters.success_only:
        out["success_only"] = "true"
    return out


def _json(model: BaseModel) -> dict[str, Any]:
    """A response model as the JSON the API sends (what ``--json`` prints)."""
    data: dict[str, Any] = model.model_dump(mode="json")
    return data


def sample_json(sample: SystemSample) -> dict[str, Any]:
    """A sample as the API serves it (``SampleOut``): each GPU with its memory_percent."""
    return _json(SampleOut.model_validate(sample))


def active_task(record: TaskRecord, phase: str | None = None) -> dict[str, Any]:
    """A running task as the API serves it (``ActiveTaskOut``): the record and its phase."""
    return _json(queries_active_task(record, phase))


# --- remote ------------------------------------------------------------------------------


class HttpSource:
    """Reads a genperf server's REST API.

    Args:
        url: the server's base URL, e.g. ``http://127.0.0.1:8000``.
        token: the Bearer token (a ``read`` token; ``export`` needs ``admin``).
        transport: an httpx transport to use instead of the network (tests).
        timeout: seconds to wait for the server to connect and answer.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10.0,
    ) -> None:
        try:
            import httpx
        except ImportError:  # pragma: no cover - httpx ships with genperf's CLI extras
            raise SourceError("reading a server needs httpx: pip install httpx") from None
        self._httpx = httpx
        self.url = _safe_url(url.rstrip("/"))
        if not url.startswith(("http://", "https://")):
            raise SourceError(f"--url must start with http:// or https://, got {self.url!r}")
        headers = {"Accept": "application/json", "User-Agent": "genperf-cli"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._has_token = bool(token)
        self._client = httpx.Client(
            base_url=url.rstrip("/") + API_PREFIX,
            headers=headers,
            timeout=timeout,
            transport=transport,
        )

    @property
    def where(self) -> str:
        return f"server {self.url}"

    def status(self, *, nodes: Sequence[str] = ()) -> dict[str, Any]:
        return self._parsed(StatusOut, "GET", "/status", params=_with_nodes({}, nodes))

    def analysis(self, hours: float, filters: Filters = EVERY) -> dict[str, Any]:
        params = _filtered({"time_window_hours": hours}, filters)
        return self._parsed(AnalysisOut, "GET", "/analysis", params=params)

    def tasks(
        self, limit: int, *, hours: float | None = None, filters: Filters = EVERY
    ) -> dict[str, Any]:
        window = ALL_HOURS if hours is None else hours
        params = _filtered({"time_window_hours": window, "limit": limit, "offset": 0}, filters)
        return self._parsed(MetricsPage, "GET", "/metrics", params=params)

    def benchmarks(self, hours: float, *, nodes: Sequence[str] = ()) -> dict[str, Any]:
        params = _with_nodes({"time_window_hours": hours}, nodes)
        return self._parsed(BenchmarksOut, "GET", "/benchmarks", params=params)

    def nodes(self, hours: float, *, nodes: Sequence[str] = ()) -> dict[str, Any]:
        params = _with_nodes({"time_window_hours": hours}, nodes)
        return self._parsed(NodesOut, "GET", "/nodes", params=params)

    def doctor(self) -> dict[str, Any]:
        """The server's own checks (its sampler and store queue included)."""
        return self._json("GET", "/doctor")

    def live(self, recent: int = RECENT_TASKS) -> dict[str, Any]:
        payload = self.status()
        # Running tasks are in the page too (the status lists them): ask for enough to fill
        # ``recent`` with finished ones while a few run.
        page = self._parsed(
            MetricsPage,
            "GET",
            "/metrics",
            params={
                "time_window_hours": ALL_HOURS,
                "limit": recent + len(payload.get("active_tasks") or ()) + 5,
            },
        )
        finished = [
            t for t in page.get("metrics") or () if t.get("status") != TaskStatus.RUNNING.value
        ]
        payload["recent"] = finished[:recent]
        return payload

    def export(
        self, request: ExportRequest, out: IO[bytes], progress: ExportProgress
    ) -> ExportResult:
        params: dict[str, Any] = {"time_window_hours": request.hours, "format": request.fmt}
        params = _with_nodes(params, request.nodes)
        written = 0
        head = b""
        with self._errors("POST", "/export"):
            with self._client.stream("POST", "/export", params=params) as response:
                if response.status_code >= 400:
                    response.read()
                    self._check(response, "POST", "/export")
                length = response.headers.get("content-length")
                progress.start(int(length) if length and length.isdigit() else None, "bytes")
                for chunk in response.iter_bytes():
                    if len(head) < 512:
                        head += chunk[:512]
                    out.write(chunk)
                    written += len(chunk)
                    progress.advance(len(chunk))
        return ExportResult(metrics_count(head) if request.fmt == "json" else None, written)

    def close(self) -> None:
        self._client.close()

    def predict(self, question: dict[str, Any]) -> dict[str, Any]:
        return self._parsed(PredictionOut, "POST", "/predict", body=question)

    def impact(self, hours: float, model_type: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"time_window_hours": hours}
        if model_type is not None:
            params["model_type"] = model_type
        return self._parsed(ImpactListOut, "GET", "/impact", params=params)

    def forecast(self, hours: float) -> dict[str, Any]:
        params = {"time_window_hours": hours}
        return self._parsed(ForecastOut, "GET", "/forecast", params=params)

    def config_changes(self, hours: float, compare_hours: float, limit: int) -> dict[str, Any]:
        params = {"time_window_hours": hours, "compare_hours": compare_hours, "limit": limit}
        return self._parsed(ConfigChangesOut, "GET", "/config-changes", params=params)

    # -- helpers ---------------------------------------------------------------------------

    def _json(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        with self._errors(method, path):
            response = self._client.request(method, path, params=params, json=body)
        self._check(response, method, path)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise SourceError(
                f"{self.url} is not a genperf server: {method} {API_PREFIX}{path} "
                "did not answer a JSON object"
            )
        return body

    def _parsed(
        self,
        model: type[BaseModel],
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The answer read as the response model the API declares (so local and remote
        payloads are the same JSON), or a SourceError saying the server is not genperf's."""
        answer = self._json(method, path, params=params, body=body)
        try:
            return _json(model.model_validate(answer))
        except ValidationError as exc:
            raise SourceError(
                f"{self.url} is not a genperf server of this version: it answered {method} "
                f"{API_PREFIX}{path} with what is not a {model.__name__} "
                f"({exc.error_count()} field(s) missing or wrong)"
            ) from None

    def _errors(self, method: str, path: str) -> AbstractContextManager[None]:
        return _translate_http_errors(self._httpx, self.url, f"{method} {API_PREFIX}{path}")

    def _check(self, response: httpx.Response, method: str, path: str) -> None:
        code = response.status_code
        if code < 400:
            return
        detail = _error_detail(response)
        what = f"{method} {API_PREFIX}{path}"
        if code == 401:
            hint = (
                "the token was not accepted"
                if self._has_token
                else "it needs a token: pass --token or set GENPERF_TOKEN"
            )
            raise AuthError(f"the server {self.url} refused {what} (401): {hint}")
        if code == 403:
            raise AuthError(
                f"the server {self.url} refused {what} (403): the token lacks the role it needs"
                + (f" ({detail})" if detail else "")
            )
        if code == 404 and not detail:
            raise SourceError(f"{self.url} is not a genperf server: {what} is not found (404)")
        raise SourceError(
            f"the server {self.url} answered {what} with {code}" + (f": {detail}" if detail else "")
        )


@contextmanager
def _translate_http_errors(httpx_module: Any, url: str, what: str) -> Iterator[None]:
    """httpx's exceptions as one-line SourceErrors that name the server, never a traceback."""
    try:
        yield
    except httpx_module.TimeoutException:
        raise ServerUnreachableError(f"the server {url} did not answer {what} in time") from None
    except httpx_module.TransportError as exc:
        reason = _first_line(exc) or type(exc).__name__
        raise ServerUnreachableError(
            f"cannot reach the genperf server at {url} ({reason})"
        ) from None
    except httpx_module.HTTPError as exc:
        raise SourceError(f"{what} at {url} failed: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else ""


def _error_detail(response: httpx.Response) -> str:
    """The message of the API's error body ({"message": ...} or FastAPI's {"detail": ...})."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict):
        if isinstance(body.get("error"), dict):
            body = body["error"]
        message = body.get("message") or body.get("detail")
        if isinstance(message, str):
            return message
        if message is not None:
            return str(message)[:300]
    return ""


_METRICS_COUNT = re.compile(rb'"metrics_count"\s*:\s*(\d+)')


def metrics_count(head: bytes) -> int | None:
    """The ``metrics_count`` of a JSON export from its first bytes (the exporter writes it
    before the records), or None."""
    match = _METRICS_COUNT.search(head)
    return int(match.group(1)) if match else None


def _safe_url(url: str) -> str:
    """The URL without credentials, for messages."""
    return redact_url(url)
