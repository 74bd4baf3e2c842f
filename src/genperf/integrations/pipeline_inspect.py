"""Which optimisations a diffusers pipeline runs with, found by looking at the pipeline itself.

The caller does not have to say: the dtype of each denoiser (its own ``dtype``), a quantisation
config on any component, accelerate's CPU-offload hooks (model or sequential) and diffusers'
group offloading, VAE tiling and slicing, the attention backend or processor class,
``torch.compile`` (whole module or regional), and ``PYTORCH_CUDA_ALLOC_CONF=expandable_segments``.
Each maps to a canonical token of :mod:`genperf.optimizations`.

Nothing here imports torch or diffusers: components are recognised by their attributes and
class names, so inspecting costs one walk over the modules and never fails a generation.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Mapping
from typing import Any

from genperf import optimizations as opt

logger = logging.getLogger("genperf.integrations")

# Components that run the denoising loop, in the order their dtype is read.
DENOISER_NAMES: tuple[str, ...] = ("transformer", "transformer_2", "unet", "unet_2", "prior")

# diffusers' group offloading (enable_group_offload): between model and sequential offload.
# Not (yet) in KNOWN_TOKENS; it belongs to the "offload:" family, so advice to offload is moot.
OFFLOAD_GROUP = "offload:group"

_DTYPE_TOKENS = {"torch.bfloat16": opt.DTYPE_BF16, "torch.float16": opt.DTYPE_FP16}
_FP8 = re.compile(r"float8|fp8|e4m3|e5m2")
_INT4 = re.compile(r"int4|uint4|nf4|fp4|4bit|\bq4|\b4\b")
_INT8 = re.compile(r"int8|8bit|\bq8|\b8\b")
_QUANT_KEYS = ("quant_type", "weights_dtype", "weights", "bits", "format", "quant_method")


def components(pipe: Any) -> dict[str, Any]:
    """The pipeline's ``torch.nn.Module`` components by name (anything with ``named_modules``)."""
    found = getattr(pipe, "components", None)
    if not isinstance(found, Mapping):
        return {}
    return {str(k): v for k, v in found.items() if v is not None and hasattr(v, "named_modules")}


def denoisers(pipe: Any) -> dict[str, Any]:
    """The denoiser components present (``transformer``, ``transformer_2``, ``unet`` ...)."""
    comps = components(pipe)
    return {name: comps[name] for name in DENOISER_NAMES if name in comps}


