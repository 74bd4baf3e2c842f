"""benchmarks/gpu_check.py: on this CPU-only machine it exits cleanly saying there is no CUDA
device; its CPU rehearsal runs every part end to end (the figures mean nothing here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py"


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )


def cuda_usable() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.version.cuda) and torch.cuda.is_available()


def test_without_cuda_it_says_so_and_exits_0() -> None:
    if cuda_usable():
        pytest.skip("this machine has CUDA: the script measures instead")
    proc = run(timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("gpu_check: no CUDA device: ")
    assert "Nothing measured" in proc.stdout


@pytest.mark.slow
def test_the_cpu_rehearsal_runs_every_part(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    out = tmp_path / "report.json"
    proc = run(
        "--device",
        "cpu",
        "--size",
        "16x16x1",
        "--steps",
        "1",
        "--pairs",
        "1",
        "--rounds",
        "2",
        "--batch",
        "2",
        "--json",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert [p["phase"] for p in report["generation"]["phases"]] == [
        "text_encode",
        "denoise",
        "vae_decode",
    ]
    assert report["overhead"]["pairs"] == 1
    assert report["doctor"]["exit_code"] in (0, 1, 2)
    names = {c["name"] for c in report["doctor"]["checks"]}
    assert {"nvml", "database_schema", "model:tiny-wan-small"} <= names
    assert "4. genperf doctor: exit code" in proc.stdout
