"""A short demo batch for ``genperf serve --demo``: real tiny-wan generations and one real OOM.

Several resolutions and step counts of the built-in tiny Wan2.2 model (a few seconds in all on
two CPU cores), and one generation at Wan's native 832x480 with 17 frames in a worker
subprocess whose address space may grow by only 64 MiB once the model is loaded: its four
denoising steps fit, its VAE decode does not, and it fails there with torch's own
"DefaultCPUAllocator: can't allocate memory", diagnosed as host out-of-memory in vae_decode.
"""

from __future__ import annotations

from dataclasses import dataclass

from genperf.generation.registry import TINY_WAN
from genperf.generation.service import GenerationService

OOM_HEADROOM_MIB = 64


@dataclass(frozen=True, slots=True)
class DemoJob:
    resolution: str
    steps: int
    frames: int
    prompt: str
    memory_headroom_mib: int | None = None


DEMO_JOBS: tuple[DemoJob, ...] = (
    DemoJob("64x64", 4, 9, "a cat dancing in the rain"),
    DemoJob("128x128", 8, 9, "a monkey playing drums on a beach at sunset"),
    DemoJob("256x256", 4, 17, "cinematic drone shot over snowy mountains"),
    DemoJob("64x64", 12, 9, "slow motion waves crashing on rocks"),
    DemoJob("832x480", 4, 9, "a red car driving through a neon city at night"),
    # The real failure: runs out of memory in the VAE decode, in its own process.
    DemoJob("832x480", 4, 17, "an astronaut riding a horse on the moon", OOM_HEADROOM_MIB),
)


def queue_demo_batch(
    service: GenerationService,
    jobs: tuple[DemoJob, ...] = DEMO_JOBS,
    *,
    model_type: str = TINY_WAN,
) -> list[str]:
    """Queue the demo generations; returns their task ids in order. About 15-30 s of work on
    a 2-core CPU (plus about 5 s to build the tiny model on first use)."""
    return [
        service.submit(
            model_type,
            job.prompt,
            job.resolution,
            job.steps,
            job.frames,
            memory_headroom_mib=job.memory_headroom_mib,
        )
        for job in jobs
    ]
