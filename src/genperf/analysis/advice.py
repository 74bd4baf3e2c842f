"""Recovery suggestions: what to do about a failure, by category, cause and phase.

One table, :data:`ADVICE`, keyed by (category, phase, cause); :func:`suggestions_for` picks
the most specific entry. The advice is concrete diffusion practice: an OOM in ``vae_decode``
asks for VAE tiling first, not a smaller model; an OOM in ``denoise`` for offload,
quantisation, fewer frames and ``expandable_segments``; a host OOM in ``model_load`` for
memory-mapped, low_cpu_mem_usage loading. Each suggestion names the optimisation tokens that
make it moot, so advice for what a task already runs with is left out.
"""

from __future__ import annotations

from collections.abc import Iterable

from genperf import optimizations as opt
from genperf.records import ErrorCategory

_C = ErrorCategory

# One suggestion: its text, and the optimisation tokens that make it moot when applied.
_S = tuple[str, tuple[str, ...]]

_VAE_TILING: _S = (
    "Enable VAE tiling (pipe.vae.enable_tiling()): the decoder then works on spatial tiles "
    "instead of the whole video at once, which cuts the decode's peak memory several-fold.",
    (opt.VAE_TILING,),
)
_VAE_SLICING: _S = (
    "Enable VAE slicing (pipe.vae.enable_slicing()) to decode one sample at a time.",
    (opt.VAE_SLICING,),
)
_EXPANDABLE: _S = (
    "Set PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True before the process starts: it cuts "
    "fragmentation when reserved memory is much larger than allocated.",
    (opt.EXPANDABLE_SEGMENTS,),
)
_MODEL_OFFLOAD: _S = (
    "Enable model CPU offload (pipe.enable_model_cpu_offload()): only the component in use "
    "sits on the GPU, so Wan2.2's two experts, the text encoder and the VAE are never "
    "resident together.",
    (opt.OFFLOAD,),
)
_SEQ_OFFLOAD: _S = (
    "As a last resort use sequential CPU offload (pipe.enable_sequential_cpu_offload()): the "
    "lowest VRAM, several times slower.",
    (opt.OFFLOAD_SEQUENTIAL,),
)
_QUANTIZE: _S = (
    "Quantise the transformer weights to fp8 or int8 (torchao, bitsandbytes or optimum-quanto): "
    "about half the weight memory of bf16.",
    (opt.QUANTIZATION,),
)
_HALF: _S = (
    "Load the pipeline in bf16 (dtype=torch.bfloat16) instead of fp32: half the weight memory.",
    (*opt.HALF_PRECISION, opt.QUANTIZATION),
)
_FEWER_FRAMES: _S = (
    "Generate fewer frames or a lower resolution: activation memory grows with "
    "frames x height x width.",
    (),
)
_FREE_GPU: _S = (
    "Check what else holds GPU memory (other processes, a previous pipeline still referenced): "
    "del it, gc.collect(), torch.cuda.empty_cache().",
    (),
)
_BIGGER_GPU: _S = ("If none of this fits, run this model on a GPU with more memory.", ())
_MORE_RAM: _S = (
    "Raise the memory limit or add RAM/swap: check the container or cgroup limit (memory.max), "
    "ulimit -v, and other processes using host memory.",
    (),
)
_MMAP: _S = (
    "Load with memory-mapped safetensors (leave disable_mmap off) and low_cpu_mem_usage=True, "
    "so weights are not held twice in RAM while loading.",
    (),
)

