"""The model registry: model_type -> a local diffusers directory, and how to load and call it.

Built in, and the default: ``tiny-wan-t2v``, a WanPipeline in the Wan2.2 T2V-A14B layout with
tiny random weights (see :mod:`genperf.generation.tiny_wan`), built offline on first use and
kept under ``<data_dir>/models/tiny-wan-t2v``. Any other model type resolves to a directory
given to the registry (``paths=``) or, by convention, ``<model_dir>/<model_type>`` (the
``model_dir`` setting, ``GENPERF_MODEL_DIR``) when it holds a ``model_index.json``. Real
Wan2.2 types (``t2v-A14B`` ...) are known by name, so a request for one that is not installed
gets an error that says where to put it, not "unknown model".

A model type comes from clients, so it is a name, never a path: one component of letters,
digits, ``.``, ``_`` and ``-``, starting with a letter or digit, looked up in the registry or
as an entry of ``model_dir`` (entries the operator put there, symlinks included, are
followed). Errors
name the model type and the setting, never a directory of this host, and read the same
whether or not something of that name exists there.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genperf.config import Settings
from genperf.generation.errors import ModelNotAvailableError
from genperf.generation.tiny_wan import MODEL_INDEX, ensure_tiny_wan

TINY_WAN = "tiny-wan-t2v"
DEFAULT_MODEL_TYPE = TINY_WAN

# A model type is one path component: it starts with a letter or digit (so never "." or ".."),
# has no separator, and nothing a shell or terminal would read.
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")

# Real models known by name, with where to get them.
KNOWN_MODELS: dict[str, str] = {
    "t2v-A14B": "Wan-AI/Wan2.2-T2V-A14B-Diffusers",
    "i2v-A14B": "Wan-AI/Wan2.2-I2V-A14B-Diffusers",
    "ti2v-5B": "Wan-AI/Wan2.2-TI2V-5B-Diffusers",
}

# Loading: read the weights during the load (a true load time; see the integration's docs).
_REAL_LOAD: dict[str, Any] = {"dtype": "bfloat16", "disable_mmap": True}
_TINY_LOAD: dict[str, Any] = {"dtype": "float32", "disable_mmap": True}
_TINY_CALL: dict[str, Any] = {"guidance_scale": 4.0, "max_sequence_length": 32}


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A model type resolved: its directory and the keyword arguments to load and call it.

    ``load_kwargs["dtype"]`` is a torch dtype name (``"bfloat16"``), turned into the dtype when
    loading, so specs stay plain data that a worker subprocess can receive.
    """

    model_type: str
    path: Path
    builtin: bool = False
    load_kwargs: Mapping[str, Any] = field(default_factory=dict)
    call_kwargs: Mapping[str, Any] = field(default_factory=dict)


class ModelRegistry:
    """Where each model type's diffusers directory is.

    Args:
        settings: ``data_dir`` (the built-in model's cache) and ``model_dir`` (real models).
        paths: model_type -> directory, overriding the ``model_dir`` convention.
    """

    def __init__(
        self, settings: Settings, *, paths: Mapping[str, str | Path] | None = None
    ) -> None:
        self.settings = settings
        self.models_dir = settings.data_dir / "models"
        self._specs: dict[str, ModelSpec] = {}
        self._build_lock = threading.Lock()
        for model_type, path in (paths or {}).items():
            self.register(model_type, path)

    def register(
        self,
        model_type: str,
        path: str | Path,
        *,
        load_kwargs: Mapping[str, Any] | None = None,
        call_kwargs: Mapping[str, Any] | None = None,
    ) -> ModelSpec:
        """Map a model type to a directory (replacing any earlier mapping)."""
        spec = ModelSpec(
            model_type,
            Path(path),
            load_kwargs=dict(_REAL_LOAD if load_kwargs is None else load_kwargs),
            call_kwargs=dict(call_kwargs or {}),
        )
        self._specs[model_type] = spec
        return spec

    def model_types(self) -> list[str]:
        """Model types that resolve now (the built-in one always does)."""
        found = {TINY_WAN, *self._specs}
        model_dir = self.settings.model_dir
        if model_dir is not None and model_dir.is_dir():
            found.update(
                p.name
                for p in model_dir.iterdir()
                if is_model_name(p.name) and (p / MODEL_INDEX).is_file()
            )
        return sorted(found)

    def resolve(self, model_type: str) -> ModelSpec:
        """The spec of a model type, without building anything.

        Raises:
            ModelNotAvailableError: no directory is configured for it; the message names the
                model type and the setting to use.
        """
        if model_type in self._specs:
            return self._specs[model_type]
        if not is_model_name(model_type):
            raise ModelNotAvailableError(
                model_type,
                f"model type {model_type!r} is not a model name: use letters, digits, '.', '_' "
                "and '-' (a name from the registry or model_dir, never a path)",
            )
        if model_type == TINY_WAN:
            return ModelSpec(
                TINY_WAN,
                self.models_dir / TINY_WAN,
                builtin=True,
                load_kwargs=_TINY_LOAD,
                call_kwargs=_TINY_CALL,
            )
        path = self._in_model_dir(model_type)
        if path is not None and (path / MODEL_INDEX).is_file():
            return ModelSpec(model_type, path, load_kwargs=_REAL_LOAD)
        raise ModelNotAvailableError(model_type, self._not_available(model_type))

    def ensure_ready(self, model_type: str) -> ModelSpec:
        """Resolve, building the built-in model on first use (offline, about a second)."""
        spec = self.resolve(model_type)
        if spec.builtin:
            with self._build_lock:
                ensure_tiny_wan(spec.path)
        return spec

    def _in_model_dir(self, model_type: str) -> Path | None:
        """``<model_dir>/<model_type>``, checked to be an entry of model_dir, or None."""
        model_dir = self.settings.model_dir
        if model_dir is None:
            return None
        base = model_dir.absolute()
        path = base / model_type
        # The name rule already makes this one component; checked again so that a change to
        # the rule can never open the rest of the file system.
        if path.parent != base or path.name != model_type:
            return None
        return path

    def _not_available(self, model_type: str) -> str:
        # The client sees this: the model type and the setting's name, no directory of ours,
        # and the same text whether or not something of that name exists.
        where = f"<model_dir>/{model_type}"
        hint = (
            f"model type {model_type!r} has no local diffusers directory: put the model at "
            f"{where} (the model_dir setting, GENPERF_MODEL_DIR"
            f"{'' if self.settings.model_dir else ', is not set'}) or register its path"
        )
        if model_type in KNOWN_MODELS:
            hint += (
                f"; download it with: hf download {KNOWN_MODELS[model_type]} --local-dir {where}"
            )
        return f"{hint}. Available: {', '.join(self.model_types())}"


def is_model_name(model_type: str) -> bool:
    """True for a name a client may ask for: one path component, not ``.`` or ``..``."""
    return _MODEL_NAME.fullmatch(model_type) is not None  # fullmatch: "$" lets "\n" through
