"""A real tiny-wan model directory (genperf.generation.tiny_wan, built offline once per
session) for the model-directory checks, and copies of it to break."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_wan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    pytest.importorskip("transformers")
    from genperf.generation.tiny_wan import ensure_tiny_wan

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return ensure_tiny_wan(tmp_path_factory.mktemp("tiny_wan") / "tiny-wan-t2v")


@pytest.fixture
def model_copy(tiny_wan: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_wan, tmp_path / "broken-wan"))
