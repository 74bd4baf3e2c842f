"""The sources' edges: servers that are not genperf, answers that break, refreshes that fail.

The HTTP source takes an httpx transport, so these use httpx's own MockTransport to play the
odd servers a real network has; the real genperf server is in test_remote.py.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console
from rich.text import Text

from genperf.cli.commands_monitor import run_live
from genperf.cli.decode import PayloadError, sample_from_json, task_from_json
from genperf.cli.exporting import ExportRequest
from genperf.cli.source import (
    AuthError,
    HttpSource,
    LocalSource,
    NoDataError,
    ServerUnreachableError,
    SourceError,
    metrics_count,
    sqlite_path,
)
from genperf.config import Settings
from genperf.errors import StoreUnavailableError
from genperf.queries import Filters
from genperf.records import SystemSample
from genperf.testing import make_task

from .conftest import HOST_READINGS, NOW

URL = "http://gpu-box:8000"


def source(handler: Callable[[httpx.Request], httpx.Response], token: str = "t") -> HttpSource:
    return HttpSource(URL, token, transport=httpx.MockTransport(handler))


def test_requests_carry_the_token_and_the_apis_parameters() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        page = {
            "time_window_hours": 8760.0,
            "model_type": "t2v-A14B",
            "success_only": True,
            "total": 0,
            "limit": 5,
            "offset": 0,
            "next_offset": None,
            "metrics": [],
        }
        return httpx.Response(200, json=page)

    filters = Filters(model_type="t2v-A14B", success_only=True)
    source(handler, token="s3cret").tasks(5, filters=filters)
    (request,) = seen
    assert request.headers["authorization"] == "Bearer s3cret"
    assert request.url.path == "/api/v1/performance/metrics"
    assert dict(request.url.params) == {
        "time_window_hours": "8760.0",
        "limit": "5",
        "offset": "0",
        "model_type": "t2v-A14B",
        "success_only": "true",
    }


@pytest.mark.parametrize(
    ("response", "error", "message"),
    [
        (httpx.Response(404, text="Not Found"), SourceError, "is not a genperf server"),
        (httpx.Response(200, text="<html>hello</html>"), SourceError, "did not answer a JSON"),
        (httpx.Response(200, json=[1, 2]), SourceError, "did not answer a JSON object"),
        (
            httpx.Response(200, json={"timestamp": "now"}),
            SourceError,
            "answered GET /api/v1/performance/status with what is not a StatusOut",
        ),
        (
            httpx.Response(
                503, json={"error": {"code": "unavailable", "message": "database down"}}
            ),
            SourceError,
            "answered GET /api/v1/performance/status with 503: database down",
        ),
        (httpx.Response(403, json={"detail": "admin only"}), AuthError, "(admin only)"),
    ],
)
def test_odd_answers_become_one_clear_error(
    response: httpx.Response, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as caught:
        source(lambda _: response).status()
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_network_failures_name_the_server_and_never_the_credentials() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with_password = HttpSource(
        "http://bob:hunter2@gpu-box:8000", "t", transport=httpx.MockTransport(refuse)
    )
    with pytest.raises(ServerUnreachableError) as caught:
        with_password.tasks(3)
    assert "hunter2" not in str(caught.value) and "Connection refused" in str(caught.value)
    with pytest.raises(ServerUnreachableError, match=r"did not answer GET .* in time"):
        source(hang).analysis(24.0)


def test_a_broken_export_leaves_nothing_and_says_why() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b'{"export_timestamp":"x","metrics_count":12,')

    out = io.BytesIO()

    class Quiet:
        def start(self, total: int | None, unit: str) -> None:
            assert unit == "bytes"

        def advance(self, amount: int) -> None:
            pass

    result = source(handler).export(ExportRequest("json", 24.0), out, Quiet())
    assert result.tasks == 12  # read from the document's head
    assert metrics_count(b'{"a":1,"metrics_count": 7,') == 7
    assert metrics_count(b"no count here") is None


def test_a_record_that_is_not_a_record_is_a_payload_error() -> None:
    with pytest.raises(PayloadError, match="a task record could not be read"):
        task_from_json({"task_id": "x"})
    with pytest.raises(PayloadError, match="a system sample could not be read"):
        sample_from_json({"node": "n"})


def test_records_survive_the_round_trip_through_json() -> None:
    record = make_task(phases=(), optimizations_applied=("dtype:bf16", "vae_tiling"))
    assert task_from_json(json.loads(json.dumps(record.to_dict()))) == record
    sample = SystemSample(taken_at=NOW, node="n", **HOST_READINGS)
    from genperf.cli.source import sample_json

    assert sample_from_json(json.loads(json.dumps(sample_json(sample)))) == sample


def test_newer_servers_may_send_fields_this_cli_does_not_know() -> None:
    data = make_task().to_dict() | {"a_field_from_the_future": 1}
    assert task_from_json(data).task_id == data["task_id"]


# --- local ---------------------------------------------------------------------------------


def test_sqlite_paths() -> None:
    assert sqlite_path("sqlite:////data/genperf.db") == Path("/data/genperf.db")
    assert sqlite_path("sqlite://") is None
    assert sqlite_path("sqlite:///:memory:") is None
    assert sqlite_path("postgresql://u:p@h/db") is None
    assert sqlite_path("not a url") is None


def test_the_local_source_never_creates_a_database(tmp_path: Path) -> None:
    local = LocalSource(Settings(data_dir=tmp_path / "nothing"), cpu_warmup_seconds=0)
    with pytest.raises(NoDataError, match="does not exist"):
        local.tasks(10)
    assert not (tmp_path / "nothing").exists()


def test_an_unreachable_database_is_reported_by_status_not_raised(tmp_path: Path) -> None:
    from genperf.testing import FakeCollector

    class Down:
        def running_tasks(self, node: str) -> Any:
            raise StoreUnavailableError("cannot read running tasks at postgresql://db: refused")

        def close(self) -> None:
            pass

    local = LocalSource(
        Settings(data_dir=tmp_path),
        store=Down(),  # type: ignore[arg-type]
        collectors=[FakeCollector(HOST_READINGS)],
        wall_clock=lambda: NOW,
        cpu_warmup_seconds=0,
    )
    payload = local.status()
    assert payload["database_available"] is False
    assert "refused" in payload["database_error"]
    assert payload["system"]["cpu_percent"] == 42.0


# --- the live loop -------------------------------------------------------------------------


def test_a_failed_refresh_keeps_the_last_frame_and_says_so() -> None:
    frames: Iterator[Text | Exception] = iter(
        [Text("frame one"), StoreUnavailableError("database is locked"), Text("three")]
    )

    def frame() -> Text:
        item = next(frames)
        if isinstance(item, Exception):
            raise item
        return item

    screen = io.StringIO()
    drawn = run_live(frame, Console(file=screen, width=80), 0.0, 2, sleep=lambda _: None)
    assert drawn == 2
    # Not a terminal: each frame as it comes, and the failure's note after the last good one.
    assert screen.getvalue() == "frame one\nrefresh failed, retrying: database is locked\n"


def test_ctrl_c_during_the_first_frame_or_a_pause_leaves_quietly() -> None:
    def interrupted() -> Text:
        raise KeyboardInterrupt

    screen = io.StringIO()
    assert run_live(interrupted, Console(file=screen), 1.0, None) == 0
    assert screen.getvalue() == ""

    def stop(_: float) -> None:
        raise KeyboardInterrupt

    drawn = run_live(lambda: Text("only"), Console(file=screen), 1.0, None, sleep=stop)
    assert drawn == 1
    assert screen.getvalue() == "only\n"
