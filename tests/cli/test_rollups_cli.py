"""``genperf rollups status`` and ``genperf rollups rebuild`` on a service's database."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from genperf.config import Settings
from genperf.storage.base import TaskQuery
from genperf.storage.sql import SqlStore

from .conftest import NOW, invoke, known_tasks

pytestmark = pytest.mark.usefixtures("cli_env")


def test_rebuild_makes_the_rollups_the_reads_use(runner: CliRunner, db_path: Path) -> None:
    status = invoke(runner, "rollups", "status")
    assert status.exit_code == 0 and "no roll-ups" in status.stdout
    rebuilt = invoke(runner, "rollups", "rebuild")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "rebuilt the roll-ups of" in rebuilt.stdout
    assert "current" in invoke(runner, "rollups", "status").stdout
    store = SqlStore(f"sqlite:///{db_path}")
    try:
        assert store.rollup_bands()
        first = min(t.started_at for t in known_tasks())
        window = TaskQuery(since=first.replace(minute=0, second=0), until=NOW)
        finished = sum(1 for t in known_tasks() if t.started_at <= NOW)
        assert store.count_tasks(window) == finished
    finally:
        store.close()


def test_other_bands_are_reported(runner: CliRunner, db_path: Path) -> None:
    store = SqlStore(f"sqlite:///{db_path}")
    other = Settings().benchmark_targets.model_copy(
        update={"generation_time_acceptable_factor": 3.0}
    )
    store.rebuild_rollups(Settings(benchmark_targets=other))
    store.close()
    assert "other bands" in invoke(runner, "rollups", "status").stdout
