"""A history whose truth is known: a Wan-like cost law with noise (shared by these tests)."""

from __future__ import annotations

import random

from genperf.prediction import Workload
from genperf.records import PhaseRecord
from genperf.testing import make_task

SIZES = ((64, 64), (128, 64), (128, 128), (192, 128), (256, 256), (384, 256))
FRAMES = (5, 9, 17)
STEPS = (2, 4, 8)


def law(w: Workload, tiling: bool) -> dict[str, float]:
    """A Wan-like cost law: per-step overhead, linear and quadratic token terms, decode
    over frames x pixels (tiling: over its overlapping tiles, and lower memory)."""
    denoise = 0.01 * w.steps + 2e-5 * w.steps * w.tokens + 3e-9 * w.steps * w.tokens**2
    decode = 0.02 + 2e-7 * (w.tiled_frame_pixels if tiling else w.frame_pixels)
    ram = 600 + 0.05 * w.tokens + (2e-5 if tiling else 6e-5) * w.frame_pixels
    return {"text_encode": 0.01, "denoise": denoise, "vae_decode": decode, "ram": ram}


def record(w: Workload, tiling: bool = False, noise: float = 0.02, rng=None, **over):
    rng = rng or random.Random(0)
    c = law(w, tiling)

    def n(v: float) -> float:
        return v * rng.uniform(1 - noise, 1 + noise)

    phases = (
        PhaseRecord("text_encode", 0.0, n(c["text_encode"]), peak_ram_mb=600.0),
        PhaseRecord("denoise", 0.01, n(c["denoise"])),
        PhaseRecord("vae_decode", 0.5, n(c["vae_decode"])),
    )
    fields = {
        "model_type": "tiny-wan-t2v",
        "resolution": w.resolution,
        "frames": w.frames,
        "steps": w.steps,
        "generation_time_seconds": sum(p.duration_seconds for p in phases) + 0.005,
        "phases": phases,
        "peak_process_rss_mb": n(c["ram"]),
        "peak_vram_usage_mb": None,
        "optimizations_applied": ("vae_tiling", "attention:sdpa")
        if tiling
        else ("attention:sdpa",),
    }
    fields.update(over)
    return make_task(**fields)


def history(repeats: int = 2, tiling=(False,), sizes=SIZES, frames=FRAMES, steps=STEPS, noise=0.02):
    rng = random.Random(1)
    return [
        record(Workload(w, h, f, s), t, noise=noise, rng=rng)
        for _ in range(repeats)
        for (w, h) in sizes
        for f in frames
        for s in steps
        for t in tiling
    ]
