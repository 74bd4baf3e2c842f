"""Optimisations found by looking at real pipelines with the features really switched on."""

from __future__ import annotations

import pytest
from diffusers_support import CALL, torch

from genperf.integrations.diffusers import detect_optimizations, monitor_pipeline
from genperf.integrations.pipeline_inspect import (
    OFFLOAD_GROUP,
    _backend_token,
    _processor_token,
    quantization_token,
)
from genperf.optimizations import KNOWN_TOKENS

pytestmark = pytest.mark.filterwarnings("ignore:unclosed file.*safetensors:ResourceWarning")


def test_a_plain_fp32_pipeline_has_only_sdpa_attention(wan):
    assert detect_optimizations(wan, environ={}) == ("attention:sdpa",)


@pytest.mark.parametrize(
    ("dtype", "token"), [("bfloat16", "dtype:bf16"), ("float16", "dtype:fp16")]
)
def test_a_half_precision_wan_load_is_seen_although_wan_keeps_some_weights_in_fp32(
    tiny_wan_dir, dtype, token
):
    from diffusers import WanPipeline

    pipe = WanPipeline.from_pretrained(str(tiny_wan_dir), dtype=getattr(torch, dtype))
    first = next(pipe.transformer.parameters())
    assert first.dtype == torch.float32  # scale_shift_table: what fooled the first-parameter read
    assert token in detect_optimizations(pipe, environ={})


def test_a_module_without_its_own_dtype_runs_in_the_dtype_of_most_weights():
    class Denoiser(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = torch.nn.Parameter(torch.zeros(4))  # first, small, fp32
            self.body = torch.nn.Linear(64, 64).to(torch.bfloat16)

    class Pipe:
        components = {"transformer": Denoiser()}  # noqa: RUF012

    assert not hasattr(Pipe.components["transformer"], "dtype")
    assert "dtype:bf16" in detect_optimizations(Pipe(), environ={})


def test_vae_tiling_slicing_and_model_offload_are_seen_and_recorded(monitor, wan):
    wan.vae.enable_tiling()
    wan.vae.enable_slicing()
    wan.enable_model_cpu_offload(device="cpu")  # accelerate's hooks, as on a GPU box
    pipe = monitor_pipeline(wan, monitor, model_type="tiny-wan-t2v")
    pipe(**CALL, num_inference_steps=2)
    applied = set(pipe.last_record.optimizations_applied)
    assert {"vae_tiling", "vae_slicing", "offload:model", "attention:sdpa"} <= applied
    assert applied <= set(KNOWN_TOKENS)
    assert [p.name for p in pipe.last_record.phases] == ["text_encode", "denoise", "vae_decode"]
    wan.remove_all_hooks()
    assert "offload:model" not in detect_optimizations(wan)


def test_sequential_offload_is_seen(wan):
    wan.enable_sequential_cpu_offload(device="cpu")
    assert "offload:sequential" in detect_optimizations(wan)


def test_group_offload_is_seen(wan):
    wan.transformer.enable_group_offload(
        onload_device=torch.device("cpu"), offload_type="block_level", num_blocks_per_group=1
    )
    assert OFFLOAD_GROUP in detect_optimizations(wan)


# Importing torch's compiler stack warns about torch.jit.script_method inside torch itself.
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_half_precision_compile_and_attention_backend_are_seen(wan):
    wan.transformer.to(torch.bfloat16)
    wan.transformer_2.to(torch.bfloat16)
    wan.transformer.compile()  # compiled lazily: nothing runs here
    processor = wan.transformer.blocks[0].attn1.processor
    processor._attention_backend = "flash"
    tokens = detect_optimizations(
        wan, environ={"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"}
    )
    assert {"dtype:bf16", "torch_compile", "attention:flash", "alloc:expandable_segments"} <= set(
        tokens
    )


def test_fp8_storage_and_a_quantization_config_are_seen(wan):
    wan.transformer.enable_layerwise_casting(
        storage_dtype=torch.float8_e4m3fn, compute_dtype=torch.float32
    )
    assert "quantization:fp8" in detect_optimizations(wan)
    wan.transformer_2.register_to_config(
        quantization_config={"quant_method": "torchao", "quant_type": "int8_weight_only"}
    )
    assert quantization_token(wan.transformer_2) == "quantization:int8"


@pytest.mark.parametrize(
    ("config", "token"),
    [
        ({"quant_method": "bitsandbytes", "load_in_4bit": True, "load_in_8bit": False}, "int4"),
        ({"quant_method": "bitsandbytes", "load_in_4bit": False, "load_in_8bit": True}, "int8"),
        ({"quant_method": "torchao", "quant_type": "float8_weight_only"}, "fp8"),
        ({"quant_method": "quanto", "weights_dtype": "int4"}, "int4"),
        ({"quant_method": "gguf", "compute_dtype": "bfloat16"}, "gguf"),
    ],
)
def test_quantization_configs_map_to_tokens(config, token):
    from types import SimpleNamespace

    module = SimpleNamespace(config=SimpleNamespace(quantization_config=config))
    assert quantization_token(module) == f"quantization:{token}"


@pytest.mark.parametrize(
    ("backend", "token"),
    [
        ("native", "attention:sdpa"),
        ("_native_efficient", "attention:sdpa"),
        ("_native_flash", "attention:flash"),
        ("flash_varlen", "attention:flash"),
        ("_flash_3_hub", "attention:flash"),
        ("sage", "attention:sage"),
        ("xformers", "attention:xformers"),
    ],
)
def test_attention_backends_map_to_tokens(backend, token):
    assert _backend_token(backend) == token


@pytest.mark.parametrize(
    ("name", "token"),
    [
        ("AttnProcessor2_0", "attention:sdpa"),
        ("XFormersAttnProcessor", "attention:xformers"),
        ("FlashAttnProcessor", "attention:flash"),
        ("AttnProcessor", None),
    ],
)
def test_attention_processor_classes_map_to_tokens(name, token):
    assert _processor_token(name) == token


def test_inspecting_something_strange_never_raises():
    class Weird:
        @property
        def components(self):
            raise RuntimeError("boom")

    assert detect_optimizations(Weird()) == ()
    assert detect_optimizations(object()) == ()
