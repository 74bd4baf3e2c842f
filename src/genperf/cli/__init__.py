"""genperf's command line. ``main()`` turns genperf's errors into one clear line."""

from __future__ import annotations

import sys

from genperf.errors import GenperfError


def main(argv: list[str] | None = None) -> None:
    from genperf.cli.app import app
    from genperf.cli.context import state

    try:
        app(args=argv, prog_name="genperf", standalone_mode=True)
    except GenperfError as exc:
        if state.debug:
            raise
        print(f"genperf: {exc}", file=sys.stderr)
        sys.exit(2)
