"""The server's tick (``QuietServer``): a stop signal ends its wait at once, without waiting
for the next tick, and the Date header is refreshed by each tick."""

from __future__ import annotations

import asyncio
import signal
import threading

import uvicorn

from genperf.server import QuietServer


async def _app(scope, receive, send):  # pragma: no cover - never called: no request is made
    raise AssertionError("no request expected")


def test_a_stop_signal_wakes_the_tick_at_once():
    server = QuietServer(uvicorn.Config(_app, log_level="warning"))
    server.tick_seconds = 3600.0  # only the signal can end this wait within the test

    async def run() -> None:
        main = asyncio.create_task(server.main_loop())
        await asyncio.sleep(0)
        threading.Thread(target=server.handle_exit, args=(signal.SIGINT, None)).start()
        await asyncio.wait_for(main, timeout=30)

    asyncio.run(run())
    assert server.should_exit
    dates = [value for name, value in server.server_state.default_headers if name == b"date"]
    assert dates and dates[0].endswith(b"GMT")
