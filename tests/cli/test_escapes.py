"""No client's text reaches the terminal raw: control characters, bidi overrides and rich
markup in stored fields are shown as escapes (issue 10)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from genperf.cli.escape import printable, printable_text
from genperf.records import TaskStatus
from genperf.storage import SqlStore
from genperf.testing import make_task

from .conftest import NODE, NOW, invoke

pytestmark = pytest.mark.usefixtures("cli_env")

HOSTILE_MODEL = "\x1b[31mred\x1b]8;;https://evil.example\x07model"
HOSTILE_ID = "job-\u202etxt.exe"
MARKUP = "[link=https://evil.example]click[/link]"


def test_printable_text_shows_escapes_and_keeps_ordinary_text():
    assert printable_text("t2v-A14B 1280×720 ünïcode") == "t2v-A14B 1280×720 ünïcode"
    assert printable_text("a\x1b[31mb") == "a\\x1b[31mb"
    assert printable_text("id\u202eexe\u200d") == "id\\u202eexe\\u200d"
    assert printable_text("line one\nline two") == "line one\nline two"
    assert printable_text(MARKUP) == "\\[link=https://evil.example]click\\[/link]"
    assert printable({"k\x07": ["\x1b", 3, None]}) == {"k\\x07": ["\\x1b", 3, None]}


def _store_hostile(db_path: Path) -> None:
    """As a store written by an older genperf or a library caller holds them."""
    store = SqlStore(f"sqlite:///{db_path}")
    try:
        store.save_task(
            make_task(
                run_id="run-hostile",
                task_id=HOSTILE_ID,
                node=NODE,
                model_type=HOSTILE_MODEL,
                model_used=MARKUP,
                started_at=NOW.replace(hour=11),
                status=TaskStatus.FAILED,
                error_category="out_of_memory_gpu",
                error_message="CUDA out of memory \x1b[2J cleared",
                failed_phase="denoise\u202e",
            )
        )
    finally:
        store.close()


@pytest.mark.parametrize("command", [["tasks", "20"], ["analysis", "48"], ["status"]])
def test_no_command_writes_a_clients_control_characters(
    runner: CliRunner, db_path: Path, command: list[str]
) -> None:
    _store_hostile(db_path)
    result = invoke(runner, *command)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "\x1b" not in out and "\x07" not in out
    assert "\u202e" not in out
    if command[0] == "tasks":
        assert "\\x1b[31mred" in out  # shown, as an escape
        assert "job-\\u202etxt.exe" in out
