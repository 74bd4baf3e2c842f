"""Optimisation tokens: families, normalisation, labels."""

from __future__ import annotations

from genperf import optimizations as opt


def test_a_family_is_satisfied_by_any_member() -> None:
    assert opt.is_applied(["quantization:int8"], [opt.QUANTIZATION])
    assert opt.is_applied(("offload:group",), (opt.OFFLOAD,))
    assert not opt.is_applied(["dtype:bf16"], [opt.QUANTIZATION])


def test_an_exact_token_needs_itself() -> None:
    assert opt.is_applied(["offload:sequential"], [opt.OFFLOAD_SEQUENTIAL])
    assert not opt.is_applied(["offload:model"], [opt.OFFLOAD_SEQUENTIAL])
    assert not opt.is_applied([], [opt.VAE_TILING])


def test_tokens_are_compared_normalised() -> None:
    assert opt.is_applied([" VAE_Tiling "], [opt.VAE_TILING])
    assert opt.normalize(["", " ", "A"]) == frozenset({"a"})


def test_an_optimisation_set_has_a_stable_label() -> None:
    assert opt.optimization_set(("vae_tiling", "dtype:bf16")) == "dtype:bf16+vae_tiling"
    assert opt.optimization_set(["dtype:bf16", "vae_tiling"]) == "dtype:bf16+vae_tiling"
    assert opt.optimization_set(()) == "none"


def test_known_tokens_are_lower_case_and_unique() -> None:
    assert len(set(opt.KNOWN_TOKENS)) == len(opt.KNOWN_TOKENS)
    assert all(t == t.lower().strip() for t in opt.KNOWN_TOKENS)
