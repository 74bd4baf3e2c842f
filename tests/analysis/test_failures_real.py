"""Failure diagnosis on exceptions raised by real torch / diffusers / safetensors code.

The tiny offline Wan2.2-shaped pipeline (genperf.generation.tiny_wan, as in
shared/reference/tiny_wan_example.py) is built once per session, saved with save_pretrained,
then broken the ways real deployments break: a truncated safetensors file, a missing component
folder, a config that does not match the weights, bad input, and a real memory limit
(RLIMIT_AS in a subprocess, so the VAE decode runs out of host memory for real).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from genperf.analysis.failures import diagnose
from genperf.records import ErrorCategory

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")

pytestmark = pytest.mark.slow

DENOISER = "transformer"
C = ErrorCategory


@pytest.fixture(scope="session")
def tiny_wan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from genperf.generation.tiny_wan import ensure_tiny_wan

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return ensure_tiny_wan(tmp_path_factory.mktemp("tiny_wan") / "model")


@pytest.fixture
def model_copy(tiny_wan: Path, tmp_path: Path) -> Path:
    """A private copy of the saved pipeline, free to break."""
    return Path(shutil.copytree(tiny_wan, tmp_path / "model"))


def load(directory: Path) -> Any:
    # diffusers' default, memory-mapped loading. (With disable_mmap=True a failed read of a
    # broken file leaks the open file, a ResourceWarning that pytest turns into an error.)
    pipe = diffusers.WanPipeline.from_pretrained(str(directory), dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def raised(fn: Callable[[], object]) -> BaseException:
    try:
        fn()
    except Exception as exc:  # the real exception, chain and all
        return exc
    pytest.fail("expected the call to raise")


def test_truncated_safetensors_is_a_corrupt_model(model_copy: Path) -> None:
    weights = next((model_copy / DENOISER).glob("*.safetensors"))
    with weights.open("r+b") as fh:
        fh.truncate(100)
    exc = raised(lambda: load(model_copy))
    d = diagnose(exc, "model_load")
    assert (d.category, d.cause) == (C.MODEL_LOAD_ERROR, "corrupt_weights"), repr(exc)
    assert "download it again" in d.suggestions[0]


def test_missing_component_folder_is_missing_files(model_copy: Path) -> None:
    shutil.rmtree(model_copy / DENOISER)
    exc = raised(lambda: load(model_copy))
    assert "config.json" in str(exc)
    d = diagnose(exc)  # the phase is inferred
    assert (d.category, d.cause, d.phase) == (C.MODEL_LOAD_ERROR, "missing_files", "model_load")


def test_config_that_does_not_match_the_weights_is_a_config_mismatch(model_copy: Path) -> None:
    cfg_path = model_copy / DENOISER / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["num_attention_heads"] *= 2
    cfg_path.write_text(json.dumps(cfg))
    exc = raised(lambda: load(model_copy))
    d = diagnose(exc, "model_load")
    assert (d.category, d.cause) == (C.MODEL_LOAD_ERROR, "config_mismatch"), repr(exc)
    assert "config.json" in d.suggestions[0]


def test_prompt_embeddings_of_the_wrong_width_are_invalid_input(tiny_wan: Path) -> None:
    pipe = load(tiny_wan)
    bad = torch.zeros(1, 32, 7)
    exc = raised(
        lambda: pipe(
            prompt_embeds=bad,
            negative_prompt_embeds=bad,
            height=64,
            width=64,
            num_frames=9,
            num_inference_steps=2,
            output_type="np",
        )
    )
    assert "mat1 and mat2" in str(exc)
    assert diagnose(exc, "denoise").category is C.INVALID_INPUT


def test_too_many_steps_for_the_scheduler_is_invalid_input() -> None:
    scheduler = diffusers.DDPMScheduler(num_train_timesteps=1000)
    exc = raised(lambda: scheduler.set_timesteps(5000))
    assert diagnose(exc, "denoise").category is C.INVALID_INPUT


# Runs in a child process: load, cap the address space a little above what is mapped, then
# generate at 320x576: one denoising step fits, the VAE decode cannot get its memory (the
# reference's --fail oom, made smaller to keep the test short).
_OOM_CHILD = textwrap.dedent(
    """
    import json, os, resource, sys
    import torch, diffusers
    from genperf.analysis.failures import diagnose

    pipe = diffusers.WanPipeline.from_pretrained(
        sys.argv[1], dtype=torch.float32, disable_mmap=True
    )
    pipe.set_progress_bar_config(disable=True)
    steps_done = []

    def on_step(p, i, t, kw):
        steps_done.append(i)
        return kw

    with open("/proc/self/status") as f:
        vm = next(int(line.split()[1]) for line in f if line.startswith("VmSize:"))
    cap = (vm + 32 * 1024) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (cap, resource.RLIM_INFINITY))
    try:
        with torch.inference_mode():
            pipe("a cat dancing in the rain", height=320, width=576, num_frames=9,
                 num_inference_steps=1, max_sequence_length=32, output_type="np",
                 callback_on_step_end=on_step)
    except Exception as exc:
        phase = "vae_decode" if steps_done else "denoise"
        d = diagnose(exc, phase)
        print(json.dumps({"type": type(exc).__name__, "message": str(exc)[:300], "phase": phase,
                          "category": d.category.value, "suggestions": list(d.suggestions)}))
        sys.exit(0)
    print(json.dumps({"type": None}))
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc are Linux's")
def test_a_real_host_memory_limit_in_vae_decode_is_host_oom_with_tiling_advice(
    tiny_wan: Path,
) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, "-c", _OOM_CHILD, str(tiny_wan)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["type"] is not None, "generation fitted under the memory cap"
    assert out["category"] == C.OUT_OF_MEMORY_HOST.value, out
    assert out["phase"] == "vae_decode", out
    assert "tiling" in out["suggestions"][0]
    # The stored message, diagnosed later from the database, agrees.
    assert (
        diagnose(f"{out['type']}: {out['message']}", out["phase"]).category is C.OUT_OF_MEMORY_HOST
    )


def test_torch_out_of_memory_error_class_is_gpu_oom() -> None:
    """torch.OutOfMemoryError (alias torch.cuda.OutOfMemoryError) is matched by name; this CPU
    build can construct it but not make a GPU run out."""
    err = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    assert torch.cuda.OutOfMemoryError is torch.OutOfMemoryError
    assert diagnose(err, "denoise").category is C.OUT_OF_MEMORY_GPU
    wrapped = raised(lambda: _raise_from(RuntimeError("generation failed"), err))
    assert diagnose(wrapped, "vae_decode").category is C.OUT_OF_MEMORY_GPU


def _raise_from(outer: BaseException, cause: BaseException) -> None:
    raise outer from cause