ADVICE: dict[tuple[ErrorCategory, str | None, str | None], tuple[_S, ...]] = {
    # GPU out of memory, by phase.
    (_C.OUT_OF_MEMORY_GPU, "vae_decode", None): (
        _VAE_TILING,
        _VAE_SLICING,
        (
            "Offload the transformers before decoding (enable_model_cpu_offload) so the VAE has "
            "the GPU to itself.",
            (opt.OFFLOAD,),
        ),
        _EXPANDABLE,
        ("Only if tiling is not enough: fewer frames or a lower resolution.", ()),
    ),
    (_C.OUT_OF_MEMORY_GPU, "denoise", None): (
        _MODEL_OFFLOAD,
        _QUANTIZE,
        _HALF,
        _EXPANDABLE,
        _FEWER_FRAMES,
        (
            "Use memory-efficient attention (PyTorch SDPA or flash attention).",
            (opt.ATTENTION,),
        ),
        _SEQ_OFFLOAD,
    ),
    (_C.OUT_OF_MEMORY_GPU, "model_load", None): (
        _HALF,
        (
            "Do not move the whole pipeline with pipe.to('cuda'): use enable_model_cpu_offload() "
            "so components are placed on the GPU only while they run.",
            (opt.OFFLOAD,),
        ),
        _QUANTIZE,
        _FREE_GPU,
        _BIGGER_GPU,
    ),
    (_C.OUT_OF_MEMORY_GPU, "text_encode", None): (
        (
            "Offload the text encoder once prompts are encoded (enable_model_cpu_offload), or "
            "encode prompts on the CPU and pass prompt_embeds.",
            (opt.OFFLOAD,),
        ),
        ("Load the UMT5 text encoder in bf16 or int8.", (*opt.HALF_PRECISION, opt.QUANTIZATION)),
        ("Use a shorter max_sequence_length.", ()),
    ),
    (_C.OUT_OF_MEMORY_GPU, None, None): (
        _MODEL_OFFLOAD,
        _QUANTIZE,
        _EXPANDABLE,
        _VAE_TILING,
        _FEWER_FRAMES,
        _FREE_GPU,
    ),
    # Host out of memory, by phase.
    (_C.OUT_OF_MEMORY_HOST, "model_load", None): (
        _MMAP,
        _HALF,
        (
            "Load one pipeline at a time: release the previous one (del pipe; gc.collect()) "
            "before loading the next.",
            (),
        ),
        ("Use sharded safetensors checkpoints so no single file must fit at once.", ()),
        _MORE_RAM,
    ),
    (_C.OUT_OF_MEMORY_HOST, "vae_decode", None): (
        _VAE_TILING,
        _VAE_SLICING,
        ("Decode fewer frames or a lower resolution: on CPU the decode is where memory peaks.", ()),
        _MORE_RAM,
    ),
    (_C.OUT_OF_MEMORY_HOST, "denoise", None): (
        (
            "CPU offload keeps the offloaded weights in host RAM: quantise them (int8/fp8) or "
            "give the host more RAM.",
            (opt.QUANTIZATION,),
        ),
        _FEWER_FRAMES,
        ("Run fewer generations at once on this host.", ()),
        _MORE_RAM,
    ),
    (_C.OUT_OF_MEMORY_HOST, None, None): (
        _MORE_RAM,
        _VAE_TILING,
        ("Run fewer generations at once on this host.", ()),
        _FEWER_FRAMES,
    ),
    # Model loading, by cause.
    (_C.MODEL_LOAD_ERROR, None, "missing_files"): (
        (
            "The model folder is incomplete: every component folder needs its config.json and "
            "weights. Re-download it (huggingface-cli download <repo> --local-dir <dir>) or fix "
            "the path.",
            (),
        ),
        (
            "Check the model path or repo id the service is configured with.",
            (),
        ),
        (
            "When running offline (HF_HUB_OFFLINE=1), pre-download the model into the cache first.",
            (),
        ),
    ),
    (_C.MODEL_LOAD_ERROR, None, "corrupt_weights"): (
        (
            "A weights file is truncated or corrupt (often an interrupted download or a full "
            "disk): delete it and download it again, then verify its size/sha256.",
            (),
        ),
        ("Check free disk space on the model volume.", ()),
    ),
    (_C.MODEL_LOAD_ERROR, None, "config_mismatch"): (
        (
            "config.json does not match the weights (a shape differs): restore the config that "
            "came with these weights, or download both again from the same revision.",
            (),
        ),
        (
            "Make sure the model class matches the checkpoint (a Wan2.2 repo, Wan2.2 classes).",
            (),
        ),
    ),
    (_C.MODEL_LOAD_ERROR, None, None): (
        (
            "Check the model path, that the download is complete and config and weights match.",
            (),
        ),
        ("Check the installed diffusers/transformers versions support this model.", ()),
    ),
    # Bad requests.
    (_C.INVALID_INPUT, None, "input_shape"): (
        (
            "Tensor inputs have the wrong shape: prompt_embeds must have the text encoder's width; "
            "check the request's embeddings or images against the model.",
            (),
        ),
        ("Validate requests before queueing them so bad input fails fast.", ()),
    ),
    (_C.INVALID_INPUT, None, None): (
        (
            "Check the request: height and width multiples of 16, num_frames of the form 4k+1, "
            "num_inference_steps no larger than the scheduler's num_train_timesteps.",
            (),
        ),
        ("Validate requests before queueing them so bad input fails fast.", ()),
    ),
    # Time limits and interruptions.
    (_C.TIMEOUT, "model_load", None): (
        (
            "Loading timed out: keep model files on a local SSD, pre-download them "
            "(HF_HUB_OFFLINE=1), and keep the pipeline loaded between tasks.",
            (opt.MODEL_CACHED,),
        ),
        ("Raise the load timeout if the disk is known to be slow.", ()),
    ),
    (_C.TIMEOUT, None, None): (
        ("Raise the task timeout if this resolution's normal generation time is near it.", ()),
        ("Use fewer steps or frames for this resolution.", ()),
        ("Check for contention or throttling: other jobs on the GPU, high temperature.", ()),
    ),
    (_C.INTERRUPTED, None, None): (
        ("The run was cancelled or its process stopped: resubmit the task.", ()),
        (
            "If the process vanished without an error (exit code 137), check the kernel log "
            "(dmesg) for the OOM killer and treat it as host out-of-memory.",
            (),
        ),
        ("Drain workers before restarts so running generations can finish.", ()),
    ),
    (_C.UNKNOWN, None, None): (
        (
            "Read the error message and the phase it failed in; rerun with the same seed to "
            "see whether it reproduces.",
            (),
        ),
        ("Check the installed torch/diffusers/transformers versions work together.", ()),
    ),
}


def suggestions_for(
    category: ErrorCategory,
    phase: str | None = None,
    cause: str | None = None,
    applied: Iterable[str] = (),
) -> tuple[str, ...]:
    """The advice for a category, most specific first: (phase and cause), cause, phase, neither.

    Suggestions made moot by an ``applied`` optimisation token are left out.
    """
    applied = tuple(applied)
    for key in (
        (category, phase, cause),
        (category, None, cause),
        (category, phase, None),
        (category, None, None),
    ):
        if key in ADVICE:
            return tuple(text for text, moot in ADVICE[key] if not opt.is_applied(applied, moot))
    return ()


__all__ = ["ADVICE", "suggestions_for"]
