"""Background threads: the one way the monitor's parts start theirs."""

from __future__ import annotations

import threading
from collections.abc import Callable


def start_daemon(
    current: threading.Thread | None,
    stop: threading.Event,
    target: Callable[[], None],
    name: str,
) -> threading.Thread:
    """The thread to keep: ``current`` while it runs (start is idempotent), else a new daemon
    thread running ``target``, started with ``stop`` cleared so a stopped part can restart.

    Daemon, so a part its owner forgot to stop never keeps the process alive."""
    if current is not None and current.is_alive():
        return current
    stop.clear()
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread
