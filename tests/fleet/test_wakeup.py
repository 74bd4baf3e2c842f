"""PostgreSQL LISTEN/NOTIFY: a request queued by any process wakes the listeners at once, so
idle workers need no fast poll."""

from __future__ import annotations

import threading

import pytest

from genperf.generation.queue import RequestQueue
from genperf.generation.wakeup import NotifyListener
from genperf.testing import make_request

pytestmark = pytest.mark.postgres


def test_a_queued_request_wakes_the_listener(postgres_url):
    queue = RequestQueue(postgres_url)
    woken = threading.Event()
    listener = NotifyListener(postgres_url, woken.set)
    listener.start()
    try:
        assert woken.wait(30), "the listener never connected"  # it wakes once on connecting
        woken.clear()
        queue.add(make_request(1))
        # Well under the listener's 10 s look at its stop flag: only a notification wakes it.
        assert woken.wait(5), "no notification for the queued request"
    finally:
        listener.stop()
        queue.close()
