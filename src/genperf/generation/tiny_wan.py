"""A tiny Wan2.2 T2V-A14B-shaped pipeline with random weights, built offline.

The same diffusers code path as a real Wan2.2 T2V-A14B deployment (``WanPipeline`` with two
``WanTransformer3DModel`` experts and ``boundary_ratio=0.875``, ``AutoencoderKLWan`` with 4x
temporal / 8x spatial compression, a UMT5 text encoder, ``FlowMatchEulerDiscreteScheduler``),
with tiny configs (the sizes of diffusers' own Wan tests) and random weights. Nothing is
downloaded: the tokenizer is a byte-level BPE trained here on a few sentences, so no prompt
maps to ``<unk>``. See ``shared/reference/tiny-wan-workload.md`` for the measurements.

Building costs about a second (plus the torch/diffusers imports); the result is saved with
``save_pretrained`` (safetensors) and loads like any local diffusers directory.
"""

from __future__ import annotations

import importlib
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BOUNDARY_RATIO = 0.875  # Wan2.2 T2V-A14B: the high-noise expert handles t >= 875
MODEL_INDEX = "model_index.json"
_PAD, _EOS, _UNK = "<pad>", "</s>", "<unk>"  # the tokenizer's special tokens (T5's names)

_CORPUS = (
    "a cat dancing in the rain",
    "a monkey playing drums on a beach at sunset",
    "cinematic drone shot over snowy mountains",
    "a red car driving through a neon city at night",
    "slow motion waves crashing on rocks",
    "an astronaut riding a horse on the moon",
    "blurry, low quality, watermark, static, worst quality, jpeg artifacts",
    "The quick brown fox jumps over the lazy dog 0123456789 !?.,;:'\"-()",
)


@dataclass(frozen=True, slots=True)
class TinyWanPreset:
    """Sizes of one preset (the transformer experts, the VAE and the text encoder)."""

    heads: int
    head_dim: int
    layers: int
    ffn: int
    vae_base: int
    text_dim: int
    text_layers: int
    text_heads: int


PRESETS: dict[str, TinyWanPreset] = {
    # diffusers' tests/pipelines/wan/test_wan.py get_dummy_components: 0.44 MB on disk
    "tiny": TinyWanPreset(2, 12, 2, 32, 3, 32, 2, 4),
    # still seconds on two CPU cores: 8 MB on disk
    "small": TinyWanPreset(4, 32, 4, 256, 8, 64, 2, 4),
}


def build_tokenizer(vocab_size: int = 384) -> Any:
    """A byte-level BPE trained in-process, wrapped as a transformers fast tokenizer."""
    tk = _module("tokenizers")
    pre_tokenizers = tk.pre_tokenizers
    tok = tk.Tokenizer(tk.models.BPE(unk_token=_UNK))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tk.decoders.ByteLevel()
    trainer = tk.trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[_PAD, _EOS, _UNK],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(_CORPUS), trainer=trainer)
    eos = tok.token_to_id(_EOS)
    # T5 style: every sequence ends with </s> (the pipeline tokenizes with special tokens).
    tok.post_processor = tk.processors.TemplateProcessing(
        single=f"$A {_EOS}", pair=f"$A {_EOS} $B {_EOS}", special_tokens=[(_EOS, eos)]
    )
    return _module("transformers").PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=_PAD,
        eos_token=_EOS,
        unk_token=_UNK,
        model_max_length=512,
        padding_side="right",
    )


def build_tiny_wan(preset: str = "tiny", *, two_experts: bool = True) -> Any:
    """A ``WanPipeline`` in the Wan2.2 T2V-A14B layout with random weights (seeded)."""
    torch = _module("torch")
    d = _module("diffusers")
    tf = _module("transformers")
    p = PRESETS[preset]
    tokenizer = build_tokenizer()
    torch.manual_seed(0)
    text_config = tf.UMT5Config(
        vocab_size=len(tokenizer),
        d_model=p.text_dim,
        d_kv=p.text_dim // p.text_heads,
        d_ff=p.text_dim * 2,
        num_layers=p.text_layers,
        num_heads=p.text_heads,
        feed_forward_proj="gated-gelu",
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    text_encoder = tf.UMT5EncoderModel(text_config).eval()
    torch.manual_seed(0)
    vae = d.AutoencoderKLWan(
        base_dim=p.vae_base,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],  # 4x temporal, 8x spatial, as the real VAE
    )

    def expert(seed: int) -> Any:
        torch.manual_seed(seed)
        return d.WanTransformer3DModel(
            patch_size=(1, 2, 2),
            num_attention_heads=p.heads,
            attention_head_dim=p.head_dim,
            in_channels=16,
            out_channels=16,
            text_dim=p.text_dim,
            freq_dim=256,
            ffn_dim=p.ffn,
            num_layers=p.layers,
            cross_attn_norm=True,
            qk_norm="rms_norm_across_heads",
            rope_max_seq_len=1024,  # as the real model: must cover latent H/2 and W/2
        )

    return d.WanPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        scheduler=d.FlowMatchEulerDiscreteScheduler(shift=5.0),
        transformer=expert(0),
        transformer_2=expert(1) if two_experts else None,
        boundary_ratio=BOUNDARY_RATIO if two_experts else None,
    )


def _module(name: str) -> Any:
    """A third-party module, imported on first use and typed as Any (they are untyped)."""
    return importlib.import_module(name)


def is_built(directory: Path) -> bool:
    """Whether ``directory`` holds a saved pipeline (its model_index.json)."""
    return (directory / MODEL_INDEX).is_file()


def ensure_tiny_wan(directory: Path, preset: str = "tiny") -> Path:
    """Build and save the tiny pipeline into ``directory`` unless it is already there.

    The pipeline is saved into a sibling temporary folder and renamed into place, so a
    reader (or a second builder) never sees a half-written model. Returns ``directory``.
    """
    if is_built(directory):
        return directory
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = directory.with_name(f".{directory.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    try:
        pipe = build_tiny_wan(preset)
        pipe.save_pretrained(str(staging))
        del pipe
        if directory.exists() and not is_built(directory):
            shutil.rmtree(directory)  # an interrupted earlier build: replace it
        try:
            staging.rename(directory)
        except OSError:
            if not is_built(directory):  # not a concurrent builder's finished copy: a real error
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return directory
