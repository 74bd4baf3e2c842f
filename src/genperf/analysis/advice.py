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

# One suggestion: its text alone when nothing makes it moot, else (text, the optimisation
# tokens that make it moot when applied).
_S = str | tuple[str, tuple[str, ...]]

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
    "frames x height x width."
)
_FREE_GPU: _S = (
    "Check what else holds GPU memory (other processes, a previous pipeline still referenced): "
    "del it, gc.collect(), torch.cuda.empty_cache()."
)
_BIGGER_GPU: _S = "If none of this fits, run this model on a GPU with more memory."
_MORE_RAM: _S = (
    "Raise the memory limit or add RAM/swap: check the container or cgroup limit (memory.max), "
    "ulimit -v, and other processes using host memory."
)
_MMAP: _S = (
    "Load with memory-mapped safetensors (leave disable_mmap off) and low_cpu_mem_usage=True, "
    "so weights are not held twice in RAM while loading."
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
        "Only if tiling is not enough: fewer frames or a lower resolution.",
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
        "Use a shorter max_sequence_length.",
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
        "Load one pipeline at a time: release the previous one (del pipe; gc.collect()) "
        "before loading the next.",
        "Use sharded safetensors checkpoints so no single file must fit at once.",
        _MORE_RAM,
    ),
    (_C.OUT_OF_MEMORY_HOST, "vae_decode", None): (
        _VAE_TILING,
        _VAE_SLICING,
        "Decode fewer frames or a lower resolution: on CPU the decode is where memory peaks.",
        _MORE_RAM,
    ),
    (_C.OUT_OF_MEMORY_HOST, "denoise", None): (
        (
            "CPU offload keeps the offloaded weights in host RAM: quantise them (int8/fp8) or "
            "give the host more RAM.",
            (opt.QUANTIZATION,),
        ),
        _FEWER_FRAMES,
        "Run fewer generations at once on this host.",
        _MORE_RAM,
    ),
    (_C.OUT_OF_MEMORY_HOST, None, None): (
        _MORE_RAM,
        _VAE_TILING,
        "Run fewer generations at once on this host.",
        _FEWER_FRAMES,
    ),
    # The kernel's OOM killer: no exception, a SIGKILL (exit code 137).
    (_C.OUT_OF_MEMORY_HOST, None, "oom_killer"): (
        "The kernel's OOM killer stopped the process (SIGKILL, exit code 137): confirm with "
        "dmesg / journalctl -k ('Out of memory: Killed process') or the container's "
        "OOMKilled status, and raise its memory limit (memory.max, docker --memory).",
        _MMAP,
        "Run fewer generations (or workers) at once on this host.",
        _MORE_RAM,
    ),
    (_C.OUT_OF_MEMORY_HOST, "model_load", "oom_killer"): (
        "Killed while loading: the weights were held twice in RAM or several pipelines "
        "loaded at once. Load memory-mapped (low_cpu_mem_usage=True, leave disable_mmap "
        "off) and load one pipeline at a time.",
        "Raise the container/cgroup memory limit (memory.max) to the largest checkpoint "
        "plus the process's working set.",
        _MORE_RAM,
    ),
    # Storage: disk full and I/O errors, by phase.
    (_C.STORAGE_ERROR, "save_output", "disk_full"): (
        "The output volume is full: free space (old outputs, temporary frames), move "
        "outputs to a larger volume, and alert on free space before it runs out.",
        "Write each video to a temporary file on the same volume and rename it when "
        "complete, so a full disk never leaves a truncated output behind.",
    ),
    (_C.STORAGE_ERROR, "model_load", "disk_full"): (
        "The model or cache volume is full (downloads and the Hugging Face cache write "
        "there): free space (huggingface-cli delete-cache) or point HF_HOME at a larger "
        "volume, then download the model again: a partial download is corrupt.",
    ),
    (_C.STORAGE_ERROR, None, "disk_full"): (
        "A disk is full (or a quota reached): find it with df -h, free space on the data, "
        "output and cache volumes, and keep 50 GB free for models.",
        "Check /tmp and the torch compile and Triton caches, which grow unattended.",
    ),
    (_C.STORAGE_ERROR, "model_load", "io_error"): (
        "Reading the weights failed at the device (EIO, a bus error on a memory-mapped "
        "file, a stale network mount): check the disk's health (dmesg, smartctl) and the "
        "mount, then copy the model to a healthy local SSD and download it again.",
        "Do not load models straight from a network share: copy them to local storage.",
    ),
    (_C.STORAGE_ERROR, "save_output", "io_error"): (
        "Writing the output failed at the device or mount (EIO, read-only file system, "
        "stale NFS handle): check the output volume's mount and health (dmesg), remount "
        "read-write, and retry the save without generating again if the frames are kept.",
    ),
    (_C.STORAGE_ERROR, None, None): (
        "An I/O error: check the volume's health and mount (dmesg, smartctl, mount), "
        "free space (df -h) and permissions.",
        "Retry the task once the volume is healthy.",
    ),
    # Network: downloads and remote services.
    (_C.NETWORK_ERROR, "model_load", None): (
        "Downloading the model failed on the network: pre-download it "
        "(huggingface-cli download <repo> --local-dir <dir>) and serve with "
        "HF_HUB_OFFLINE=1 so a generation never waits on the Hub.",
        "Behind a proxy set HTTPS_PROXY; on a slow link set HF_HUB_DOWNLOAD_TIMEOUT and "
        "HF_HUB_ENABLE_HF_TRANSFER=1; or use a mirror (HF_ENDPOINT).",
    ),
    (_C.NETWORK_ERROR, "save_output", None): (
        "Uploading the output failed: retry the upload with backoff from the saved file "
        "instead of failing the generation.",
        "Check the storage endpoint's address, credentials and certificates.",
    ),
    (_C.NETWORK_ERROR, None, None): (
        "A connection failed (refused, reset, DNS, TLS): check the remote service is up "
        "and reachable from this host (curl it), the proxy settings and certificates.",
        "Retry with backoff; keep models and inputs local so generation needs no network.",
    ),
    # NaN or black output: numerical overflow, by phase.
    (_C.NUMERICAL_ERROR, "vae_decode", None): (
        (
            "The VAE overflowed in fp16 (NaN, black frames): run the VAE in float32 "
            "(AutoencoderKLWan.from_pretrained(..., subfolder='vae', torch_dtype=torch.float32), "
            "as Wan's reference does) or the whole pipeline in bf16, never fp16.",
            (opt.DTYPE_FP32,),
        ),
        ("With VAE tiling, fp32 decoding costs little memory.", (opt.VAE_TILING,)),
    ),
    (_C.NUMERICAL_ERROR, "denoise", None): (
        "The transformer's activations overflowed: use bf16 instead of fp16 (same memory, "
        "fp32's range).",
        "Check the scheduler and guidance scale against the model's defaults; a very high "
        "guidance scale can diverge.",
    ),
    (_C.NUMERICAL_ERROR, None, None): (
        (
            "NaN or black output is almost always fp16 overflow: run in bf16, and the VAE in "
            "float32.",
            (opt.DTYPE_FP32,),
        ),
        "Check that quantised or compiled components give the same output as the plain "
        "model on one seed.",
    ),
    # GPU faults reported by the driver.
    (_C.GPU_FAULT, None, "ecc_error"): (
        "The GPU reported an uncorrectable ECC error: drain this GPU, check "
        "nvidia-smi -q -d ECC and dmesg for Xid 48/63/64/94/95, reset it "
        "(nvidia-smi -r) or reboot; replace it if errors recur.",
        "Restart the worker process: its CUDA context cannot be used after the fault.",
    ),
    (_C.GPU_FAULT, None, "illegal_memory_access"): (
        "An illegal memory access kills the process's CUDA context: restart the worker, "
        "and check dmesg for Xid 13/31/43 on this GPU.",
        (
            "If it repeats on one model or setting, rerun with CUDA_LAUNCH_BLOCKING=1 to find "
            "the kernel, and try without torch.compile or custom attention kernels.",
            (opt.TORCH_COMPILE,),
        ),
        "Update the driver, torch and the attention library together.",
    ),
    (_C.GPU_FAULT, None, "launch_failure"): (
        "A kernel failed to launch or was killed (a watchdog on a display GPU, a driver "
        "fault): check dmesg for Xid, run compute on a GPU without a display, and restart "
        "the worker.",
        "Update the driver; if one GPU repeats it, drain it and test it.",
    ),
    (_C.GPU_FAULT, None, None): (
        "The driver reported a GPU fault (Xid): read dmesg / journalctl -k for the Xid "
        "number, drain the GPU, reset it (nvidia-smi -r) or reboot the host.",
        "Xid 79 (fallen off the bus) points at power, cooling or the PCIe slot: check them.",
        "Restart the worker process: its CUDA context cannot be used after the fault.",
    ),
    # torch's CUDA against the driver.
    (_C.CUDA_SETUP_ERROR, None, "driver_mismatch"): (
        "torch was built for a newer CUDA than the driver supports (or for another GPU "
        "architecture): upgrade the NVIDIA driver, or install the torch build for the "
        "driver's CUDA (nvidia-smi shows it; pip install torch --index-url "
        "https://download.pytorch.org/whl/cu1XX).",
        "genperf doctor compares torch's CUDA with the driver's.",
    ),
    (_C.CUDA_SETUP_ERROR, None, "no_cuda"): (
        "No usable CUDA: install the CUDA build of torch (pip's CPU wheel has none), check "
        "the driver with nvidia-smi, and in a container expose the GPU (--gpus all).",
        "Check CUDA_VISIBLE_DEVICES is not empty or wrong for this worker.",
    ),
    (_C.CUDA_SETUP_ERROR, None, None): (
        "CUDA cannot start: check nvidia-smi, the driver and torch's CUDA version "
        "(genperf doctor), and CUDA_VISIBLE_DEVICES.",
    ),
    # Time limits by phase.
    (_C.TIMEOUT, "save_output", None): (
        "Saving the output timed out: write to a local disk first and upload afterwards; "
        "encode video with a faster preset.",
    ),
    (_C.TIMEOUT, "vae_decode", None): (
        "The decode timed out: with VAE tiling on and memory to spare, turn tiling off "
        "(it trades time for memory); else raise the timeout for this resolution.",
        "Check for contention or throttling: other jobs on the GPU, high temperature.",
    ),
    # Model loading, by cause.
    (_C.MODEL_LOAD_ERROR, None, "missing_files"): (
        "The model folder is incomplete: every component folder needs its config.json and "
        "weights. Re-download it (huggingface-cli download <repo> --local-dir <dir>) or fix "
        "the path.",
        "Check the model path or repo id the service is configured with.",
        "When running offline (HF_HUB_OFFLINE=1), pre-download the model into the cache first.",
    ),
    (_C.MODEL_LOAD_ERROR, None, "corrupt_weights"): (
        "A weights file is truncated or corrupt (often an interrupted download or a full "
        "disk): delete it and download it again, then verify its size/sha256.",
        "Check free disk space on the model volume.",
    ),
    (_C.MODEL_LOAD_ERROR, None, "config_mismatch"): (
        "config.json does not match the weights (a shape differs): restore the config that "
        "came with these weights, or download both again from the same revision.",
        "Make sure the model class matches the checkpoint (a Wan2.2 repo, Wan2.2 classes).",
    ),
    (_C.MODEL_LOAD_ERROR, None, None): (
        "Check the model path, that the download is complete and config and weights match.",
        "Check the installed diffusers/transformers versions support this model.",
    ),
    # Bad requests.
    (_C.INVALID_INPUT, None, "input_shape"): (
        "Tensor inputs have the wrong shape: prompt_embeds must have the text encoder's width; "
        "check the request's embeddings or images against the model.",
        "Validate requests before queueing them so bad input fails fast.",
    ),
    (_C.INVALID_INPUT, None, None): (
        "Check the request: height and width multiples of 16, num_frames of the form 4k+1, "
        "num_inference_steps no larger than the scheduler's num_train_timesteps.",
        "Validate requests before queueing them so bad input fails fast.",
    ),
    # Time limits and interruptions.
    (_C.TIMEOUT, "model_load", None): (
        (
            "Loading timed out: keep model files on a local SSD, pre-download them "
            "(HF_HUB_OFFLINE=1), and keep the pipeline loaded between tasks.",
            (opt.MODEL_CACHED,),
        ),
        "Raise the load timeout if the disk is known to be slow.",
    ),
    (_C.TIMEOUT, None, None): (
        "Raise the task timeout if this resolution's normal generation time is near it.",
        "Use fewer steps or frames for this resolution.",
        "Check for contention or throttling: other jobs on the GPU, high temperature.",
    ),
    (_C.INTERRUPTED, None, None): (
        "The run was cancelled or its process stopped: resubmit the task.",
        "If the process vanished without an error (exit code 137), check the kernel log "
        "(dmesg) for the OOM killer and treat it as host out-of-memory.",
        "Drain workers before restarts so running generations can finish.",
    ),
    (_C.UNKNOWN, None, None): (
        "Read the error message and the phase it failed in; rerun with the same seed to "
        "see whether it reproduces.",
        "Check the installed torch/diffusers/transformers versions work together.",
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
            return tuple(_text(s) for s in ADVICE[key] if not opt.is_applied(applied, _moot(s)))
    return ()


def _text(suggestion: _S) -> str:
    return suggestion if isinstance(suggestion, str) else suggestion[0]


def _moot(suggestion: _S) -> tuple[str, ...]:
    return () if isinstance(suggestion, str) else suggestion[1]


__all__ = ["ADVICE", "suggestions_for"]
