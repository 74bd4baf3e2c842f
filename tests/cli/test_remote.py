"""The CLI against a real genperf server (uvicorn on loopback, in a thread), and the promise
that it shows the same thing as when it reads the same database directly.

The server is genperf's own API (``genperf.api.create_app``) with Bearer tokens; the CLI talks
to it over real HTTP through httpx.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from genperf.cli.context import CliState, state
from genperf.cli.source import ALL_HOURS, LocalSource, Source, open_source
from genperf.config import Settings
from genperf.records import PhaseRecord, TaskStatus, utc_now
from genperf.storage import SqlStore
from genperf.testing import FakeCollector, make_task, wait_until

from .conftest import HOST_READINGS, NODE, WIDTH

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")

READ_TOKEN = "read-token-0123456789"
ADMIN_TOKEN = "admin-token-0123456789"


def recent_tasks(now: datetime) -> list[Any]:
    """Tasks of the last few hours (the server's windows end at its own "now")."""
    start = now - timedelta(hours=5)
    out = [
        make_task(
            task_id=f"t720-{n}",
            node=NODE,
            started_at=start + timedelta(minutes=20 * n),
            generation_time_seconds=250.0 + 5 * n,
        )
        for n in range(6)
    ]
    out.append(
        make_task(
            task_id="t-oom",
            node=NODE,
            status=TaskStatus.FAILED,
            started_at=start + timedelta(hours=3),
            generation_time_seconds=None,
            peak_vram_usage_mb=81_000.0,
            error_category="out_of_memory_gpu",
            failed_phase="vae_decode",
            recovery_suggestions=("Enable VAE tiling.",),
        )
    )
    out.append(
        make_task(
            task_id="t1080",
            node=NODE,
            resolution="1920x1080",
            started_at=start + timedelta(hours=4),
            generation_time_seconds=1000.0,
        )
    )
    out.append(
        make_task(
            task_id="job-live",
            node=NODE,
            status=TaskStatus.RUNNING,
            started_at=now - timedelta(minutes=2),
            completed_at=None,
            generation_time_seconds=None,
            phases=(PhaseRecord("model_load", 0.0, 30.0),),
        )
    )
    return out


class Server:
    def __init__(self, db_url: str, data_dir: Path) -> None:
        from genperf.api import ApiSettings, create_app

        self.store = SqlStore(db_url)
        settings = Settings(
            data_dir=data_dir,
            node_name="server-node",  # not NODE: its restart recovery must leave those alone
            # No sample stored while a test runs: each comparison reads the shared database
            # twice, a moment apart, and a sample stored between the two reads changed the
            # analysis (its sample count and disk check). Reads of the live sample still work.
            monitoring_interval_seconds=3600,
            enable_gpu_monitoring=False,
        )
        app = create_app(
            settings,
            store=self.store,
            api_settings=ApiSettings(
                api_tokens=(f"read:{READ_TOKEN}", f"admin:{ADMIN_TOKEN}"),
                report_cache_seconds=0,
            ),
        )
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        wait_until(
            lambda: self.server.started,
            timeout=30,
            interval=0.02,
            what="the test server to start",
            alive=self.thread.is_alive,
        )
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.store.close()


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'data' / 'genperf.db'}"
    store = SqlStore(url)
    for record in recent_tasks(utc_now()):
        store.save_task(record)
    store.close()
    return url


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[str]:
    with Server(db_url, tmp_path / "server") as url:
        yield url


