"""What a generation's cost depends on, from the workload's physics.

A Wan-style text-to-video pipeline compresses the video in its VAE (4x in time, 8x in space)
and cuts the latent into patches of 1x2x2 before the transformer, so the transformer works on

    tokens = ((frames - 1) / 4 + 1) * (height / 16) * (width / 16)

tokens. Each denoising step costs a fixed overhead, a part linear in the tokens (the MLPs,
projections, cross-attention to a fixed-length prompt) and a part quadratic in them
(self-attention); the VAE decode runs over every output pixel of every frame. Peak memory is
the weights (a constant), activations linear in the tokens, the attention matrix (quadratic,
unless a fused kernel avoids it) and the decoder's buffers (per frame and for the whole clip).

Each target gets the few features its physics names; a non-negative linear fit on them then
extrapolates along the right curve instead of a generic regressor's guess. Optimisations that
change the curve itself (tiling, offload, slicing) are fitted as separate groups.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from genperf import optimizations as opt

VAE_SPATIAL = 8  # Wan's VAE: 8x in height and width
VAE_TEMPORAL = 4  # and 4x in time (frames are 4k+1)
PATCH = (1, 2, 2)  # the transformer's patch size (time, height, width)
# diffusers' AutoencoderKLWan tiles its decode (VAE tiling) when the frame is wider or taller
# than a tile: tiles of 256 pixels every 192, each decoded whole, so the overlaps are decoded
# twice (the time VAE tiling trades for its lower peak).
VAE_TILE = 256
VAE_TILE_STRIDE = 192

# Tokens that change a generation's cost curve: the optimisation set a prediction is for.
# Others (the attention kernel the library picked, model_cached, the allocator) describe the
# environment, not a choice, and are left out of the key.
TUNABLE_PREFIXES: tuple[str, ...] = (
    opt.VAE_TILING,
    opt.VAE_SLICING,
    opt.OFFLOAD,
    opt.QUANTIZATION,
    "dtype:",
    "attention_slicing",
    opt.TORCH_COMPILE,
)

_SIZE = re.compile(r"^\s*(\d{1,5})\s*[xX×]\s*(\d{1,5})\s*$")


def tunable(tokens: Iterable[str]) -> frozenset[str]:
    """The tokens of ``tokens`` that choose a cost curve (see :data:`TUNABLE_PREFIXES`)."""
    return _tunable(tuple(tokens))


@functools.lru_cache(maxsize=1024)
def _tunable(tokens: tuple[str, ...]) -> frozenset[str]:
    # A history holds a handful of distinct sets, each seen by thousands of tasks.
    return frozenset(t for t in opt.normalize(tokens) if t.startswith(TUNABLE_PREFIXES))


@functools.lru_cache(maxsize=4096)
def parse_size(resolution: str) -> tuple[int, int] | None:
    """``"832x480"`` -> (832, 480); anything else (``"720p"``) -> None."""
    m = _SIZE.match(resolution)
    if m is None:
        return None
    width, height = int(m.group(1)), int(m.group(2))
    return (width, height) if width > 0 and height > 0 else None


@dataclass(frozen=True, slots=True)
class Workload:
    """One generation's shape: what its cost depends on."""

    width: int
    height: int
    frames: int
    steps: int

    @property
    def resolution(self) -> str:
        return f"{self.width}x{self.height}"

    @property
    def pixels(self) -> float:
        return float(self.width * self.height)

    @property
    def frame_pixels(self) -> float:
        """Frames x pixels: what the VAE decode runs over."""
        return float(self.frames) * self.pixels

    @property
    def tiled_frame_pixels(self) -> float:
        """Frames x the pixels a tiled VAE decode runs over, overlaps included."""
        if self.width <= VAE_TILE and self.height <= VAE_TILE:
            return self.frame_pixels  # one tile: decoded as without tiling
        return float(self.frames) * _tiled_extent(self.width) * _tiled_extent(self.height)

    @property
    def latent_frames(self) -> int:
        return (max(self.frames, 1) - 1) // VAE_TEMPORAL + 1

    @property
    def tokens(self) -> float:
        """The transformer's sequence length (latent frames x patches per latent frame)."""
        t, h, w = PATCH
        rows = max(self.height // (VAE_SPATIAL * h), 1)
        cols = max(self.width // (VAE_SPATIAL * w), 1)
        return float(max(self.latent_frames // t, 1) * rows * cols)


def _tiled_extent(pixels: int) -> int:
    """The pixels decoded along one side by a tiled decode: a tile starts every stride (in
    latent units, as diffusers walks it) and runs a whole tile or to the edge."""
    latent, tile, stride = (
        pixels // VAE_SPATIAL,
        VAE_TILE // VAE_SPATIAL,
        VAE_TILE_STRIDE // VAE_SPATIAL,
    )
    return sum(min(tile, latent - start) for start in range(0, latent, stride)) * VAE_SPATIAL


FeatureFn = Callable[[Workload], float]
Features = tuple[tuple[str, FeatureFn], ...]

# Per target: the named features its physics says it depends on (a constant always first).
TIME_FEATURES: tuple[tuple[str, FeatureFn], ...] = (
    ("constant", lambda w: 1.0),
    ("steps", lambda w: float(w.steps)),
    ("steps_x_tokens", lambda w: w.steps * w.tokens),
    ("steps_x_tokens_squared", lambda w: w.steps * w.tokens**2),
    ("frames_x_pixels", lambda w: w.frame_pixels),
)
DENOISE_FEATURES: tuple[tuple[str, FeatureFn], ...] = TIME_FEATURES[:4]
DECODE_FEATURES: tuple[tuple[str, FeatureFn], ...] = (
    ("constant", lambda w: 1.0),
    ("pixels", lambda w: w.pixels),
    ("frames_x_pixels", lambda w: w.frame_pixels),
)
CONSTANT_FEATURES: tuple[tuple[str, FeatureFn], ...] = (("constant", lambda w: 1.0),)
# With VAE tiling the decode runs over the tiles, overlaps included.
_TILED_DECODE: tuple[str, FeatureFn] = ("frames_x_tiled_pixels", lambda w: w.tiled_frame_pixels)
TILED_TIME_FEATURES: Features = (*TIME_FEATURES[:4], _TILED_DECODE)
TILED_DECODE_FEATURES: Features = (*DECODE_FEATURES[:2], _TILED_DECODE)
MEMORY_FEATURES: tuple[tuple[str, FeatureFn], ...] = (
    ("constant", lambda w: 1.0),
    ("tokens", lambda w: w.tokens),
    ("tokens_squared", lambda w: w.tokens**2),
    ("pixels", lambda w: w.pixels),
    ("frames_x_pixels", lambda w: w.frame_pixels),
)
