"""The optimisation tokens of ``TaskRecord.optimizations_applied``, declared once.

A token names one optimisation a generation ran with. The diffusers integration writes them,
analysis reads them: to break results down by optimisation set and to never recommend an
optimisation that is already applied. Tokens are lower-case; a ``family:value`` token belongs
to a family (``quantization:int8`` is a quantisation), so "quantise the weights" is satisfied
by any ``quantization:*`` token.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

DTYPE_BF16 = "dtype:bf16"
DTYPE_FP16 = "dtype:fp16"
DTYPE_FP32 = "dtype:fp32"  # said explicitly: full precision (no optimisation, but known)
QUANTIZATION_INT8 = "quantization:int8"
QUANTIZATION_FP8 = "quantization:fp8"
QUANTIZATION_INT4 = "quantization:int4"
OFFLOAD_MODEL = "offload:model"
OFFLOAD_SEQUENTIAL = "offload:sequential"
OFFLOAD_GROUP = "offload:group"  # diffusers' group offloading, between model and sequential
VAE_TILING = "vae_tiling"
VAE_SLICING = "vae_slicing"
ATTENTION_SDPA = "attention:sdpa"
ATTENTION_FLASH = "attention:flash"
ATTENTION_XFORMERS = "attention:xformers"
TORCH_COMPILE = "torch_compile"
EXPANDABLE_SEGMENTS = "alloc:expandable_segments"
MODEL_CACHED = "model_cached"  # the pipeline was already loaded (kept warm between tasks)

# Families: a pattern ending in ":" matches every token of the family.
QUANTIZATION = "quantization:"
OFFLOAD = "offload:"
ATTENTION = "attention:"
HALF_PRECISION: tuple[str, ...] = (DTYPE_BF16, DTYPE_FP16)

KNOWN_TOKENS: tuple[str, ...] = (
    DTYPE_BF16,
    DTYPE_FP16,
    DTYPE_FP32,
    QUANTIZATION_INT8,
    QUANTIZATION_FP8,
    QUANTIZATION_INT4,
    OFFLOAD_MODEL,
    OFFLOAD_SEQUENTIAL,
    OFFLOAD_GROUP,
    VAE_TILING,
    VAE_SLICING,
    ATTENTION_SDPA,
    ATTENTION_FLASH,
    ATTENTION_XFORMERS,
    TORCH_COMPILE,
    EXPANDABLE_SEGMENTS,
    MODEL_CACHED,
)


def normalize(tokens: Iterable[str]) -> frozenset[str]:
    """The tokens lower-cased and stripped, empty ones dropped."""
    if isinstance(tokens, tuple):
        return _normalize_tuple(tokens)
    return frozenset(t.strip().lower() for t in tokens if t and t.strip())


@functools.lru_cache(maxsize=1024)
def _normalize_tuple(tokens: tuple[str, ...]) -> frozenset[str]:
    # A window holds a handful of distinct optimisation sets, each seen by thousands of tasks.
    return frozenset(t.strip().lower() for t in tokens if t and t.strip())


def is_applied(applied: Iterable[str], satisfied_by: Iterable[str]) -> bool:
    """True when any token in ``applied`` satisfies any pattern of ``satisfied_by``.

    A pattern ending in ``:`` (a family such as :data:`QUANTIZATION`) matches every token that
    starts with it; any other pattern matches only itself.
    """
    have = normalize(applied)
    if not have:
        return False
    for pattern in satisfied_by:
        p = pattern.lower()
        if p.endswith(":"):
            if any(t.startswith(p) for t in have):
                return True
        elif p in have:
            return True
    return False


def optimization_set(tokens: Iterable[str]) -> str:
    """A stable label for a set of tokens, for breakdowns: sorted and joined, or "none"."""
    norm = sorted(normalize(tokens))
    return "+".join(norm) if norm else "none"
