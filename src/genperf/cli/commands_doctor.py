"""``genperf doctor``: the spec's troubleshooting as checks, here or on a running server.

Exit code: 0 every check ok (or an optional part not available), 1 warnings, 2 failures.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from genperf.cli.context import JsonOption, TokenOption, UrlOption, fail, state
from genperf.cli.render_doctor import doctor_view


def doctor(
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    model: Annotated[
        list[Path] | None,
        typer.Option(
            "--model",
            help="A model directory to check too (repeatable); data_dir/models and model_dir "
            "are checked anyway.",
        ),
    ] = None,
) -> None:
    """Check GPU, torch, database, monitor, host and model directories; say what to fix.

    Exit code 0: all ok; 1: warnings; 2: failures. With --url, the server runs the checks
    (its sampler and store queue included)."""
    if url or state.url:
        from genperf.cli.source import HttpSource
        from genperf.doctor import DoctorReport
        from genperf.doctor.host import peer_clock_check
        from genperf.records import utc_now

        source = HttpSource(url or state.url or "", token or state.token)
        try:
            body = source.doctor()
        finally:
            source.close()
        try:
            answer = DoctorReport.from_dict(body)
        except (KeyError, ValueError, TypeError) as exc:
            fail(f"{source.url} answered GET /doctor with something that is not a report ({exc})")
        # the server cannot see this machine's clock: compare the two here
        payload = answer.with_checks(peer_clock_check(utc_now(), answer.generated_at)).to_dict()
    else:
        from genperf.doctor import run_doctor

        payload = run_doctor(state.settings(), model_dirs=model or ()).to_dict()
    if as_json:
        typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        Console().print(doctor_view(payload))
    code = payload.get("exit_code")
    raise typer.Exit(code if isinstance(code, int) and code in (0, 1, 2) else 2)


def register(app: typer.Typer) -> None:
    app.command()(doctor)
