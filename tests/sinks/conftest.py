"""A real InfluxDB 1.x (Debian's ``influxdb``) for the sink tests, started on free loopback
ports with a generated config and temporary directories, stopped by its pid.

Without ``influxd`` the tests that need it are skipped, except under CI (``CI=true``) where
that is a failure: scripts/test.sh installs it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from influx_server import InfluxServer


@pytest.fixture
def influxd(tmp_path: Path) -> Iterator[InfluxServer]:
    if shutil.which("influxd") is None:
        reason = "influxd not installed (apt-get install influxdb; scripts/test.sh does)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    root = tmp_path / "influxdb"
    root.mkdir()
    server = InfluxServer(root)
    server.start()
    yield server
    server.stop()
