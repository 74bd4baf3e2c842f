"""What happens inside one pipeline call: its phases, its denoising steps and their experts.

The pipeline's hooks (see :mod:`genperf.integrations.pipeline_hooks`) report events here;
the recorder turns them into the monitor's phases and the task's step metrics:

- ``text_encode``: from the start of the call (input checks, then ``encode_prompt``) to the
  first denoiser forward, so it includes preparing the latents and timesteps;
- ``denoise``: from the first denoiser forward to the first ``vae.decode``;
- ``vae_decode``: from the first ``vae.decode`` to the end of the call (decode and
  post-processing: on CPU the video conversion is part of the cost).

The phases follow one another without gaps and cover the whole call, so they add up to the
task's ``generation_time_seconds`` (a pipeline without ``encode_prompt`` starts in ``denoise``).
A failure after encoding but before the first step is put in ``denoise``, whose set-up it was.

A step lasts from its first denoiser forward to the end of the scheduler step (the pipeline's
``callback_on_step_end``), so the time the user's own callback takes is not counted in it. The
first step, which pays for lazy initialisation (and, with memory-mapped weights, for paging them
in), is the warm-up: it stays first in ``step_times_seconds`` and is kept apart in the summary.
Pipelines without ``callback_on_step_end`` count one step per denoiser forward.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from genperf.monitor import PerformanceMonitor

logger = logging.getLogger("genperf.integrations")

TEXT_ENCODE = "text_encode"
IMAGE_ENCODE = "image_encode"
DENOISE = "denoise"
VAE_DECODE = "vae_decode"


@dataclass(frozen=True, slots=True)
class CallSummary:
    """One monitored call as the integration saw it (also written to the task's record).

    Attributes:
        task_id: the monitored task the call ran in.
        step_times_seconds: every denoising step in order; the first is the warm-up (see
            :attr:`warmup_steps`).
        step_experts: the denoiser that ran each step (``transformer`` or ``transformer_2`` for a
            two-expert Wan2.2 model).
        denoiser_calls: forward calls per denoiser (classifier-free guidance makes two a step).
    """

    task_id: str
    step_times_seconds: tuple[float, ...] = ()
    step_experts: tuple[str, ...] = ()
    denoiser_calls: Mapping[str, int] = field(default_factory=dict)

    @property
    def warmup_step_seconds(self) -> float | None:
        """The first step, which pays for warm-up; None when no step ran."""
        return self.step_times_seconds[0] if self.step_times_seconds else None

    @property
    def warmup_steps(self) -> tuple[int, ...]:
        """Indices of warm-up steps: the first, and the first of each expert taking over (the
        second expert of a Wan2.2 model warms up too when the boundary is crossed)."""
        experts = self.step_experts
        return tuple(
            i
            for i in range(len(self.step_times_seconds))
            if i == 0 or (i < len(experts) and experts[i] != experts[i - 1])
        )

    @property
    def steady_step_seconds(self) -> float | None:
        """Median of the steps that are not warm-ups; None when every step is one."""
        warm = set(self.warmup_steps)
        rest = [t for i, t in enumerate(self.step_times_seconds) if i not in warm]
        return statistics.median(rest) if rest else None

    @property
    def expert_steps(self) -> dict[str, int]:
        """How many steps each expert ran."""
        counts: dict[str, int] = {}
        for name in self.step_experts:
            counts[name] = counts.get(name, 0) + 1
        return counts


class CallRecorder:
    """The state of one monitored call; fed by hooks, on the thread that runs the call.

    Args:
        monitor / task_id: where phases go.
        boundary_timestep: for two-expert models, the timestep at which the second expert takes
            over (``boundary_ratio * num_train_timesteps``); used when no forward hook saw which
            expert ran.
        first_expert / second_expert: the denoisers' names either side of the boundary.
        step_per_forward: the pipeline has no ``callback_on_step_end``: a forward is a step.
        on_phase: told the name of each phase as it begins.
        clock: monotonic seconds.
    """

    def __init__(
        self,
        monitor: PerformanceMonitor,
        task_id: str,
        *,
        boundary_timestep: float | None = None,
        first_expert: str = "transformer",
        second_expert: str = "transformer_2",
        step_per_forward: bool = False,
        on_phase: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._monitor = monitor
        self.task_id = task_id
        self._boundary = boundary_timestep
        self._experts = (first_expert, second_expert)
        self._step_per_forward = step_per_forward
        self._on_phase = on_phase
        self._clock = clock
        self._phase: AbstractContextManager[Any] | None = None
        self._phase_name: str | None = None
        self._encoded = False
        self._forwarded = False
        self._decoding = False
        self._encode_depth = 0
        self._step_start: float | None = None
        self._step_expert: str | None = None
        self._last_step_end = 0.0
        self._steps: list[float] = []
        self._experts_run: list[str] = []
        self._calls: dict[str, int] = {}

    # --- events from the hooks --------------------------------------------------------------

    def begin(self, phase: str = TEXT_ENCODE) -> None:
        """The call starts: its first phase opens now, so no time of the call is outside one."""
        self._switch(phase)

    def encode_started(self, phase: str = TEXT_ENCODE) -> None:
        self._encode_depth += 1
        if self._encode_depth == 1 and not self._decoding and not self._forwarded:
            self._switch(phase)

    def encode_finished(self, phase: str = TEXT_ENCODE) -> None:
        self._encode_depth = max(0, self._encode_depth - 1)
        if self._encode_depth == 0 and self._phase_name == phase:
            self._encoded = True  # the phase stays open until the next one begins: no gap

    def denoiser_forward(self, name: str) -> None:
        now = self._clock()
        self._calls[name] = self._calls.get(name, 0) + 1
        if self._decoding:
            return
        self._forwarded = True
        if self._phase_name != DENOISE:
            self._switch(DENOISE)
        if self._step_per_forward:
            self._close_forward_step(now)
            self._step_start, self._step_expert = now, name
        elif self._step_start is None:
            self._step_start = now
        self._step_expert = name

    def step_finished(self, timestep: Any) -> None:
        """The end of a scheduler step (``callback_on_step_end``, before the user's callback)."""
        now = self._clock()
        start = self._step_start
        if start is None:  # no forward hook fired (a replaced denoiser): time from the last step
            start = self._last_step_end if self._steps else now
        self._steps.append(max(0.0, now - start))
        self._experts_run.append(self._step_expert or self._expert_at(timestep))
        self._step_start = None
        self._step_expert = None
        self._last_step_end = now

    def decode_started(self) -> None:
        if self._decoding:
            return
        self._close_forward_step(self._clock())
        self._decoding = True
        self._switch(VAE_DECODE)

    # --- the end of the call ----------------------------------------------------------------

    def finish(self, error: BaseException | None) -> CallSummary:
        """Close the open phase (failed if ``error``) and summarise the call."""
        self._close_forward_step(self._clock())
        in_prep = self._encoded and self._encode_depth == 0 and not self._forwarded
        if error is not None and in_prep and not self._decoding:
            self._switch(DENOISE)  # failed between encoding and the first step: in its prep
        self._exit_phase(error)
        return self.summary()

    def summary(self) -> CallSummary:
        return CallSummary(
            task_id=self.task_id,
            step_times_seconds=tuple(self._steps),
            step_experts=tuple(self._experts_run),
            denoiser_calls=dict(self._calls),
        )

    # --- internals --------------------------------------------------------------------------

    def _close_forward_step(self, now: float) -> None:
        if self._step_per_forward and self._step_start is not None:
            self._steps.append(max(0.0, now - self._step_start))
            self._experts_run.append(self._step_expert or self._experts[0])
            self._step_start = None

    def _expert_at(self, timestep: Any) -> str:
        if self._boundary is None:
            return self._experts[0]
        try:
            return self._experts[0] if float(timestep) >= self._boundary else self._experts[1]
        except (TypeError, ValueError):
            return self._experts[0]

    def _switch(self, name: str) -> None:
        if self._phase_name == name:
            return
        self._exit_phase(None)
        phase = self._monitor.phase(self.task_id, name)
        phase.__enter__()
        self._phase, self._phase_name = phase, name
        if self._on_phase is not None:
            try:
                self._on_phase(name)
            except Exception:
                logger.debug("on_phase callback failed", exc_info=True)

    def _exit_phase(self, error: BaseException | None) -> None:
        phase, self._phase, self._phase_name = self._phase, None, None
        if phase is None:
            return
        if error is None:
            phase.__exit__(None, None, None)
        else:
            phase.__exit__(type(error), error, error.__traceback__)