def detect_optimizations(pipe: Any, environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The optimisation tokens that apply to ``pipe`` now, sorted. Never raises."""
    try:
        return tuple(sorted(set(_detect(pipe, os.environ if environ is None else environ))))
    except Exception:  # inspection is a bonus; a strange pipeline must not fail the generation
        logger.debug("could not inspect the pipeline's optimisations", exc_info=True)
        return ()


def _detect(pipe: Any, environ: Mapping[str, str]) -> Iterator[str]:
    comps = components(pipe)
    main = denoisers(pipe) or comps
    for module in main.values():
        dtype = _dtype(module)
        if dtype in _DTYPE_TOKENS:
            yield _DTYPE_TOKENS[dtype]
    for module in comps.values():
        token = quantization_token(module, walk=False)
        if token is not None:
            yield token
    if getattr(pipe, "_all_hooks", None):  # enable_model_cpu_offload keeps its hooks here
        yield opt.OFFLOAD_MODEL
    walk = _Walk()
    for name, module in comps.items():
        walk.visit(module, attention=name in main)
    yield from walk.tokens
    attention = None if walk.processor is None else _attention_of(walk.processor)
    if attention is not None:
        yield attention
    vae = comps.get("vae")
    if vae is not None:
        if getattr(vae, "use_tiling", False) is True:
            yield opt.VAE_TILING
        if getattr(vae, "use_slicing", False) is True:
            yield opt.VAE_SLICING
    if "expandable_segments:true" in _alloc_conf(environ):
        yield opt.EXPANDABLE_SEGMENTS


def _dtype(module: Any) -> str | None:
    """The dtype the component runs in, as text (``torch.bfloat16``).

    Its own ``dtype`` where it has one (diffusers' ModelMixin and transformers' PreTrainedModel
    skip the modules they keep in fp32: a bf16 Wan transformer's first parameter,
    ``scale_shift_table``, stays fp32). Otherwise the floating-point dtype holding most weights.
    """
    try:
        own = getattr(module, "dtype", None)
        if own is not None and str(own).startswith("torch."):
            return str(own)
        counts: dict[str, int] = {}
        for param in module.parameters():
            if param.is_floating_point():
                key = str(param.dtype)
                counts[key] = counts.get(key, 0) + int(param.numel())
    except Exception:
        return None
    return max(counts, key=counts.__getitem__) if counts else None


def quantization_token(module: Any, *, walk: bool = True) -> str | None:
    """``quantization:int8|fp8|int4`` (or ``quantization:<method>``) if the module is quantised:
    by its quantisation config, or (``walk``) by fp8 weight storage without one."""
    config = getattr(getattr(module, "config", None), "quantization_config", None)
    quantizer = getattr(module, "hf_quantizer", None)
    if config is None and quantizer is not None:
        config = getattr(quantizer, "quantization_config", None)
    if config is None:
        if quantizer is not None:
            return "quantization:unknown"
        if walk:
            found = _Walk()
            found.visit(module, attention=False)
            return opt.QUANTIZATION_FP8 if opt.QUANTIZATION_FP8 in found.tokens else None
        return None
    data = _as_dict(config)
    if data.get("load_in_4bit") is True:
        return opt.QUANTIZATION_INT4
    if data.get("load_in_8bit") is True:
        return opt.QUANTIZATION_INT8
    text = " ".join(str(data[k]) for k in _QUANT_KEYS if data.get(k) is not None).lower()
    for pattern, token in (
        (_FP8, opt.QUANTIZATION_FP8),
        (_INT4, opt.QUANTIZATION_INT4),
        (_INT8, opt.QUANTIZATION_INT8),
    ):
        if pattern.search(text):
            return token
    method = str(data.get("quant_method") or "unknown").lower()
    return f"quantization:{method}"


def _as_dict(config: Any) -> dict[str, Any]:
    if isinstance(config, Mapping):
        return dict(config)
    to_dict = getattr(config, "to_dict", None)
    if callable(to_dict):
        try:
            data = to_dict()
            if isinstance(data, Mapping):
                return dict(data)
        except Exception:
            logger.debug("quantization_config.to_dict() failed", exc_info=True)
    return {"quant_type": str(config)}


class _Walk:
    """One pass over a module tree (``_modules`` dicts, no names: fast): offload hooks,
    torch.compile (whole module or regional), fp8 weight storage, and the first attention
    processor of the denoisers."""

    def __init__(self) -> None:
        self.tokens: set[str] = set()
        self.processor: Any = None

    def visit(self, root: Any, *, attention: bool) -> None:
        stack = [root]
        seen: set[int] = set()
        while stack:
            module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            state = getattr(module, "__dict__", None)
            if not isinstance(state, dict):
                continue
            self._inspect(module, state, attention)
            children = state.get("_modules")
            if isinstance(children, dict):
                # Reversed: modules are visited in definition order (blocks[0] first).
                stack.extend(c for c in reversed(children.values()) if c is not None)

    def _inspect(self, module: Any, state: dict[str, Any], attention: bool) -> None:
        if state.get("_compiled_call_impl") is not None or type(module).__name__ == (
            "OptimizedModule"
        ):
            self.tokens.add(opt.TORCH_COMPILE)
        hook = state.get("_hf_hook")
        if hook is not None:
            for h in _flatten_hooks(hook):
                name = type(h).__name__
                if name == "CpuOffload":
                    self.tokens.add(opt.OFFLOAD_MODEL)
                elif name == "AlignDevicesHook" and getattr(h, "offload", False) is True:
                    self.tokens.add(opt.OFFLOAD_SEQUENTIAL)
        registry = state.get("_diffusers_hook")
        if registry is not None and _has_group_offload(registry):
            self.tokens.add(OFFLOAD_GROUP)
        params = state.get("_parameters")
        if params and opt.QUANTIZATION_FP8 not in self.tokens:
            for param in params.values():
                if param is not None and "float8" in str(param.dtype):
                    self.tokens.add(opt.QUANTIZATION_FP8)
                    break
        if attention and self.processor is None:
            processor = state.get("processor")
            if processor is not None and hasattr(module, "set_processor"):
                self.processor = processor


def _flatten_hooks(hook: Any) -> Iterator[Any]:
    if hook is None:
        return
    inner = getattr(hook, "hooks", None)  # accelerate's SequentialHook
    if type(hook).__name__ == "SequentialHook" and isinstance(inner, list | tuple):
        for h in inner:
            yield from _flatten_hooks(h)
    else:
        yield hook


def _has_group_offload(registry: Any) -> bool:
    get_hook = getattr(registry, "get_hook", None)
    if not callable(get_hook):
        return False
    try:
        return get_hook("group_offloading") is not None
    except Exception:
        return False


def _attention_of(processor: Any) -> str | None:
    """The attention kernel an attention processor runs."""
    if hasattr(processor, "_attention_backend"):  # diffusers' attention dispatcher
        backend = processor._attention_backend or _active_backend()
        return _backend_token(str(getattr(backend, "value", backend) or "native"))
    return _processor_token(type(processor).__name__)


def _active_backend() -> Any:
    """diffusers' process-wide default attention backend (``DIFFUSERS_ATTN_BACKEND``)."""
    import sys

    dispatch = sys.modules.get("diffusers.models.attention_dispatch")
    registry = getattr(dispatch, "_AttentionBackendRegistry", None)
    return getattr(registry, "_active_backend", None) or "native"


def _backend_token(backend: str) -> str:
    b = backend.lower().lstrip("_")
    if "flash" in b and not b.startswith("native"):
        return opt.ATTENTION_FLASH
    if b.startswith("aiter"):
        return opt.ATTENTION_FLASH
    if b == "native" or b.startswith("native"):
        return opt.ATTENTION_FLASH if b == "native_flash" else opt.ATTENTION_SDPA
    for family in ("sage", "xformers", "flex"):
        if b.startswith(family):
            return f"attention:{family}"
    return f"attention:{b}"


def _processor_token(name: str) -> str | None:
    lowered = name.lower()
    if "flash" in lowered:
        return opt.ATTENTION_FLASH
    if "xformers" in lowered:
        return "attention:xformers"
    if "2_0" in lowered or "sdpa" in lowered:
        return opt.ATTENTION_SDPA
    return None  # the classic processor: explicit matmul attention, nothing applied


def _alloc_conf(environ: Mapping[str, str]) -> str:
    text = ",".join(environ.get(k, "") for k in ("PYTORCH_CUDA_ALLOC_CONF", "PYTORCH_ALLOC_CONF"))
    return text.replace(" ", "").lower()
