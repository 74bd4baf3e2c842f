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
