"""``genperf predict``: a generation's time and peak memory before it runs, from history.

Reads the local database (the fit runs here) or a server (``--url``: ``POST /predict``); both
print the same payload with ``--json``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from genperf.cli.commands_read import emit
from genperf.cli.context import JsonOption, parse_hours, state
from genperf.generation.request import RESOLUTION_ALIASES, parse_resolution
from genperf.units import count_of, human_duration, human_mib

PHASE_ORDER = ("model_load", "text_encode", "denoise", "vae_decode")


def _resolution(value: str) -> str:
    try:
        width, height = RESOLUTION_ALIASES.get(value.strip().lower()) or parse_resolution(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--resolution") from None
    return f"{width}x{height}"


def predict(  # noqa: PLR0917 - each option is a parameter to Typer
    model_type: Annotated[str, typer.Option("--model-type", help="e.g. t2v-A14B.")],
    resolution: Annotated[
        str, typer.Option("--resolution", help="WIDTHxHEIGHT (1280x720), or 480p / 720p.")
    ],
    frames: Annotated[int, typer.Option("--frames", min=1, max=241, help="Frames (4k+1).")],
    steps: Annotated[int, typer.Option("--steps", min=1, max=200, help="Denoising steps.")],
    optimizations: Annotated[
        list[str] | None,
        typer.Option(
            "--optimizations",
            "-O",
            help="An optimisation token (vae_tiling, offload:model ...); repeat for more, "
            "or 'none'. Default: the set most runs of this model used.",
        ),
    ] = None,
    node: Annotated[str | None, typer.Option("--node", help="Learn from this node only.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Predict a generation's time (total and per phase) and peak RAM and VRAM, with 90 %
    intervals, from this model's history. Says so, and which runs would help, when the
    history cannot answer."""
    question: dict[str, Any] = {
        "model_type": model_type,
        "resolution": _resolution(resolution),
        "frames": frames,
        "steps": steps,
    }
    if optimizations is not None:
        question["optimizations"] = [t for t in optimizations if t.lower() != "none"]
    if node is not None:
        question["node"] = node
    payload = state.source().predict(question)
    emit(payload, as_json, lambda shown, _targets: prediction_view(shown))
    if not payload.get("answerable"):
        raise typer.Exit(1)


def _estimate(row: Mapping[str, Any] | None, fmt: Any) -> tuple[str, str]:
    if not row:
        return "n/a", ""
    return fmt(row["value"]), f"{fmt(row['low'])} – {fmt(row['high'])}"


def _phase_rank(name: str) -> tuple[int, str]:
    return (PHASE_ORDER.index(name) if name in PHASE_ORDER else len(PHASE_ORDER), name)


def prediction_view(p: Mapping[str, Any]) -> RenderableType:
    """The prediction as a table, or the reasons and the runs that would answer it."""
    opts = "+".join(p.get("optimizations") or []) or "no optimisations"
    title = f"{p['model_type']} {p['resolution']}, {p['frames']} frames, {p['steps']} steps, {opts}"
    if p.get("node"):
        title += f", node {p['node']}"
    parts: list[RenderableType] = []
    if p.get("answerable"):
        level = round(100 * float(p.get("interval_level") or 0.9))
        table = Table(title=title, title_justify="left")
        table.add_column("")
        table.add_column("predicted", justify="right")
        table.add_column(f"{level} % interval", justify="right")
        table.add_row(
            "generation time", *_estimate(p.get("generation_time_seconds"), human_duration)
        )
        phases = p.get("phases") or {}
        for name in sorted(phases, key=_phase_rank):
            table.add_row(f"  {name}", *_estimate(phases[name], human_duration))
        table.add_row("peak RAM (process)", *_estimate(p.get("peak_ram_mb"), human_mib))
        table.add_row(
            "  added by the generation", *_estimate(p.get("peak_ram_growth_mb"), human_mib)
        )
        table.add_row("peak VRAM", *_estimate(p.get("peak_vram_mb"), human_mib))
        parts.append(table)
        parts.append(
            Text(
                f"learnt from {count_of(int(p.get('tasks') or 0), 'run')} in "
                f"{count_of(int(p.get('configurations') or 0), 'configuration')}; "
                "generation time is without the model load",
                style="dim",
            )
        )
    else:
        parts.append(Text(f"{title}: cannot predict yet", style="bold yellow"))
    for reason in p.get("reasons") or []:
        parts.append(Text(f"• {reason}"))
    runs = p.get("suggested_runs") or []
    if runs:
        parts.append(Text("Runs that would make it answerable:"))
        for run in runs:
            o = "+".join(run.get("optimizations") or []) or "no optimisations"
            parts.append(
                Text(f"  {run['resolution']}, {run['frames']} frames, {run['steps']} steps, {o}")
            )
    return Group(*parts)


