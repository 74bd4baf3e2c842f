"""The ``Date`` header of every response (RFC 9110 §6.6.1), set as it goes out.

uvicorn refreshes its own Date header on a tick every tenth of a second (genperf's server:
every second), and each wake-up of an idle process costs about 0.3 ms of CPU on a small
virtual machine, whatever it does. Set per response instead (formatted once per second at
most), the server's loop has no reason to wake while nobody calls it.
"""

from __future__ import annotations

import time
from email.utils import formatdate

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class DateHeader:
    """ASGI middleware: adds ``Date`` to each HTTP response (run uvicorn with
    ``date_header=False``, or there would be two)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._second = -1
        self._value = b""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def dated(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (b"date", self._now())]
            await send(message)

        await self.app(scope, receive, dated)

    def _now(self) -> bytes:
        second = int(time.time())
        if second != self._second:
            self._value = formatdate(second, usegmt=True).encode()
            self._second = second
        return self._value
