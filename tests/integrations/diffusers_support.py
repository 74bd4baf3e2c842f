"""Shared by the diffusers integration tests (fixtures are in conftest.py)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

# A tiny call: 64x64, 9 frames; classifier-free guidance (two forwards a step).
CALL = {
    "prompt": "a cat dancing in the rain",
    "height": 64,
    "width": 64,
    "num_frames": 9,
    "guidance_scale": 4.0,
    "max_sequence_length": 32,
    "output_type": "np",
}
