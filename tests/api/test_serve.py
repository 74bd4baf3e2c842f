"""``genperf serve``: loopback only without tokens, and a real server end to end."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from email.utils import parsedate_to_datetime

import httpx
import pytest
from api_support import P

from genperf.api.settings import ApiSettings
from genperf.errors import ConfigError
from genperf.server import check_bind, is_loopback_address


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"])
def test_loopback_addresses_need_no_tokens(host):
    check_bind(host, ApiSettings())


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "203.0.113.9", "no-such-host.invalid"])
def test_other_addresses_are_refused_without_tokens(host):
    with pytest.raises(ConfigError) as info:
        check_bind(host, ApiSettings())
    message = str(info.value)
    assert "GENPERF_API_TOKENS=" in message
    assert host in message
    assert not is_loopback_address(host)


def test_with_tokens_any_address_is_allowed():
    check_bind("0.0.0.0", ApiSettings(api_tokens=("read:abcdefghijklmnopqrstu",)))


def _env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENPERF_")}
    env.update(GENPERF_DATA_DIR=str(tmp_path), **extra)
    return env


def test_the_cli_refuses_an_open_address_with_a_clear_message(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "genperf", "serve", "--host", "0.0.0.0", "--port", "1"],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "GENPERF_API_TOKENS" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "genperf.db").exists()  # refused before anything opened it


def test_a_bad_token_entry_stops_start_up_without_showing_the_token(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "genperf", "serve", "--port", "1"],
        capture_output=True,
        text=True,
        env=_env(tmp_path, GENPERF_API_TOKENS="superuser:my-secret-token-value"),
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "entry 1" in proc.stderr
    assert "my-secret-token-value" not in proc.stderr + proc.stdout


def test_a_malformed_token_digest_stops_start_up_with_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "genperf", "serve", "--port", "1"],
        capture_output=True,
        text=True,
        env=_env(tmp_path, GENPERF_API_TOKENS="read:sha256:" + "a" * 63),
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "entry 1" in lines[0] and "64 hexadecimal digits" in lines[0]
    assert not (tmp_path / "genperf.db").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_a_real_server_serves_ingests_and_stops_cleanly(tmp_path):
    port = _free_port()
    token = "admin-token-for-the-real-server"
    proc = subprocess.Popen(
        [sys.executable, "-m", "genperf", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=_env(
            tmp_path,
            GENPERF_API_TOKENS=f"admin:{token}",
            GENPERF_MONITORING_INTERVAL_SECONDS="0.5",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}"}
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            time.sleep(0.2)
        with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
            assert client.get(f"{P}/status").json()["monitoring"]["running"] is True
            task = {"task_id": "real-1", "model_type": "t2v-A14B", "resolution": "720p"}
            assert client.post(f"{P}/tasks", json=task).status_code == 201
            assert client.post(f"{P}/tasks/real-1/complete").status_code == 200
            assert client.get(f"{P}/metrics").json()["total"] == 1
            assert "genperf_host_ram_total_bytes" in client.get("/metrics").text
            assert httpx.get(f"{base}{P}/status", timeout=5).status_code == 401
            time.sleep(1.5)  # past the second of the last response: a stale Date would show
            asked = time.time()
            dates = client.get(f"{P}/status").headers.get_list("date")
            assert len(dates) == 1  # uvicorn's own is off: one Date, set per response
            assert abs(parsedate_to_datetime(dates[0]).timestamp() - asked) <= 1.0
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert token not in output
    assert (tmp_path / "genperf.db").exists()