@pytest.fixture
def both(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str) -> Iterator[CliState]:
    """The CLI environment: the same database locally; a real clock; fixed host readings."""
    for name in ("GENPERF_URL", "GENPERF_TOKEN", "GENPERF_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GENPERF_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("GENPERF_NODE_NAME", NODE)
    monkeypatch.setenv("COLUMNS", str(WIDTH))

    def factory(st: CliState) -> Source:
        if st.url:
            return open_source(st.settings(), url=st.url, token=st.token)
        return LocalSource(
            st.settings(),
            collectors=[FakeCollector(HOST_READINGS, name="host")],
            cpu_warmup_seconds=0.0,
        )

    monkeypatch.setattr(state, "source_factory", factory)
    yield state
    state.close()


def run(*args: str, input: str | None = None) -> Any:
    from genperf.cli.app import app

    return CliRunner().invoke(app, list(args), input=input, terminal_width=WIDTH)


def out(result: Any) -> str:
    assert result.exit_code == 0, (result.output, result.exception)
    stdout: str = result.stdout
    return "\n".join(line.rstrip() for line in stdout.splitlines())


def error_line(result: Any) -> str:
    assert result.exit_code == 2, (result.output, result.exception)
    lines: list[str] = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def remote(url: str, *args: str, token: str = READ_TOKEN) -> Any:
    return run("--url", url, "--token", token, *args)


def normalised(value: Any) -> Any:
    """JSON with every timestamp as a datetime: the server writes "Z", Python "+00:00"."""
    if isinstance(value, dict):
        return {k: normalised(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalised(v) for v in value]
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and value[10] == "T":
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


pytestmark = pytest.mark.usefixtures("both")


@pytest.mark.parametrize(
    "args",
    [
        ("tasks", "6"),
        ("tasks", "50", "--success-only", "--hours", "4"),
        ("analysis",),
        ("analysis", "3"),
        ("analysis", "--success-only", "--model-type", "t2v-A14B"),
        ("benchmarks",),
    ],
)
def test_the_same_screen_from_the_server_and_from_the_database(
    server: str, args: tuple[str, ...]
) -> None:
    local = out(run(*args))
    assert local.strip()
    assert out(remote(server, *args)) == local


@pytest.mark.parametrize(
    ("args", "unstable"),
    [
        (("tasks", "4", "--json"), ()),
        (("benchmarks", "--json"), ()),
        (("analysis", "--json"), ("generated_at", "window")),
    ],
)
def test_the_same_json_from_the_server_and_from_the_database(
    server: str, args: tuple[str, ...], unstable: tuple[str, ...]
) -> None:
    local = normalised(json.loads(out(run(*args))))
    served = normalised(json.loads(out(remote(server, *args))))
    for key in unstable:  # the moment each report was made
        local.pop(key)
        served.pop(key)
    assert served == local


def test_status_and_the_live_view_from_a_server(server: str) -> None:
    data = json.loads(out(remote(server, "status", "--json")))
    assert data["monitoring"]["node"] == "server-node"
    shown = out(remote(server, "status"))
    assert "System status · server-node" in shown
    assert "Monitor: running on server-node" in shown
    assert "Monitor health: " in shown
    frame = out(remote(server, "monitor", "0.1", "--count", "2"))
    assert "Latest finished · times UTC" in frame and "t1080" in frame
    assert f"server {server} · every 0.1 s · Ctrl-C to quit" in frame


def test_the_live_view_lists_recent_tasks_like_the_local_one(server: str) -> None:
    local = json.loads(out(run("monitor", "1", "--count", "1", "--json")))
    served = json.loads(out(remote(server, "monitor", "1", "--count", "1", "--json")))
    assert [t["task_id"] for t in served["recent"]] == [t["task_id"] for t in local["recent"]]
    assert set(served) == set(local) - {"database_available", "database_error"}


def test_export_through_the_server_with_an_admin_token(server: str, tmp_path: Path) -> None:
    served_file = tmp_path / "served.csv"
    local_file = tmp_path / "local.csv"
    result = remote(server, "export", "-f", "csv", "-o", str(served_file), token=ADMIN_TOKEN)
    assert "Exported tasks of the last 24 h to" in out(result)
    out(run("export", "-f", "csv", "-o", str(local_file)))
    assert served_file.read_text() == local_file.read_text()
    result = remote(server, "export", "-o", str(tmp_path / "x.json"), token=ADMIN_TOKEN)
    assert "Exported 9 tasks of the last 24 h" in out(result)
    assert json.loads((tmp_path / "x.json").read_text())["metrics_count"] == 9


def test_the_interactive_mode_on_a_server(server: str) -> None:
    shown = out(run("--url", server, "--token", READ_TOKEN, input="tasks 2\nquit\n"))
    assert f"genperf interactive · server {server}" in shown
    assert "Recent tasks · 2 of 9" in shown


def test_a_wrong_token(server: str) -> None:
    line = error_line(remote(server, "tasks", token="not-a-token"))
    assert line == (
        f"genperf: the server {server} refused GET /api/v1/performance/metrics (401): "
        "the token was not accepted"
    )


def test_no_token(server: str) -> None:
    line = error_line(run("--url", server, "status"))
    assert line.endswith("(401): it needs a token: pass --token or set GENPERF_TOKEN")


def test_export_needs_the_admin_role(server: str, tmp_path: Path) -> None:
    line = error_line(remote(server, "export", "-o", str(tmp_path / "x.json")))
    assert line.startswith(
        f"genperf: the server {server} refused POST /api/v1/performance/export (403): "
        "the token lacks the role it needs"
    )
    assert not (tmp_path / "x.json").exists()
    assert not list(tmp_path.glob(".x.json.*"))  # nor a temporary file


def test_url_and_token_from_the_environment(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENPERF_URL", server)
    monkeypatch.setenv("GENPERF_TOKEN", READ_TOKEN)
    assert "Recent tasks · 1 of 9" in out(run("tasks", "1"))


def test_the_cli_takes_every_window_the_api_takes() -> None:
    from genperf.api.settings import MAX_WINDOW_HOURS
    from genperf.cli.context import MAX_HOURS

    assert MAX_HOURS == ALL_HOURS == MAX_WINDOW_HOURS


def test_the_local_payloads_have_the_apis_fields() -> None:
    from genperf.api.schemas import BenchmarksOut, MetricsPage, StatusOut

    from .test_commands import METRICS_PAGE_KEYS, STATUS_KEYS

    assert set(StatusOut.model_fields) == STATUS_KEYS
    assert set(MetricsPage.model_fields) == METRICS_PAGE_KEYS
    assert set(BenchmarksOut.model_fields) == {"time_window_hours", "targets", "benchmarks"}


def test_every_read_command_gives_the_same_fields_from_the_server_and_the_database(
    server: str, tmp_path: Path
) -> None:
    """The read commands the JSON test above does not cover, field by field (the query
    layer answers both; the remote source parses the same models)."""
    # the live view's recent tasks: every field of every task
    local = normalised(json.loads(out(run("monitor", "1", "--count", "1", "--json"))))
    served = normalised(json.loads(out(remote(server, "monitor", "1", "--count", "1", "--json"))))
    assert served["recent"] == local["recent"]
    live_served = served
    # the JSON export: the same document but for the moment it was made (of NODE: the
    # server's own node stores a sample every half second, so two moments differ there)
    out(run("export", "-o", str(tmp_path / "local.json"), "--node", NODE))
    exported = ("export", "-o", str(tmp_path / "served.json"), "--node", NODE)
    out(remote(server, *exported, token=ADMIN_TOKEN))
    documents = []
    for name in ("local.json", "served.json"):
        document = normalised(json.loads((tmp_path / name).read_text()))
        document.pop("export_timestamp")
        for key in ("generated_at", "window"):
            document["performance_analysis"].pop(key)
        documents.append(document)
    assert documents[0] == documents[1]
    # status: a server describes its live monitor and its own host, the database its
    # service (its stored running tasks), so the values differ by design: the fields agree
    status_local = json.loads(out(run("status", "--json")))
    status_served = json.loads(out(remote(server, "status", "--json")))
    for key in ("system", "monitoring"):
        assert set(status_served[key]) == set(status_local[key])
    assert set(status_served) == set(status_local) - {"database_available", "settings"}
    assert set(status_local["active_tasks"][0]) == set(live_served["recent"][0])


def test_node_filter_is_the_same_from_the_server_and_from_the_database(
    server: str, db_url: str
) -> None:
    store = SqlStore(db_url)
    other = "gpu-node-2"
    store.save_task(make_task(task_id="elsewhere", node=other, started_at=utc_now()))
    store.close()
    for args in (
        ("tasks", "20", "--json", "--node", other),
        ("tasks", "20", "--json", "--node", other, "--node", NODE),
        ("benchmarks", "--json", "--node", other),
    ):
        local = normalised(json.loads(out(run(*args))))
        assert normalised(json.loads(out(remote(server, *args)))) == local
    tasks = json.loads(out(run("tasks", "20", "--json", "--node", other)))
    assert [t["task_id"] for t in tasks["metrics"]] == ["elsewhere"]
    both_nodes = json.loads(
        out(remote(server, "tasks", "20", "--json", "--node", other, "--node", NODE))
    )
    assert both_nodes["total"] == len(recent_tasks(utc_now())) + 1
    analysed = json.loads(out(remote(server, "analysis", "--json", "--node", other)))
    assert (analysed["task_count"], analysed["filters"]["nodes"]) == (1, [other])
    shown = out(run("analysis", "--node", other))
    assert shown == out(remote(server, "analysis", "--node", other))
    status = json.loads(out(remote(server, "status", "--json", "--node", other)))
    assert status["active_tasks"] == []
    local_status = json.loads(out(run("status", "--json", "--node", NODE)))
    assert [t["task_id"] for t in local_status["active_tasks"]] == ["job-live"]


def test_nodes_from_the_server_and_from_the_database(server: str, db_url: str) -> None:
    from genperf.records import GpuReading, SystemSample

    now = utc_now()
    store = SqlStore(db_url)
    gpu = GpuReading(index=0, name="NVIDIA H200", temperature_celsius=88.0)
    # three hours old: down, and an age that reads "3 h" for half an hour either side, so the
    # four reads below (each a process, slow on a loaded machine) all render the same age
    store.save_samples(
        [SystemSample(now - timedelta(hours=3, seconds=i), NODE, gpus=(gpu,)) for i in range(3)]
    )
    store.close()
    # NODE's row only: the test server samples too (as server-node), and a row still being
    # written would not read the same twice
    just = ("--node", NODE)
    local = json.loads(out(run("nodes", "--json", *just)))
    served = json.loads(out(remote(server, "nodes", "--json", *just)))
    for payload in (local, served):
        payload.pop("timestamp")
        for row in payload["nodes"]:
            row.pop("last_sample_age_seconds")
    assert normalised(served) == normalised(local)
    (row,) = local["nodes"]
    assert (row["node"], row["state"], row["interval_seconds"]) == (NODE, "down", 1.0)
    assert row["p50_generation_time_seconds"]["720p"] == 262.5  # the six 250..275 s tasks
    shown = out(remote(server, "nodes", *just))
    assert shown == out(run("nodes", *just))
    assert f"{NODE}" in shown and "down" in shown and "NVIDIA H200" in shown
    assert "720p 262 s" in shown or "720p 263 s" in shown
    assert json.loads(out(run("nodes", "--json", "--node", "nowhere")))["nodes"] == []


def test_history_reads_are_the_same_from_the_server_and_the_database(
    server: str, db_url: str
) -> None:
    """predict, impact, forecast and changes go through the query layer both ways: the
    same JSON, field by field, and the same screen."""
    from sqlalchemy import create_engine

    from genperf.storage.changes import record_change

    engine = create_engine(db_url)
    row = {"key": "tuned_presets.t2v-A14B", "old_value": None, "new_value": "tiled"}
    record_change(
        engine,
        {**row, "changed_at": utc_now() - timedelta(hours=4, minutes=10), "source": "tune"},
    )
    engine.dispose()
    question = ("--model-type", "t2v-A14B", "--resolution", "720p", "--frames", "81")
    for args in (
        ("changes", "--compare-hours", "2"),
        ("impact", "--hours", "24"),
        ("forecast", "--hours", "24"),
        ("predict", *question, "--steps", "40"),
    ):
        local, served = run(*args, "--json"), remote(server, *args, "--json")
        assert served.exit_code == local.exit_code, (served.output, local.output)
        assert normalised(json.loads(served.stdout)) == normalised(json.loads(local.stdout))
        if args[0] != "forecast":  # its crossings are said relative to each side's now
            assert remote(server, *args).stdout == run(*args).stdout
    changes = json.loads(out(run("changes", "--compare-hours", "2", "--json")))
    (change,) = changes["changes"]
    (group,) = change["groups"]  # the 720p tasks 20 min apart, three either side of it
    assert (group["before"]["tasks"], group["after"]["tasks"]) == (3, 3)