def impact(
    hours: Annotated[
        float, typer.Option("--hours", parser=parse_hours, help="Time window in hours.")
    ] = 168.0,
    model_type: Annotated[
        str | None, typer.Option("--model-type", help="Only this model type.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """What each optimisation did: median time and peak memory with against without it, on
    the same model type x resolution class, with task counts and a confidence."""
    payload = state.source().impact(hours, model_type)
    emit(payload, as_json, lambda shown, _targets: impact_view(shown))


def _percent(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.0f} %".replace("-", "−")


def impact_view(p: Mapping[str, Any]) -> RenderableType:
    rows = p.get("optimizations") or []
    if not rows:
        return Text(
            f"No optimisation to compare in the last {p['time_window_hours']:g} h: each needs "
            "at least 3 completed tasks with it and 3 without, on the same model type and "
            "resolution class."
        )
    title = f"Optimisation impact, last {p['time_window_hours']:g} h"
    table = Table(title=title, title_justify="left")
    table.add_column("optimisation")
    table.add_column("model / class")
    table.add_column("time", justify="right")
    table.add_column("peak", justify="right")
    table.add_column("tasks with / without", justify="right")
    table.add_column("confidence (time, peak)")
    for r in rows:
        table.add_row(
            r["token"],
            f"{r['model_type']} {r['resolution_class']}",
            _percent(r["time_change_percent"]),
            _percent(r["peak_change_percent"]),
            f"{r['count_with']} / {r['count_without']}",
            f"{r['time_confidence']}, {r['peak_confidence']}",
        )
    return table


def forecast(
    hours: Annotated[
        float, typer.Option("--hours", parser=parse_hours, help="Time window in hours.")
    ] = 168.0,
    as_json: JsonOption = False,
) -> None:
    """When each resolution class's p95 crosses its target and acceptable lines at the current
    trend; the fleet's capacity in tasks per hour and how long the queue takes."""
    payload = state.source().forecast(hours)
    emit(payload, as_json, lambda shown, _targets: forecast_view(shown))


def forecast_view(p: Mapping[str, Any]) -> RenderableType:
    table = Table(title=f"p95 forecast, last {p['time_window_hours']:g} h", title_justify="left")
    table.add_column("class")
    table.add_column("tasks", justify="right")
    table.add_column("p95 now", justify="right")
    table.add_column("trend / day", justify="right")
    table.add_column("crosses target")
    table.add_column("crosses acceptable")
    for c in p.get("classes") or []:
        trend = c.get("trend_seconds_per_day")
        table.add_row(
            c["resolution_class"],
            str(c["tasks"]),
            human_duration(c.get("p95_now_seconds")),
            "n/a" if trend is None else f"{trend:+.1f} s",
            (c.get("target") or {}).get("text") or c.get("note") or "n/a",
            (c.get("acceptable") or {}).get("text") or "n/a",
        )
    cap = p.get("capacity") or {}
    per_hour = cap.get("tasks_per_hour")
    line = (
        f"capacity: {per_hour:.1f} tasks/hour on {count_of(int(cap.get('nodes') or 0), 'node')}; "
        f"queue {cap.get('queue', 0)}, "
        f"{human_duration(None if cap.get('queue_hours') is None else cap['queue_hours'] * 3600)}"
        if per_hour
        else "capacity: no finished task in the window"
    )
    return Group(table, Text(line))


def changes(
    hours: Annotated[
        float, typer.Option("--hours", parser=parse_hours, help="Changes of the last hours.")
    ] = 720.0,
    compare_hours: Annotated[
        float,
        typer.Option(
            "--compare-hours", parser=parse_hours, help="How long each side of a change spans."
        ),
    ] = 24.0,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100)] = 20,
    as_json: JsonOption = False,
) -> None:
    """Each recorded configuration change (genperf tune writes them), newest first, with the
    window before it against the window after: tasks, success rate, median and p95 time and
    median peaks per model type x resolution class."""
    payload = state.source().config_changes(hours, compare_hours, limit)
    emit(payload, as_json, lambda shown, _targets: changes_view(shown))


def _fraction(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f} %"


def _side(w: Mapping[str, Any]) -> list[str]:
    peak = w.get("median_peak_vram_mb") or w.get("median_peak_rss_mb")
    return [
        f"{w['completed']}/{w['tasks']}",
        _fraction(w.get("success_rate")),
        human_duration(w.get("median_time_seconds")),
        human_duration(w.get("p95_time_seconds")),
        human_mib(peak),
    ]


def changes_view(p: Mapping[str, Any]) -> RenderableType:
    """Each change: a heading, then per model type x class its window before and after."""
    rows = p.get("changes") or []
    if not rows:
        return Text(
            f"No configuration change recorded in the last {p['time_window_hours']:g} h "
            "(genperf tune records the presets it writes)."
        )
    parts: list[RenderableType] = []
    span = f"{p['compare_hours']:g} h"
    for c in rows:
        when = str(c["changed_at"])[:16].replace("T", " ")
        parts.append(Text(f"{c['key']}: {c.get('old_value') or 'not set'} -> {c['new_value']}"))
        parts.append(Text(f"  {when} UTC, by {c['source']}", style="dim"))
        groups = c.get("groups") or []
        if not groups:
            parts.append(Text(f"  no task finished both {span} before and {span} after it"))
            continue
        for g in groups:
            table = Table(
                title=f"{g['model_type']} {g['resolution_class']}",
                title_justify="left",
                box=box.SIMPLE_HEAD,
            )
            table.add_column(f"{span} window")
            for name in ("ok/all", "success", "p50", "p95", "peak", "time", "peak"):
                table.add_column(name, justify="right")
            table.add_row("before", *_side(g["before"]), "", "")
            table.add_row(
                "after",
                *_side(g["after"]),
                _percent(g.get("time_change_percent")),
                _percent(g.get("peak_change_percent")),
            )
            parts.append(table)
    return Group(*parts)


def tune(
    model_type: Annotated[str, typer.Argument(help="The model type to tune, e.g. tiny-wan-t2v.")],
    resolution: Annotated[
        list[str] | None,
        typer.Option("--resolution", help="WIDTHxHEIGHT to measure at; repeat for more."),
    ] = None,
    frames: Annotated[
        list[int] | None, typer.Option("--frames", help="Frames (4k+1); repeat for more.")
    ] = None,
    steps: Annotated[int, typer.Option("--steps", min=1, max=200)] = 4,
    repeats: Annotated[int, typer.Option("--repeats", min=1, max=10)] = 2,
) -> None:
    """Measure every optimisation preset on this machine (real generations, monitored and
    stored), print time and peak per preset, write the fastest that never failed to the
    configuration file (tuned_presets) and keep the change, with its before/after figures,
    in the database."""
    from rich.progress import Progress

    from genperf.generation.pipelines import prepare_libraries
    from genperf.generation.presets import available
    from genperf.generation.registry import ModelRegistry
    from genperf.generation.tune import best, grid, measure, record_change, write_preset
    from genperf.monitor import PerformanceMonitor

    config = state.config
    if config is None:
        raise typer.BadParameter(
            "name the configuration file to write with --config (or GENPERF_CONFIG)",
            param_hint="--config",
        )
    settings = state.settings()
    sizes = [parse_resolution(_resolution(r)) for r in (resolution or ["832x480"])]
    counts = frames or [9]
    prepare_libraries()
    import importlib

    torch: Any = importlib.import_module("torch")
    presets = available(accelerator=bool(torch.cuda.is_available()))
    points = grid(sizes, counts, [steps], presets)
    monitor = PerformanceMonitor(settings)
    try:
        with Progress(transient=True) as progress:
            bar = progress.add_task("measuring presets", total=len(points) * repeats)
            results = measure(
                monitor,
                ModelRegistry(settings),
                model_type,
                points,
                repeats=repeats,
                on_done=lambda point, record: progress.advance(bar),
            )
        monitor.flush()
    finally:
        monitor.close()
    table = Table(title=f"{model_type}: presets measured", title_justify="left")
    for name in ("preset", "median time", "median peak", "runs", "failed"):
        table.add_column(name, justify="left" if name == "preset" else "right")
    for r in results:
        table.add_row(
            r.preset.name,
            human_duration(r.time_seconds),
            human_mib(r.peak_mb),
            str(r.runs),
            str(r.failed),
        )
    out = Console()
    out.print(table)
    chosen = best(results)
    if chosen is None:
        out.print("No preset ran without failing: the configuration is unchanged.")
        raise typer.Exit(1)
    old = write_preset(config, model_type, chosen.preset.name)
    before = next((r for r in results if r.preset.name == (old or "default")), None)
    record_change(
        settings.resolved_database_url,
        f"tuned_presets.{model_type}",
        old=old,
        new=chosen.preset.name,
        before=before,
        after=chosen,
    )
    out.print(
        f"{model_type}: {chosen.preset.name} (was {old or 'not set'}) written to {config}; "
        "the change is recorded in the database"
    )


def register(app: typer.Typer) -> None:
    app.command()(predict)
    app.command()(impact)
    app.command()(forecast)
    app.command()(changes)
    app.command()(tune)
