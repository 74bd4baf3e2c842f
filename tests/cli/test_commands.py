"""Every command through Typer's runner, against a real SQLite store filled with records."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from genperf.analysis import SPEC_KEYS
from genperf.cli.commands_export import BarProgress
from genperf.cli.context import CliState
from genperf.cli.exporting import ExportRequest
from genperf.cli.source import LocalSource
from genperf.records import TaskStatus
from genperf.storage import SqlStore
from genperf.testing import make_tasks

from .conftest import NODE, NOW, invoke, known_tasks

pytestmark = pytest.mark.usefixtures("cli_env")

# Fields of the API's payloads (genperf.api.schemas; test_remote.py checks they agree) that
# the local source gives too, and what it adds: the settings in use, and whether the database
# could be read (with why not).
STATUS_KEYS = {"timestamp", "monitoring", "system", "active_tasks", "monitor"}
LOCAL_STATUS_EXTRAS = {"settings", "database_available"}
METRICS_PAGE_KEYS = {
    "time_window_hours",
    "model_type",
    "success_only",
    "nodes",
    "total",
    "limit",
    "offset",
    "next_offset",
    "next_cursor",
    "metrics",
}


def ok(result: Any) -> str:
    """The command succeeded; its stdout, without the spaces rich pads lines with."""
    assert result.exit_code == 0, (result.output, result.exception)
    stdout: str = result.stdout
    return "\n".join(line.rstrip() for line in stdout.splitlines()) + "\n"


def flat(text: str) -> str:
    """Words separated by one space: for lines a long temporary path wraps."""
    return " ".join(text.split())


def one_line_error(result: Any) -> str:
    """The command failed with exit code 2 and exactly one line on stderr, no traceback."""
    assert result.exit_code == 2, (result.output, result.exception)
    lines: list[str] = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    assert lines[0].startswith("genperf: ")
    return lines[0]


# --- status ---------------------------------------------------------------------------------


def test_status_shows_the_host_the_running_task_and_the_settings(
    runner: CliRunner, db_path: Path
) -> None:
    out = ok(invoke(runner, "status"))
    assert "System status · gpu-node-1 · 2026-01-01 12:00:00 UTC" in out
    assert "│ GPU 0 VRAM  │ 85.7% │ NVIDIA H200 · 120.0 GiB of 140.0 GiB" in out
    assert "Monitor: no sample stored yet" in out
    assert "job-live  t2v-A14B  720p     20  after model_load   3m 05s  01-01 11:56" in out
    assert "Settings in use" in out and "database_url" in out


def test_status_json_has_the_apis_shape(runner: CliRunner, db_path: Path) -> None:
    data = json.loads(ok(invoke(runner, "status", "--json")))
    assert set(data) == STATUS_KEYS | LOCAL_STATUS_EXTRAS
    assert data["database_available"] is True
    assert data["system"]["gpus"][0]["memory_percent"] == pytest.approx(85.714, abs=1e-3)
    assert [t["task_id"] for t in data["active_tasks"]] == ["job-live"]
    assert data["active_tasks"][0]["current_phase"] is None
    assert data["settings"]["node_name"] == NODE


def test_status_sees_whether_the_service_is_sampling(runner: CliRunner, db_path: Path) -> None:
    from genperf.records import SystemSample

    store = SqlStore(f"sqlite:///{db_path}")
    store.save_samples([SystemSample(taken_at=NOW, node="gpu-node-2", cpu_percent=5.0)])
    store.close()
    data = json.loads(ok(invoke(runner, "status", "--json")))
    assert data["monitoring"]["running"] is True
    assert data["monitoring"]["node"] == "gpu-node-2"
    assert data["monitoring"]["sample_age_seconds"] == 0.0


def test_status_works_before_any_data_and_creates_nothing(
    runner: CliRunner, tmp_path: Path
) -> None:
    out = ok(invoke(runner, "status"))
    assert "Database: not available · no data yet: the database" in out
    assert not (tmp_path / "data").exists()


# --- tasks ----------------------------------------------------------------------------------


def test_tasks_lists_the_newest_first(runner: CliRunner, db_path: Path) -> None:
    out = ok(invoke(runner, "tasks", "3"))
    lines = out.splitlines()
    assert lines[0] == "Recent tasks · 3 of 8, newest first · times UTC"
    assert [line.split()[2] for line in lines[3:6]] == ["job-live", "i2v-0", "t-oom"]
    assert "✗ t-oom out_of_memory_gpu in vae_decode: Enable VAE tiling." in out


def test_tasks_defaults_to_ten(runner: CliRunner, db_path: Path) -> None:
    store = SqlStore(f"sqlite:///{db_path}")
    for record in make_tasks(12, node=NODE, started_at=NOW.replace(hour=0)):
        store.save_task(record)
    store.close()
    data = json.loads(ok(invoke(runner, "tasks", "--json")))
    assert set(data) == METRICS_PAGE_KEYS
    assert (data["total"], data["limit"], len(data["metrics"]), data["next_offset"]) == (
        20,
        10,
        10,
        10,
    )
    started = [m["started_at"] for m in data["metrics"]]
    assert started == sorted(started, reverse=True)


def test_tasks_filters(runner: CliRunner, db_path: Path) -> None:
    data = json.loads(ok(invoke(runner, "tasks", "50", "--model-type", "i2v-A14B", "--json")))
    assert [m["task_id"] for m in data["metrics"]] == ["i2v-0"]
    data = json.loads(ok(invoke(runner, "tasks", "50", "--success-only", "--json")))
    assert {m["status"] for m in data["metrics"]} == {"completed"}
    data = json.loads(ok(invoke(runner, "tasks", "50", "--hours", "1", "--json")))
    assert [m["task_id"] for m in data["metrics"]] == ["job-live"]


def test_tasks_in_an_empty_database(runner: CliRunner, tmp_path: Path) -> None:
    SqlStore(f"sqlite:///{tmp_path / 'data' / 'genperf.db'}").close()
    assert ok(invoke(runner, "tasks")).strip() == "No tasks recorded yet."


# --- analysis and benchmarks ------------------------------------------------------------------


def test_analysis_of_the_default_window(runner: CliRunner, db_path: Path) -> None:
    out = ok(invoke(runner, "analysis"))
    assert out.startswith(
        "Performance analysis · last 24 h · 7 finished tasks: 6 completed, 1 failed, 0 interrupted"
    )
    for part in ("Summary", "By resolution", "Bottlenecks", "Recommendations", "Failures"):
        assert part in out


def test_analysis_json_is_the_report(runner: CliRunner, db_path: Path) -> None:
    data = json.loads(ok(invoke(runner, "analysis", "2", "--json")))
    assert list(data)[: len(SPEC_KEYS)] == list(SPEC_KEYS)
    assert data["time_window_hours"] == 2.0
    assert data["task_count"] == 1  # only i2v-0 finished in the last 2 hours


def test_analysis_filters(runner: CliRunner, db_path: Path) -> None:
    data = json.loads(ok(invoke(runner, "analysis", "--model-type", "i2v-A14B", "--json")))
    assert data["task_count"] == 1
    assert data["filters"] == {"model_type": "i2v-A14B", "success_only": False, "nodes": []}
    data = json.loads(ok(invoke(runner, "analysis", "--success-only", "--json")))
    assert data["success_rate"] == 1.0


def test_analysis_of_an_empty_window(runner: CliRunner, db_path: Path) -> None:
    out = ok(invoke(runner, "analysis", "0.5"))
    assert "No finished task in this window" in out


def test_benchmarks(runner: CliRunner, db_path: Path) -> None:
    out = ok(invoke(runner, "benchmarks"))
    assert out.splitlines()[0] == "Benchmarks · last 24 h"
    assert "generation time 720p" in out and "success rate" in out
    data = json.loads(ok(invoke(runner, "benchmarks", "--json")))
    assert set(data) == {"time_window_hours", "targets", "benchmarks"}
    assert data["targets"]["generation_time_seconds"] == {"720p": 300.0, "1080p": 900.0}
    by_name = {b["name"]: b for b in data["benchmarks"]}
    assert by_name["generation_time_720p"]["status"] == "target_met"


# --- export ---------------------------------------------------------------------------------


def test_export_json_to_a_file(runner: CliRunner, db_path: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    out = ok(invoke(runner, "export", "--output", str(target)))
    assert out.strip().startswith("Exported 8 tasks of the last 24 h to ")
    document = json.loads(target.read_text())
    assert list(document) == [
        "export_timestamp",
        "time_window_hours",
        "metrics_count",
        "performance_analysis",
        "metrics",
    ]
    assert document["metrics_count"] == len(document["metrics"]) == 8
    assert document["performance_analysis"]["task_count"] == 7
    assert oct(target.stat().st_mode & 0o777) == "0o600"  # the spec: secure export files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "out.json"]  # no temp left


def test_export_csv_to_stdout(runner: CliRunner, db_path: Path) -> None:
    result = invoke(runner, "export", "--format", "CSV", "--hours", "3", "-o", "-")
    rows = list(csv.DictReader(io.StringIO(ok(result))))
    assert [r["task_id"] for r in rows] == ["t-oom", "i2v-0", "job-live"]  # oldest first
    assert "Exported 3 tasks of the last 3 h to stdout" in result.stderr


def test_export_default_file_name(
    runner: CliRunner, db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    ok(invoke(runner, "export", "-f", "csv"))
    (name,) = [p.name for p in tmp_path.glob("genperf-export-*.csv")]
    assert len(name) == len("genperf-export-20260101T120000Z.csv")


def test_export_into_a_missing_directory(runner: CliRunner, db_path: Path, tmp_path: Path) -> None:
    line = one_line_error(invoke(runner, "export", "-o", str(tmp_path / "nowhere" / "x.json")))
    assert "cannot write" in line and "No such file or directory" in line


def test_a_long_export_shows_a_progress_bar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rich.console import Console

    monkeypatch.setenv("TERM", "xterm-256color")  # a dumb terminal gets no live bar

    from genperf.config import Settings
    from genperf.storage import MemoryStore

    store = MemoryStore()
    for record in make_tasks(60, started_at=NOW.replace(hour=1)):
        store.save_task(record)
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100)
    progress = BarProgress(console, min_tasks=50)
    source = LocalSource(Settings(data_dir=tmp_path), store=store, wall_clock=lambda: NOW)
    out = io.BytesIO()
    try:
        result = source.export(ExportRequest("csv", 24.0), out, progress)
    finally:
        progress.stop()
    assert result.tasks == 60
    drawn = screen.getvalue()
    assert "exporting" in drawn and " 0/60" in drawn and "60/60" in drawn  # start and end


def test_a_short_export_shows_no_bar(tmp_path: Path) -> None:
    from rich.console import Console

    screen = io.StringIO()
    progress = BarProgress(Console(file=screen, force_terminal=True), min_tasks=50)
    progress.start(10, "tasks")
    progress.advance(10)
    progress.stop()
    assert screen.getvalue() == ""


# --- monitor --------------------------------------------------------------------------------


def test_monitor_draws_frames_and_stops_after_count(runner: CliRunner, db_path: Path) -> None:
    out = ok(invoke(runner, "monitor", "0.1", "--count", "2"))
    assert "System status · gpu-node-1" in out
    assert "Running now" in out and "job-live" in out
    assert "Latest finished · times UTC" in out and "i2v-0" in out
    assert "every 0.1 s · Ctrl-C to quit" in flat(out)


def test_monitor_json_prints_a_document_per_refresh(runner: CliRunner, db_path: Path) -> None:
    lines = ok(invoke(runner, "monitor", "0.1", "--count", "3", "--json")).splitlines()
    assert len(lines) == 3
    frame = json.loads(lines[0])
    assert set(frame) == STATUS_KEYS | {"database_available", "recent"}
    assert [t["task_id"] for t in frame["recent"]][:2] == ["i2v-0", "t-oom"]


def test_monitor_without_a_database_still_shows_the_host(runner: CliRunner) -> None:
    out = ok(invoke(runner, "monitor", "0.1", "--count", "1"))
    assert "GPU 0 VRAM" in out and "Database: not available" in out


# --- interactive ----------------------------------------------------------------------------


def test_no_command_opens_the_interactive_mode(runner: CliRunner, db_path: Path) -> None:
    out = ok(invoke(runner, input="tasks 2\nquit\n"))
    assert flat(out).startswith("genperf interactive · local database sqlite:///")
    assert "Recent tasks · 2 of 8" in out
    assert out.rstrip().endswith("Bye.")


def test_interactive_runs_commands_by_name_or_number_and_survives_errors(
    runner: CliRunner, db_path: Path
) -> None:
    script = "\n".join(
        [
            "4",  # benchmarks
            "analysis -1",
            "analysis 2 --json",
            "frobnicate",
            'tasks "unclosed',
            "help tasks",
            "help",
            "",
        ]
    )
    out = ok(invoke(runner, "interactive", input=script))  # ends at end of input (Ctrl-D)
    assert "Benchmarks · last 24 h" in out
    assert "genperf: Invalid value '-1': a negative number is not allowed here" in out
    assert '"time_window_hours": 2.0' in out
    assert "genperf: unknown command 'frobnicate': type help for the menu" in out
    assert "genperf: cannot read that line: No closing quotation" in out
    assert "Usage: tasks [OPTIONS] [N]" in out
    assert out.count("1  status") == 2  # the menu at start and on help
    assert out.rstrip().endswith("Bye.")


def test_interactive_reports_missing_data_and_goes_on(runner: CliRunner) -> None:
    out = ok(invoke(runner, input="tasks\nq\n"))
    assert "genperf: no data yet: the database" in out
    assert out.rstrip().endswith("Bye.")


# --- errors ---------------------------------------------------------------------------------


def test_a_missing_database_is_one_line_and_is_not_created(
    runner: CliRunner, tmp_path: Path
) -> None:
    for command in (["tasks"], ["analysis"], ["benchmarks"], ["export", "-o", "-"]):
        line = one_line_error(invoke(runner, *command))
        assert line.startswith("genperf: no data yet: the database ")
        assert "does not exist" in line
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["analysis", "0"], "hours must be a number > 0, got '0'"),
        (["analysis", "-5"], "Invalid value '-5': a negative number is not allowed here"),
        (["analysis", "lots"], "hours must be a number, got 'lots'"),
        (["analysis", "inf"], "hours must be a number > 0, got 'inf'"),
        (["analysis", "9000"], "hours must be at most 8760 (a year), got '9000'"),
        (["benchmarks", "--hours", "nan"], "hours must be a number > 0, got 'nan'"),
        (["tasks", "0"], "must be at least 1, got '0'"),
        (["tasks", "2.5"], "must be a whole number, got '2.5'"),
        (["monitor", "0"], "seconds must be between 0.1 and 86400, got '0'"),
        (["export", "--format", "xml"], "must be one of json, csv, influx, ndjson, got 'xml'"),
        (["frobnicate"], "No such command 'frobnicate'."),
        (["tasks", "--bogus"], "No such option: --bogus"),
    ],
)
def test_bad_input_is_one_line(
    runner: CliRunner, db_path: Path, args: list[str], message: str
) -> None:
    assert message in one_line_error(invoke(runner, *args))


def test_a_token_without_a_server(runner: CliRunner) -> None:
    line = one_line_error(invoke(runner, "--token", "abc", "tasks"))
    assert line == "genperf: --token needs --url (or GENPERF_URL): the local database takes none"


def test_an_unreachable_server(runner: CliRunner, unused_port: int) -> None:
    line = one_line_error(invoke(runner, "--url", f"http://127.0.0.1:{unused_port}", "status"))
    assert line.startswith(
        f"genperf: cannot reach the genperf server at http://127.0.0.1:{unused_port}"
    )


def test_a_url_that_is_not_http(runner: CliRunner) -> None:
    line = one_line_error(invoke(runner, "--url", "ftp://x", "status"))
    assert "--url must start with http:// or https://" in line


def test_a_bad_config_is_one_line(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"performance_monitoring": {"max_history_size": 0}}')
    line = one_line_error(invoke(runner, "--config", str(bad), "tasks"))
    assert "performance_monitoring.max_history_size" in line


def test_debug_shows_the_traceback(runner: CliRunner, cli_env: CliState) -> None:
    from genperf.cli.source import NoDataError

    result = invoke(runner, "--debug", "tasks")
    assert result.exit_code == 1
    assert isinstance(result.exception, NoDataError)


def test_the_installed_program_prints_one_line(tmp_path: Path) -> None:
    """End to end: the console script, its exit code and stderr, without the test fakes."""
    env = {**os.environ, "GENPERF_DATA_DIR": str(tmp_path / "none"), "COLUMNS": "100"}
    env.pop("GENPERF_URL", None)
    env.pop("GENPERF_DATABASE_URL", None)
    script = Path(sys.executable).parent / "genperf"
    proc = subprocess.run(
        [str(script), "tasks"], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "does not exist" in proc.stderr
    proc = subprocess.run(
        [str(script), "--debug", "tasks"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_known_tasks_fixture_is_what_the_tests_assume() -> None:
    tasks = known_tasks()
    assert len(tasks) == 8
    assert sum(t.status is TaskStatus.RUNNING for t in tasks) == 1
