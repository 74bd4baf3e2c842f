"""Errors of the reference generation service (part of genperf's one tree)."""

from __future__ import annotations

from genperf.errors import GenperfError


class GenerationError(GenperfError):
    """A generation request could not be accepted or run."""


class ModelNotAvailableError(GenerationError, LookupError):
    """A model type that has no local diffusers directory; the message says how to add one."""

    def __init__(self, model_type: str, message: str) -> None:
        self.model_type = model_type
        super().__init__(message)


class RequestNotFoundError(GenerationError, KeyError):
    """No generation request has this task id."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        super().__init__(f"no generation task {task_id!r}")

    def __str__(self) -> str:
        return str(self.args[0])


class RequestLimitError(GenerationError, ValueError):
    """A request over one of the service's limits (``generation_limits``); names the field."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class QueueFullError(GenerationError):
    """The queue holds ``generation_limits.max_queued_requests`` already: retry later."""

    def __init__(self, limit: int, retry_after_seconds: int) -> None:
        self.limit = limit
        self.retry_after_seconds = retry_after_seconds
        super().__init__(
            f"the generation queue is full ({limit} requests wait); retry in "
            f"{retry_after_seconds} s"
        )


class GenerationTimeoutError(GenerationError, TimeoutError):
    """A generation ran past its time limit (``max_run_seconds``) and was stopped."""

    def __init__(self, limit_seconds: float) -> None:
        self.limit_seconds = limit_seconds
        super().__init__(f"the generation ran past its {limit_seconds:g} s limit and was stopped")
