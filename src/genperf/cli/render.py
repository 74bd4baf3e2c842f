"""Pure renderers: records in, rich renderables out. No I/O; tested against exact text."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table

from genperf.records import SystemSample
from genperf.units import human_bytes, human_celsius, human_percent


def sample_table(sample: SystemSample) -> Table:
    """The current system sample: host, then one row per GPU."""
    table = Table(
        title=f"System status · {sample.node} · {sample.taken_at:%Y-%m-%d %H:%M:%S} UTC",
        title_justify="left",
        show_header=True,
    )
    table.add_column("resource")
    table.add_column("usage", justify="right")
    table.add_column("detail")
    table.add_row(
        "CPU",
        human_percent(sample.cpu_percent, 1),
        f"{sample.cpu_count or '?'} cores · {human_celsius(sample.cpu_temperature_celsius)}",
    )
    table.add_row(
        "RAM",
        human_percent(sample.ram_percent, 1),
        f"{human_bytes(sample.ram_used_bytes)} of {human_bytes(sample.ram_total_bytes)}",
    )
    table.add_row(
        "Swap", human_percent(sample.swap_percent, 1), human_bytes(sample.swap_used_bytes)
    )
    table.add_row(
        "Disk",
        human_percent(sample.disk_percent, 1),
        f"{human_bytes(sample.disk_free_bytes)} free at {sample.disk_path or 'n/a'}",
    )
    table.add_row("Process RSS", "", human_bytes(sample.process_rss_bytes))
    if not sample.gpus:
        table.add_row("GPU", "n/a", "no GPU monitoring available")
    for gpu in sample.gpus:
        throttled = ", ".join(gpu.throttle_reasons) if gpu.throttle_reasons else "no throttling"
        table.add_row(
            f"GPU {gpu.index} VRAM",
            human_percent(gpu.memory_percent, 1),
            f"{gpu.name or '?'} · {human_bytes(gpu.memory_used_bytes)} of "
            f"{human_bytes(gpu.memory_total_bytes)} · util {human_percent(gpu.utilization_percent)}"
            f" · {human_celsius(gpu.temperature_celsius)} · {throttled}",
        )
    return table


def settings_panel(settings: dict[str, Any]) -> Panel:
    """Settings in use (already redacted), one key a line."""
    lines = Table.grid(padding=(0, 2))
    lines.add_column(style="bold", no_wrap=True)
    lines.add_column(overflow="fold")
    for key, value in _flatten(settings):
        lines.add_row(key, str(value))
    return Panel(lines, title="Settings in use", title_align="left")


def status_view(sample: SystemSample, settings: dict[str, Any]) -> Group:
    return Group(sample_table(sample), settings_panel(settings))


def _flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.extend(_flatten(value, name + "."))
        else:
            out.append((name, value))
    return out
