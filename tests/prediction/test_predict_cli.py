"""`genperf predict` on a local database: the table, --json, and 'cannot predict yet'."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from history_support import history
from typer.testing import CliRunner

from genperf.cli.app import app
from genperf.storage import SqlStore


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("GENPERF_URL", "GENPERF_TOKEN", "GENPERF_CONFIG", "GENPERF_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    data = tmp_path / "data"
    monkeypatch.setenv("GENPERF_DATA_DIR", str(data))
    store = SqlStore(f"sqlite:///{data / 'genperf.db'}")
    try:
        for r in history(repeats=1, steps=(2, 4)):
            store.save_task(r)
    finally:
        store.close()
    return data


ARGS = ["predict", "--model-type", "tiny-wan-t2v", "--frames", "9", "--steps", "4"]


def test_predict_prints_time_phases_and_peaks_with_intervals(env):
    result = CliRunner().invoke(app, [*ARGS, "--resolution", "128x128"], terminal_width=100)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "tiny-wan-t2v 128x128, 9 frames, 4 steps, no optimisations" in out
    rows = ("generation time", "denoise", "vae_decode", "text_encode", "peak RAM", "added by")
    for row in rows:
        assert row in out
    assert "90 % interval" in out
    assert "learnt from 36 runs in 36 configurations" in out


def test_predict_json_is_the_apis_payload(env):
    result = CliRunner().invoke(app, [*ARGS, "--resolution", "128x128", "-O", "none", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["answerable"] is True and data["optimizations"] == []
    assert data["generation_time_seconds"]["low"] <= data["generation_time_seconds"]["value"]


def test_an_unanswerable_question_says_why_and_exits_1(env):
    result = CliRunner().invoke(
        app, [*ARGS, "--resolution", "128x128", "-O", "offload:model"], terminal_width=100
    )
    assert result.exit_code == 1
    assert "cannot predict yet" in result.output
    assert "offload:model" in result.output
    assert "Runs that would make it answerable:" in result.output
    assert "128x128, 9 frames, 4 steps, offload:model" in result.output


def test_a_bad_resolution_is_refused_naming_the_option(env):
    result = CliRunner().invoke(app, [*ARGS, "--resolution", "1280x719"])
    assert result.exit_code == 2
    assert "--resolution" in result.output


def test_impact_says_what_it_needs_when_nothing_compares(env):
    result = CliRunner().invoke(app, ["impact", "--hours", "8760"], terminal_width=100)
    assert result.exit_code == 0, result.output
    assert "No optimisation to compare in the last 8760 h" in result.output
    data = json.loads(CliRunner().invoke(app, ["impact", "--hours", "8760", "--json"]).output)
    assert data["tasks"] == 36 and data["optimizations"] == []


def test_forecast_prints_capacity(env):
    result = CliRunner().invoke(app, ["forecast", "--hours", "8760"], terminal_width=100)
    assert result.exit_code == 0, result.output
    assert "p95 forecast, last 8760 h" in result.output
    assert "capacity:" in result.output and "tasks/hour on 1 node" in result.output
