"""Optimisation presets: named sets of memory/time trade-offs a pipeline can be switched to.

Ordered from the lightest touch (nothing) to the most memory-saving, which is the order an
out-of-memory retry walks: each preset trades some time for less peak memory. Each preset's
tokens are those :func:`genperf.integrations.pipeline_inspect.detect_optimizations` reports
once it is applied, so history recorded under a preset is found again by its tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from genperf import optimizations as opt


@dataclass(frozen=True, slots=True)
class Preset:
    """One optimisation preset: its name, the tokens it applies, and whether it needs a GPU."""

    name: str
    tokens: tuple[str, ...]
    needs_accelerator: bool = False


PRESETS: tuple[Preset, ...] = (
    Preset("default", ()),
    Preset("vae_slicing", (opt.VAE_SLICING,)),
    Preset("vae_tiling", (opt.VAE_TILING,)),
    Preset("vae_tiling+vae_slicing", (opt.VAE_SLICING, opt.VAE_TILING)),
    Preset("model_offload", (opt.OFFLOAD_MODEL, opt.VAE_SLICING, opt.VAE_TILING), True),
    Preset("sequential_offload", (opt.OFFLOAD_SEQUENTIAL, opt.VAE_SLICING, opt.VAE_TILING), True),
)
PRESET_NAMES: tuple[str, ...] = tuple(p.name for p in PRESETS)
_BY_NAME = {p.name: p for p in PRESETS}


def preset(name: str) -> Preset:
    """The preset of this name.

    Raises:
        ValueError: no preset has this name (the message lists them).
    """
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; one of {', '.join(PRESET_NAMES)}") from None


def available(accelerator: bool) -> tuple[Preset, ...]:
    """The presets this machine can run (offload moves weights between CPU and a GPU)."""
    return tuple(p for p in PRESETS if accelerator or not p.needs_accelerator)


def lighter_than(name: str, candidates: Sequence[Preset]) -> Preset | None:
    """The next preset after ``name`` in ``candidates`` (the one to retry with), or None."""
    names = [p.name for p in candidates]
    if name not in names:
        return candidates[0] if candidates else None
    i = names.index(name)
    return candidates[i + 1] if i + 1 < len(candidates) else None


def apply(pipe: Any, chosen: Preset) -> None:
    """Switch a (diffusers) pipeline to ``chosen``: VAE tiling and slicing on or off.

    Offload presets are applied once at load (they move modules between devices), so they are
    set by :func:`apply_offload` on a freshly loaded pipeline only.
    """
    vae = getattr(pipe, "vae", None)
    if vae is None:
        return
    tokens = set(chosen.tokens)
    for token, on, off in (
        (opt.VAE_TILING, "enable_tiling", "disable_tiling"),
        (opt.VAE_SLICING, "enable_slicing", "disable_slicing"),
    ):
        method = getattr(vae, on if token in tokens else off, None)
        if callable(method):
            method()


def apply_offload(pipe: Any, chosen: Preset) -> None:
    """Model or sequential CPU offload, for presets that use it (needs an accelerator)."""
    if opt.OFFLOAD_MODEL in chosen.tokens:
        pipe.enable_model_cpu_offload()
    elif opt.OFFLOAD_SEQUENTIAL in chosen.tokens:
        pipe.enable_sequential_cpu_offload()
