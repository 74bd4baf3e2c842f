"""The renderers are pure: payloads in, exact text out (100 columns, no colour).

Colour is checked separately, on the styles the renderers give, against the targets of the
settings: green target met, yellow acceptable, red beyond.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta
from typing import Any

import pytest
from rich.console import Console
from rich.text import Text

from genperf.cli import render
from genperf.cli.commands_interactive import menu_view
from genperf.cli.source import active_task, sample_json
from genperf.cli.style import Grade, Targets, grade_quality, grade_time, grade_usage
from genperf.config import Band, QualityBand, Settings
from genperf.records import SystemSample, TaskStatus

from .conftest import HOST_READINGS, NODE, NOW, known_tasks, render_text
from .payloads import BENCHMARKS, EMPTY_REPORT, REPORT

TARGETS = Targets.from_settings(Settings())


def text(renderable: Any) -> str:
    """The rendered text without trailing spaces (rich pads some lines to the width)."""
    lines = [line.rstrip() for line in render_text(renderable).splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines) + "\n"


def sample() -> SystemSample:
    return SystemSample(taken_at=NOW, node=NODE, **HOST_READINGS)


def finished() -> list[Any]:
    return [t for t in reversed(known_tasks()) if t.status is not TaskStatus.RUNNING]


SAMPLE = """\
System status · gpu-node-1 · 2026-01-01 12:00:00 UTC
┏━━━━━━━━━━━━━┳━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┓
┃ resource    ┃ usage ┃ detail                                                                 ┃
┡━━━━━━━━━━━━━╇━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┩
│ CPU         │ 42.0% │ 16 cores · n/a                                                         │
│ RAM         │ 37.5% │ 48.0 GiB of 128.0 GiB                                                  │
│ Swap        │  0.0% │ 0 B                                                                    │
│ Disk        │ 60.0% │ 400.0 GiB free at /data/models                                         │
│ Process RSS │       │ 2.0 GiB                                                                │
│ GPU 0 VRAM  │ 85.7% │ NVIDIA H200 · 120.0 GiB of 140.0 GiB · util 97% · 71°C · no throttling │
└─────────────┴───────┴────────────────────────────────────────────────────────────────────────┘
"""


def test_sample_table() -> None:
    assert text(render.sample_table(sample(), TARGETS)) == SAMPLE


TASKS = """\
Recent tasks · 5 of 7, newest first · times UTC
started      task     model     res    steps  status        time    load     peak VRAM      peak RAM
────────────────────────────────────────────────────────────────────────────────────────────────────
01-01 10:00  i2v-0    i2v-A14B  480p      20  completed   1m 40s  20.0 s  39.1 GiB 49%  19.5 GiB 31%
01-01 09:00  t-oom    t2v-A14B  720p      20  failed         n/a  20.0 s  79.1 GiB 99%  19.5 GiB 31%
01-01 08:30  t1080-0  t2v-A14B  1080p     20  completed  16m 40s  20.0 s  76.2 GiB 95%  19.5 GiB 31%
01-01 07:30  t720-3   t2v-A14B  720p      20  completed   4m 30s  20.0 s  39.1 GiB 49%  19.5 GiB 31%
01-01 07:00  t720-2   t2v-A14B  720p      20  completed   4m 20s  20.0 s  39.1 GiB 49%  19.5 GiB 31%
✗ t-oom out_of_memory_gpu in vae_decode: Enable VAE tiling.
"""


def test_tasks_view_newest_first_with_failure_advice() -> None:
    payload = {"total": 7, "metrics": [t.to_dict() for t in finished()[:5]]}
    assert text(render.tasks_view(payload, TARGETS)) == TASKS


def test_tasks_view_puts_a_single_model_in_the_title() -> None:
    one_model = [t for t in finished() if t.model_type == "t2v-A14B"][:2]
    payload = {"total": 2, "metrics": [t.to_dict() for t in one_model]}
    assert text(render.tasks_view(payload, TARGETS)).splitlines()[:2] == [
        "Recent tasks · 2 of 2, newest first · times UTC · model t2v-A14B",
        "started      task     res    steps  status        time    load     peak VRAM      peak"
        " RAM",
    ]


def test_tasks_view_without_tasks() -> None:
    assert (
        text(render.tasks_view({"total": 0, "metrics": []}, TARGETS)) == "No tasks recorded yet.\n"
    )


STATUS = """\
System status · gpu-node-1 · 2026-01-01 12:00:00 UTC
┏━━━━━━━━━━━━━┳━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┓
┃ resource    ┃ usage ┃ detail                                                                 ┃
┡━━━━━━━━━━━━━╇━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┩
│ CPU         │ 42.0% │ 16 cores · n/a                                                         │
│ RAM         │ 37.5% │ 48.0 GiB of 128.0 GiB                                                  │
│ Swap        │  0.0% │ 0 B                                                                    │
│ Disk        │ 60.0% │ 400.0 GiB free at /data/models                                         │
│ Process RSS │       │ 2.0 GiB                                                                │
│ GPU 0 VRAM  │ 85.7% │ NVIDIA H200 · 120.0 GiB of 140.0 GiB · util 97% · 71°C · no throttling │
└─────────────┴───────┴────────────────────────────────────────────────────────────────────────┘
Monitor: running on gpu-node-1 · newest sample 1.5 s old · every 5 s
Monitor health: 720 samples, 7 tasks written, 0 pending · 3 samples dropped
Running now
task      model     res   steps  phase    elapsed  started
──────────────────────────────────────────────────────────────
job-live  t2v-A14B  720p     20  denoise   3m 05s  01-01 11:56
"""


def status_payload() -> dict[str, Any]:
    return {
        "timestamp": NOW.isoformat(),
        "monitoring": {
            "running": True,
            "node": NODE,
            "interval_seconds": 5.0,
            "sample_age_seconds": 1.5,
        },
        "system": sample_json(sample()),
        "active_tasks": [active_task(known_tasks()[-1], "denoise")],
        "monitor": {
            "samples_taken": 720,
            "collector_errors": 0,
            "sampling_seconds": 0.5,
            "task_api_seconds": 0.01,
            "tasks_running": 1,
            "tasks_written": 7,
            "tasks_pending": 0,
            "tasks_dropped": 0,
            "samples_written": 700,
            "samples_dropped": 3,
            "store_errors": 0,
        },
        "database_available": True,
    }


def test_status_view_of_a_server() -> None:
    assert text(render.status_view(status_payload(), TARGETS)) == STATUS


def test_status_view_says_why_the_database_is_unavailable() -> None:
    payload = status_payload() | {
        "database_available": False,
        "database_error": "no data yet: the database /x/genperf.db does not exist.",
        "active_tasks": [],
        "monitor": None,
        "monitoring": {"running": False, "node": NODE, "sample_age_seconds": None},
    }
    assert text(render.status_view(payload, TARGETS)).splitlines()[-4:] == [
        "└─────────────┴───────┴────────────────────────────────────────────────────────────────────────┘",
        "Monitor: no sample stored yet",
        "Database: not available · no data yet: the database /x/genperf.db does not exist.",
        "No task running.",
    ]


LIVE = """\
System status · gpu-node-1 · 2026-01-01 12:00:00 UTC
┏━━━━━━━━━━━━━┳━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┓
┃ resource    ┃ usage ┃ detail                                                                 ┃
┡━━━━━━━━━━━━━╇━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┩
│ CPU         │ 42.0% │ 16 cores · n/a                                                         │
│ RAM         │ 37.5% │ 48.0 GiB of 128.0 GiB                                                  │
│ Swap        │  0.0% │ 0 B                                                                    │
│ Disk        │ 60.0% │ 400.0 GiB free at /data/models                                         │
│ Process RSS │       │ 2.0 GiB                                                                │
│ GPU 0 VRAM  │ 85.7% │ NVIDIA H200 · 120.0 GiB of 140.0 GiB · util 97% · 71°C · no throttling │
└─────────────┴───────┴────────────────────────────────────────────────────────────────────────┘
Monitor: not sampling · newest sample, from gpu-node-1, is 2h 00m old
Running now
task      model     res   steps  phase             elapsed  started
───────────────────────────────────────────────────────────────────────
job-live  t2v-A14B  720p     20  after model_load   3m 05s  01-01 11:56
Latest finished · times UTC
started      task     model     res    steps  status        time    load     peak VRAM      peak RAM
────────────────────────────────────────────────────────────────────────────────────────────────────
01-01 10:00  i2v-0    i2v-A14B  480p      20  completed   1m 40s  20.0 s  39.1 GiB 49%  19.5 GiB 31%
01-01 09:00  t-oom    t2v-A14B  720p      20  failed         n/a  20.0 s  79.1 GiB 99%  19.5 GiB 31%
01-01 08:30  t1080-0  t2v-A14B  1080p     20  completed  16m 40s  20.0 s  76.2 GiB 95%  19.5 GiB 31%
local database sqlite:////x/genperf.db · every 2 s · Ctrl-C to quit
"""


def test_live_view_of_the_local_database() -> None:
    payload = {
        "timestamp": NOW.isoformat(),
        "monitoring": {
            "running": False,
            "node": NODE,
            "interval_seconds": 5.0,
            "sample_age_seconds": 7200.0,
        },
        "system": sample_json(sample()),
        "active_tasks": [active_task(known_tasks()[-1])],
        "monitor": None,
        "database_available": True,
        "recent": [t.to_dict() for t in finished()[:3]],
    }
    view = render.live_view(
        payload, TARGETS, interval=2, where="local database sqlite:////x/genperf.db"
    )
    assert text(view) == LIVE


def test_elapsed_time_is_counted_at_the_payloads_moment() -> None:
    running = [active_task(known_tasks()[-1], "denoise")]
    later = render.running_table(running, NOW + timedelta(hours=1))
    assert "1h 03m" in text(later)


ANALYSIS = """\
Performance analysis · last 24 h · 20 finished tasks: 18 completed, 2 failed, 0 interrupted
╭─ Summary ────────────────────────────────────────────────────────────────────────────────────────╮
│ success rate      90.0%  target 98% · acceptable 95% · minimum 95%                               │
│ generation time  6m 32s  average · median 4m 10s · p95 16m 40s                                   │
│ model load       1m 01s  average                                                                 │
│ efficiency          72%  target 85% · acceptable 70% · minimum 50%                               │
╰──────────────────────────────────────────────────────────────────────────────────────────────────╯
By resolution (median against the target)
res    tasks  success  average   median      p95   target
─────────────────────────────────────────────────────────
720p      15    86.7%   4m 20s   4m 10s   5m 00s   5m 00s
1080p      5   100.0%  23m 20s  23m 20s  25m 00s  15m 00s
Bottlenecks (most severe first)
● critical vram          Peak GPU memory reached 95% or more in 8 of 20 tasks. [8 tasks, 40%]
● warning  model loading Model loading took 25% or more of the generation time in 6 of 20 tasks. [6
                         tasks, 30%]
