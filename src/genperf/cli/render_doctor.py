"""``genperf doctor``'s view: one row per check (verdict, check, evidence), the fix under each
check that needs one, and a last line with the counts and the exit code. Pure: payload in,
renderable out (the payload is the doctor's JSON, local or from a server)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

VERDICT_LABELS: Mapping[str, tuple[str, str]] = {
    "ok": ("ok", "green"),
    "not_available": ("n/a", "dim"),
    "warning": ("warning", "yellow"),
    "failure": ("FAILURE", "bold red"),
}


def doctor_view(payload: Mapping[str, Any]) -> Group:
    where = "server" if payload.get("where") == "server" else "this machine"
    table = Table(
        title=f"genperf doctor · {payload.get('node', '?')} ({where})",
        title_justify="left",
        show_header=True,
        expand=False,
    )
    table.add_column("verdict", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("evidence and fix", overflow="fold")
    for check in payload.get("checks") or ():
        label, style = VERDICT_LABELS.get(check.get("verdict", ""), ("?", ""))
        detail = Text(str(check.get("evidence", "")))
        fix = check.get("fix")
        if fix and check.get("verdict") != "ok":
            detail.append("\nfix: ", style="bold")
            detail.append(str(fix))
        table.add_row(Text(label, style=style), str(check.get("title", check.get("name"))), detail)
    counts = payload.get("counts") or {}
    summary = Text(
        f"{counts.get('ok', 0)} ok · {counts.get('not_available', 0)} not available · "
        f"{counts.get('warning', 0)} warning(s) · {counts.get('failure', 0)} failure(s) · "
        f"exit code {payload.get('exit_code', '?')}"
    )
    return Group(table, summary)
