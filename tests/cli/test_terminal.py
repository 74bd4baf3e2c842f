"""The live monitor and the interactive mode, driven once each in a real terminal (tmux).

The installed ``genperf`` program runs in a tmux pane of 120 x 60 against a real SQLite
database; the test types with ``send-keys`` and reads the screen with ``capture-pane``. It
checks what a person sees: the dashboard redrawn in place (one frame on the screen, values
that change), Ctrl-C leaving with exit code 0 and the terminal as it was (normal screen,
cursor shown), and the interactive prompt running commands, help, the monitor, and quitting.

Skipped, with the reason, where tmux is not installed (``apt-get install -y tmux``); under CI
(``CI=true``) a missing tmux fails instead, as a missing PostgreSQL does.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from genperf.storage import SqlStore
from genperf.testing import wait_until

from .conftest import NODE
from .test_remote import recent_tasks

pytestmark = pytest.mark.slow

NO_TMUX = "tmux is not installed (apt-get install -y tmux): the terminal tests need it"


@pytest.fixture(autouse=True)
def _needs_tmux() -> None:
    """Skip without tmux, except under CI (``CI=true``), where a missing tmux is a failure:
    a CI run must not pass by skipping the terminal it promises to test."""
    if shutil.which("tmux") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(NO_TMUX)
        pytest.skip(NO_TMUX)


GENPERF = Path(sys.executable).parent / "genperf"
WAIT_SECONDS = 30.0


class Terminal:
    """One tmux pane on a private tmux server."""

    def __init__(self, command: str, env: dict[str, str], *, width: int = 120, height: int = 60):
        self.socket = f"genperf-test-{uuid.uuid4().hex[:8]}"
        # The tmux server gets exactly this environment (nothing of the test process's, such
        # as COLUMNS, which would override the pane's size), and the pane its own TERM.
        self._env = {"TERM": "xterm-256color", **env}
        # The shell stays after the program ends, so its exit code and last screen can be read.
        # bash, not sh: Ctrl-C reaches the shell too, and bash (unlike dash) goes on when its
        # child handled the interrupt and exited normally.
        script = f'{command}; echo "EXIT:$?"; sleep 600'
        self._tmux(
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            str(width),
            "-y",
            str(height),
            "bash",
            "--norc",
            "--noprofile",
            "-c",
            script,
        )
        self.socket_path = Path(self._tmux("display-message", "-p", "#{socket_path}").strip())

    def _tmux(self, *args: str) -> str:
        proc = subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
            env=self._env,
        )
        return proc.stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "t")

    def flag(self, name: str) -> str:
        return self._tmux("display-message", "-p", "-t", "t", f"#{{{name}}}").strip()

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "t", *keys)

    def type(self, line: str) -> None:
        self._tmux("send-keys", "-t", "t", "-l", line)
        self._tmux("send-keys", "-t", "t", "Enter")

    def wait_for(self, predicate: Callable[[str], bool], what: str) -> str:
        last = [""]  # the screen last seen, for the failure message

        def matching() -> str | None:
            last[0] = self.screen()
            return last[0] if predicate(last[0]) else None

        try:
            return wait_until(matching, timeout=WAIT_SECONDS, interval=0.1, what=what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the screen:\n{last[0]}") from None

    def wait_text(self, text: str) -> str:
        return self.wait_for(lambda s: text in s, repr(text))

    def close(self) -> None:
        subprocess.run(
            ["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=30, check=False
        )
        self.socket_path.unlink(missing_ok=True)  # tmux leaves it behind


def _two_prompts_last(screen: str) -> bool:
    """The screen ends with an empty prompt right under another prompt (the interrupted one)."""
    lines = [line for line in screen.splitlines() if line.strip()]
    return len(lines) >= 2 and lines[-1].rstrip() == "genperf>" and lines[-2].startswith("genperf>")


@pytest.fixture
def database(tmp_path: Path) -> Path:
    from genperf.records import utc_now

    data = tmp_path / "data"
    store = SqlStore(f"sqlite:///{data / 'genperf.db'}")
    for record in recent_tasks(utc_now()):
        store.save_task(record)
    store.close()
    return data


@pytest.fixture
def terminal_env(database: Path) -> dict[str, str]:
    return {
        "GENPERF_DATA_DIR": str(database),
        "GENPERF_NODE_NAME": NODE,  # the node of the tasks, so the running one is listed
        "GENPERF_ENABLE_GPU_MONITORING": "false",
        "HOME": os.environ.get("HOME", "/tmp"),
        "PATH": os.environ.get("PATH", ""),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        # the sources under test, where they are not the installed ones (a worktree)
        **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"},
    }


@pytest.fixture
def open_terminal() -> Iterator[Callable[[str, dict[str, str]], Terminal]]:
    opened: list[Terminal] = []

    def start(command: str, env: dict[str, str]) -> Terminal:
        term = Terminal(command, env)
        opened.append(term)
        return term

    yield start
    for term in opened:
        term.close()


def elapsed_of(screen: str, task_id: str) -> str:
    line = next(line for line in screen.splitlines() if line.startswith(task_id))
    match = re.search(r"(\d+m \d\ds|\d+\.\d s)", line)
    assert match, line
    return match.group(1)


def test_live_monitor_redraws_in_place_and_ctrl_c_restores_the_terminal(
    open_terminal: Callable[[str, dict[str, str]], Terminal], terminal_env: dict[str, str]
) -> None:
    term = open_terminal(f"{GENPERF} monitor 1", terminal_env)
    first = term.wait_text("Running now")
    assert term.flag("alternate_on") == "1"  # the dashboard has a screen of its own
    assert term.flag("cursor_flag") == "0"  # and hides the cursor while it draws
    for expected in ("System status", "CPU", "RAM", "Disk", "Latest finished", "t1080", "Ctrl-C"):
        assert expected in first
    assert "job-live" in first and "after model_load" in first
    start = elapsed_of(first, "job-live")
    later = term.wait_for(
        lambda s: "job-live" in s and elapsed_of(s, "job-live") != start, "a redraw"
    )
    assert later.count("System status") == 1  # redrawn in place, not printed again below
    assert later.count("Running now") == 1

    term.keys("C-c")
    final = term.wait_text("EXIT:")
    assert "EXIT:0" in final  # Ctrl-C is how one leaves: a clean exit
    assert term.flag("alternate_on") == "0"  # back on the normal screen
    assert term.flag("cursor_flag") == "1"  # with the cursor shown
    assert re.search(r"genperf monitor stopped after \d+ frames?\.", final)
    assert "Traceback" not in final and "KeyboardInterrupt" not in final
    assert "Running now" not in final  # the dashboard left with its screen


def test_interactive_mode_runs_commands_and_quits_cleanly(
    open_terminal: Callable[[str, dict[str, str]], Terminal], terminal_env: dict[str, str]
) -> None:
    term = open_terminal(str(GENPERF), terminal_env)
    menu = term.wait_text("genperf>")  # capture-pane drops the space after it
    assert "genperf interactive · local database" in menu
    assert "tasks [N]" in menu and "monitor [SECONDS]" in menu and "quit" in menu

    term.type("tasks 3")
    shown = term.wait_text("Recent tasks · 3 of 9")
    assert "job-live" in shown and "t1080" in shown

    term.type("analysis 0")
    term.wait_text("hours must be a number > 0, got '0'")

    term.type("help benchmarks")
    term.wait_text("Usage: benchmarks [OPTIONS]")

    term.type("6 1")  # the monitor, by its menu number, every second
    term.wait_for(lambda s: "Running now" in s and term.flag("alternate_on") == "1", "monitor")
    term.keys("C-c")  # leaves the monitor, not the program
    back = term.wait_for(
        lambda s: "genperf monitor stopped" in s and s.rstrip().endswith("genperf>"),
        "the prompt after the monitor",
    )
    assert term.flag("alternate_on") == "0" and term.flag("cursor_flag") == "1"
    assert "EXIT:" not in back

    term.keys("C-c")  # at the prompt: a new line, still running
    # Wait for that new prompt before typing: keys typed while the interrupt is still being
    # handled are discarded with the interrupted line (readline drops its buffer).
    term.wait_for(_two_prompts_last, "a new prompt after Ctrl-C")
    term.type("quit")
    final = term.wait_text("EXIT:")
    assert "Bye." in final and "EXIT:0" in final
    assert "Traceback" not in final