Recommendations (priority order)
1. high · configuration · Enable VAE tiling.
   why: 2 tasks ran out of memory in the VAE decode.
   effect: The decode's peak memory drops several-fold.
2. medium · workflow · Keep the pipeline loaded between tasks.
   why: 6 cold loads of 20 tasks.
   effect: Saves the load time of each task.
3. low · hardware · Move the model files to an SSD.
Trends
metric                direction            from      to  change  tasks
──────────────────────────────────────────────────────────────────────
generation time 720p  degrading          4m 00s  5m 00s  +25.0%     12
success rate          insufficient data     n/a     n/a     n/a     12
peak VRAM             improving           96.0%   80.0%  -16.7%     12
Failures
✗ 2 × out_of_memory_gpu in vae_decode (10.0% of tasks): Enable VAE tiling.
"""


def test_analysis_view_orders_bottlenecks_by_severity_and_advice_by_priority() -> None:
    assert text(render.analysis_view(REPORT, TARGETS)) == ANALYSIS


def test_analysis_view_of_an_empty_window() -> None:
    assert text(render.analysis_view(EMPTY_REPORT, TARGETS)) == (
        "Performance analysis · last 6 h · 0 finished tasks: 0 completed, 0 failed, 0 interrupted\n"
        "No finished task in this window: nothing to analyse yet.\n"
    )


def test_analysis_view_of_a_healthy_window_says_so() -> None:
    healthy = REPORT | {
        "bottleneck_analysis": {
            "status": "ok",
            "message": "No bottleneck found.",
            "bottlenecks": [],
        },
        "optimization_recommendations": [],
    }
    shown = text(render.analysis_view(healthy, TARGETS))
    assert "Bottlenecks: No bottleneck found." in shown
    assert "Recommendations: nothing to change." in shown


BENCHMARKS_TEXT = """\
Benchmarks · last 24 h
benchmark              current   target  acceptable  limit  status         tasks
────────────────────────────────────────────────────────────────────────────────
generation time 720p    4m 10s   5m 00s      7m 30s      —  target met        20
generation time 1080p      n/a  15m 00s     22m 30s      —  no data            0
VRAM usage               96.4%    70.0%       85.0%  95.0%  below minimum     20
RAM usage                80.0%    60.0%       75.0%  90.0%  marginal          20
success rate             96.0%    98.0%       95.0%  90.0%  acceptable        20
"""


def test_benchmarks_view() -> None:
    assert text(render.benchmarks_view(BENCHMARKS, TARGETS)) == BENCHMARKS_TEXT


MENU = """\
genperf interactive · server http://gpu-box:8000
1  status                                  system status now: CPU, RAM, disk, GPUs
2  analysis [HOURS]                        performance analysis of the last HOURS (24)
3  tasks [N]                               the last N tasks, newest first (10)
4  benchmarks                              current performance against the targets
5  export [--format json|csv] [--hours H]  export the data to a file
6  monitor [SECONDS]                       live view, refreshed every SECONDS (10); Ctrl-C returns
h  help [COMMAND]                          this menu, or a command's options
q  quit                                    leave (also exit, Ctrl-D)
Type a command with its options as after `genperf`, or its number.
"""


def test_menu_view() -> None:
    assert text(menu_view("server http://gpu-box:8000")) == MENU


# --- colour -------------------------------------------------------------------------------


BAND = Band(optimal=70, acceptable=85, maximum=95)
QUALITY = QualityBand(target=0.98, acceptable=0.95, minimum=0.90)


@pytest.mark.parametrize(
    ("percent", "grade"),
    [
        (None, None),
        (0.0, Grade.TARGET),
        (70.0, Grade.TARGET),
        (70.1, Grade.ACCEPTABLE),
        (85.0, Grade.ACCEPTABLE),
        (90.0, Grade.MARGINAL),
        (95.0, Grade.MARGINAL),
        (95.1, Grade.OVER_LIMIT),
    ],
)
def test_usage_grades_follow_the_band(percent: float | None, grade: Grade | None) -> None:
    assert grade_usage(percent, BAND) is grade


@pytest.mark.parametrize(
    ("fraction", "grade"),
    [
        (1.0, Grade.TARGET),
        (0.98, Grade.TARGET),
        (0.97, Grade.ACCEPTABLE),
        (0.95, Grade.ACCEPTABLE),
        (0.92, Grade.MARGINAL),
        (0.89, Grade.BELOW_MINIMUM),
    ],
)
def test_quality_grades_follow_the_band(fraction: float, grade: Grade) -> None:
    assert grade_quality(fraction, QUALITY) is grade


@pytest.mark.parametrize(
    ("seconds", "grade"),
    [
        (299.0, Grade.TARGET),
        (300.0, Grade.TARGET),
        (450.0, Grade.ACCEPTABLE),
        (451.0, Grade.OVER_LIMIT),
    ],
)
def test_generation_time_grades_use_the_acceptable_factor(seconds: float, grade: Grade) -> None:
    assert grade_time(seconds, 300.0, 1.5) is grade
    assert grade_time(seconds, None, 1.5) is None


def ansi(renderable: Any) -> str:
    console = Console(width=120, color_system="standard", force_terminal=True, record=True)
    with console.capture() as capture:
        console.print(renderable)
    return capture.get()


GREEN, YELLOW, RED, BOLD_RED = "\x1b[32m", "\x1b[33m", "\x1b[31m", "\x1b[1;31m"


def test_task_times_and_peaks_are_coloured_against_the_targets() -> None:
    shown = ansi(
        render.tasks_view({"total": 7, "metrics": [t.to_dict() for t in finished()]}, TARGETS)
    )
    assert f"{GREEN} 4m 30s" in shown  # 720p in 270 s: under the 300 s target
    assert f"{YELLOW}16m 40s" in shown  # 1080p in 1000 s: over 900 s, under 1.5 x 900 s
    assert f"{BOLD_RED}79.1 GiB 99%" in shown  # peak VRAM over the 95 % maximum
    assert f"{GREEN}39.1 GiB 49%" in shown  # under the 70 % optimum


def test_configured_targets_change_the_colours() -> None:
    strict = Targets.from_settings(
        Settings.model_validate({"performance_thresholds": {"max_generation_time_720p": 200}})
    )
    shown = ansi(
        render.tasks_view({"total": 7, "metrics": [t.to_dict() for t in finished()]}, strict)
    )
    assert f"{YELLOW} 4m 30s" in shown  # 270 s: over the 200 s target, under 300 s


def test_benchmark_statuses_are_coloured() -> None:
    shown = ansi(render.benchmarks_view(BENCHMARKS, TARGETS))
    assert f"{GREEN}target met" in shown
    assert f"{YELLOW}acceptable" in shown
    assert f"{RED}marginal" in shown
    assert f"{BOLD_RED}below minimum" in shown


def test_status_styles_are_plain_text_underneath() -> None:
    line = render.monitoring_line(status_payload())
    assert isinstance(line, Text)
    assert line.plain == "Monitor: running on gpu-node-1 · newest sample 1.5 s old · every 5 s"


def test_an_efficiency_without_its_gpu_term_says_what_it_lacks() -> None:
    missing = {"gpu_utilization": "no GPU utilisation readings", "on_time": "no target"}
    report = {**REPORT, "efficiency": {"score": 1.0, "missing": missing, "known_weight": 0.2}}
    out = text(render.analysis_view(report, TARGETS))
    assert "without gpu utilization, on time" in out
    assert "without" not in text(render.analysis_view(REPORT, TARGETS))


def _long_ids(records: list[Any]) -> list[Any]:
    """Every other task with a uuid-long id, as services make them."""
    return [
        dataclasses.replace(r, task_id=f"{r.task_id}-{'0123456789abcdef' * 2}") if i % 2 else r
        for i, r in enumerate(records)
    ]


def _screens(records: list[Any]) -> dict[str, Any]:
    running = [
        active_task(dataclasses.replace(r, task_id=f"live-{'f' * 32}"))
        for r in known_tasks()
        if r.status is TaskStatus.RUNNING
    ]
    live = {
        "timestamp": NOW.isoformat(),
        "system": sample_json(sample()),
        "monitoring": {"running": True, "node": NODE},
        "active_tasks": running,
        "recent_tasks": [t.to_dict() for t in records],
    }
    return {
        "tasks": render.tasks_view(
            {"total": 7, "metrics": [t.to_dict() for t in records]}, TARGETS
        ),
        "monitor": render.live_view(live, TARGETS, interval=5.0, where="local database"),
        "analysis": render.analysis_view(REPORT, TARGETS),
        "benchmarks": render.benchmarks_view(BENCHMARKS, TARGETS),
    }


@pytest.mark.parametrize("width", [80, 120])
def test_every_table_is_readable_at_80_and_120_columns_with_several_models(width: int) -> None:
    records = _long_ids(finished())
    assert len({r.model_type for r in records}) > 1
    for name, screen in _screens(records).items():
        shown = render_text(screen, width)
        lines = shown.splitlines()
        assert all(len(line.rstrip()) <= width for line in lines), name
        # Nothing is cut but long ids, shortened as a short git hash is: never a status.
        for line in lines:
            for cut in re.finditer(r"(\S*)…", line):
                assert any(r.task_id.startswith(cut.group(1)) for r in records) or cut.group(
                    1
                ).startswith("live-"), (name, line)
        if name == "tasks":
            rows = [line for line in lines if line[:5] == "01-01" or line[:1] in "ti"]
            for r in records:
                row = next(line for line in rows if r.task_id[:9] in line)
                assert f" {r.status.value} " in f"{row} ", row  # the whole status, always
                assert r.model_type in row
    tasks = render_text(_screens(records)["tasks"], width)
    if width >= 120:  # room for every column once the long ids are shortened
        assert "peak RAM" in tasks and "load" in tasks and "steps" in tasks
    else:  # 80: the least important columns make way
        assert "load" not in tasks and "peak VRAM" in tasks
