"""Formatting for people. Used only at the edges (CLI, web); data stays in base units."""

from __future__ import annotations

_BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def human_bytes(value: float | None) -> str:
    """1536 -> "1.5 KiB"; None -> "n/a"."""
    if value is None:
        return "n/a"
    size = float(value)
    for unit in _BYTE_UNITS:
        if abs(size) < 1024 or unit == _BYTE_UNITS[-1]:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def human_mib(value: float | None) -> str:
    return "n/a" if value is None else human_bytes(value * 1024 * 1024)


def human_duration(seconds: float | None) -> str:
    """0.0421 -> "42 ms"; 75 -> "1m 15s"; 3725 -> "1h 2m"."""
    if seconds is None:
        return "n/a"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def human_percent(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}%"


def human_celsius(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}°C"


def count_of(n: int, noun: str) -> str:
    """``count_of(1, "task")`` -> "1 task", ``count_of(3, "task")`` -> "3 tasks"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
