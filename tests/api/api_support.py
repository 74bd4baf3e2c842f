"""Constants and helpers shared by the API tests (fixtures are in conftest.py)."""

from __future__ import annotations

from genperf.records import MIB, GpuReading

LOOPBACK = ("127.0.0.1", 50000)
REMOTE = ("203.0.113.7", 50000)
BASE = "http://localhost"
P = "/api/v1/performance"

READ_TOKEN = "read-token-0123456789abcdef"
WRITE_TOKEN = "write-token-0123456789abcdef"
ADMIN_TOKEN = "admin-token-0123456789abcdef"
TOKENS = (f"read:{READ_TOKEN}", f"write:{WRITE_TOKEN}", f"admin:{ADMIN_TOKEN}")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def readings() -> dict[str, object]:
    return {
        "cpu_percent": 12.5,
        "cpu_count": 2,
        "ram_used_bytes": 4000 * MIB,
        "ram_total_bytes": 16000 * MIB,
        "ram_percent": 25.0,
        "process_rss_bytes": 300 * MIB,
        "gpus": (
            GpuReading(
                index=0,
                name="NVIDIA H200",
                memory_used_bytes=20_000 * MIB,
                memory_total_bytes=143_771 * MIB,
                utilization_percent=87.0,
                temperature_celsius=61.0,
                power_watts=412.5,
            ),
            GpuReading(index=1, name="NVIDIA H200", memory_used_bytes=MIB),
        ),
    }
