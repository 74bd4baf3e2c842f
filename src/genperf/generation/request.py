"""A generation request: what to generate, checked before it is queued.

The limits are the pipeline's own rules made strict: Wan's VAE compresses 4x in time and 8x
in space and its transformer patches 2x2, so frames are 4k+1 and width and height multiples of
16 (the pipeline would only warn and round them); steps are bounded so one request cannot hold
the worker for days. These are the hard bounds of any request; the operator's tighter limits
(``generation_limits``, per model type) are checked by :func:`check_limits`.
"""

from __future__ import annotations

import enum
import re
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from genperf.config import ModelLimits
from genperf.generation.errors import RequestLimitError

if TYPE_CHECKING:
    from genperf.monitor import PerformanceMonitor, TaskHandle

MAX_STEPS = 200
MAX_FRAMES = 241  # 15 s at Wan's 16 fps; the real models are trained on 81 (and 121)
MIN_SIDE = 16
MAX_SIDE = 2048
SIDE_MULTIPLE = 16
MAX_PROMPT_CHARS = 4000
MIN_HEADROOM_MIB = 16
MAX_HEADROOM_MIB = 1 << 20

# Named resolutions, as Wan2.2 generates them (width x height).
RESOLUTION_ALIASES: dict[str, tuple[int, int]] = {"480p": (832, 480), "720p": (1280, 720)}

_SIZE = re.compile(r"^\s*(\d{1,5})\s*[xX×]\s*(\d{1,5})\s*$")


class RequestStatus(enum.StrEnum):
    """Where a request is in the queue."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # its worker died (its lease expired) while it ran


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """One generation to run.

    Attributes:
        memory_headroom_mib: when set, the generation runs in a worker subprocess whose address
            space may grow by at most this much after the model is loaded (RLIMIT_AS): a
            generation that needs more really runs out of memory, in its own process.
        preset: the optimisation preset to switch the pipeline to (auto-tune's choice);
            None leaves the pipeline as it is.
        requeue_on_failure: when its worker dies while it runs, queue it once more instead
            of recording it ``interrupted``.
    """

    task_id: str
    model_type: str
    prompt: str
    width: int
    height: int
    steps: int
    frames: int
    memory_headroom_mib: int | None = None
    preset: str | None = None  # an optimisation preset (generation.presets) to run with
    # Run it once more if its worker dies while it runs (its lease expires), instead of
    # recording it interrupted.
    requeue_on_failure: bool = False

    @property
    def resolution(self) -> str:
        return f"{self.width}x{self.height}"

    def track(self, monitor: PerformanceMonitor) -> AbstractContextManager[TaskHandle]:
        """Monitor the block as this request's task, with its configuration as the task's."""
        return monitor.track(
            self.task_id,
            model_type=self.model_type,
            resolution=self.resolution,
            steps=self.steps,
            frames=self.frames,
        )


def parse_resolution(text: str) -> tuple[int, int]:
    """``"832x480"`` or ``"480p"`` -> (width, height).

    Raises:
        ValueError: not WIDTHxHEIGHT or a known name, a side out of range or not a multiple of 16.
    """
    key = text.strip().lower()
    if key in RESOLUTION_ALIASES:
        return RESOLUTION_ALIASES[key]
    m = _SIZE.match(text)
    if m is None:
        names = ", ".join(RESOLUTION_ALIASES)
        raise ValueError(f"expected WIDTHxHEIGHT (such as 832x480) or one of {names}")
    width, height = int(m.group(1)), int(m.group(2))
    for side in (width, height):
        if not MIN_SIDE <= side <= MAX_SIDE:
            raise ValueError(f"width and height must be between {MIN_SIDE} and {MAX_SIDE}")
        if side % SIDE_MULTIPLE:
            raise ValueError(f"width and height must be multiples of {SIDE_MULTIPLE}")
    return width, height


def check_frames(frames: int) -> int:
    """Frames must be 4k+1 (the VAE's temporal compression) and at most MAX_FRAMES."""
    if (
        isinstance(frames, bool)
        or not isinstance(frames, int)
        or not 1 <= frames <= MAX_FRAMES
        or frames % 4 != 1
    ):
        raise ValueError(f"frames must be of the form 4k+1 (1, 5, 9, ... {MAX_FRAMES})")
    return frames


def check_steps(steps: int) -> int:
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
        raise ValueError(f"steps must be an integer from 1 to {MAX_STEPS}")
    return steps


def check_headroom(mib: int | None) -> int | None:
    if mib is not None and not MIN_HEADROOM_MIB <= mib <= MAX_HEADROOM_MIB:
        raise ValueError(
            f"memory_headroom_mib must be from {MIN_HEADROOM_MIB} to {MAX_HEADROOM_MIB} (MiB)"
        )
    return mib


def check_limits(request: GenerationRequest, limits: ModelLimits) -> None:
    """Refuse a request over its model type's limits (``generation_limits``).

    Raises:
        RequestLimitError: naming the field (resolution, frames or steps) and the limit.
    """
    pixels = request.width * request.height
    if limits.max_pixels is not None and pixels > limits.max_pixels:
        raise RequestLimitError(
            "resolution",
            f"{request.resolution} is {pixels} pixels; {request.model_type} allows at most "
            f"{limits.max_pixels} (generation_limits.max_pixels)",
        )
    if limits.max_frames is not None and request.frames > limits.max_frames:
        raise RequestLimitError(
            "frames",
            f"{request.frames} frames; {request.model_type} allows at most {limits.max_frames} "
            "(generation_limits.max_frames)",
        )
    if limits.max_steps is not None and request.steps > limits.max_steps:
        raise RequestLimitError(
            "steps",
            f"{request.steps} steps; {request.model_type} allows at most {limits.max_steps} "
            "(generation_limits.max_steps)",
        )
