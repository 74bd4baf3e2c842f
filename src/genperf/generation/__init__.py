"""The reference generation service: task queue, worker, model registry, tiny offline models.

- :class:`GenerationService`: submit / list / get generations; a worker thread runs them one
  at a time, each a task monitored by :mod:`genperf.integrations.diffusers`.
- :class:`ModelRegistry`: model_type -> local diffusers directory; the built-in ``tiny-wan-t2v``
  (Wan2.2 T2V-A14B layout, tiny random weights) is built offline on first use.
- :func:`queue_demo_batch`: tiny-wan generations and one real out-of-memory failure.
- its REST routes are ``genperf.api.routers.generation.make_router(service)``, mounted by
  the wiring (``genperf.server``); nothing here imports the API.

torch and diffusers are imported only when a generation runs.
"""

from genperf.generation.demo import DEMO_JOBS, DemoJob, queue_demo_batch
from genperf.generation.errors import (
    GenerationError,
    GenerationTimeoutError,
    ModelNotAvailableError,
    QueueFullError,
    RequestLimitError,
    RequestNotFoundError,
)
from genperf.generation.registry import (
    DEFAULT_MODEL_TYPE,
    KNOWN_MODELS,
    TINY_WAN,
    ModelRegistry,
    ModelSpec,
)
from genperf.generation.request import GenerationRequest, RequestStatus, parse_resolution
from genperf.generation.service import GenerationService, GenerationTask

__all__ = [
    "DEFAULT_MODEL_TYPE",
    "DEMO_JOBS",
    "KNOWN_MODELS",
    "TINY_WAN",
    "DemoJob",
    "GenerationError",
    "GenerationRequest",
    "GenerationService",
    "GenerationTask",
    "GenerationTimeoutError",
    "ModelNotAvailableError",
    "ModelRegistry",
    "ModelSpec",
    "QueueFullError",
    "RequestLimitError",
    "RequestNotFoundError",
    "RequestStatus",
    "parse_resolution",
    "queue_demo_batch",
]
