"""The API's own settings: tokens, allowed Host names, CORS origins, request limits.

:meth:`ApiSettings.load` reads them from :class:`genperf.config.Settings` (keys ``api_tokens``,
``allowed_hosts``, ``cors_origins``, from the config file) and from the environment:

* ``GENPERF_API_TOKENS='read:abc,admin:xyz'``: comma-separated ``role:token`` entries. A token
  may also be given by its SHA-256 digest, ``role:sha256:<64 hex digits>``, so a config file
  need not hold the secret itself.
* ``GENPERF_ALLOWED_HOSTS='genperf.example.com,10.0.0.5'``: Host names served besides loopback.
* ``GENPERF_CORS_ORIGINS='https://grafana.example.com'``: browser origins allowed to call the
  API (CORS is off when empty).

Lists are comma-separated or JSON lists. The values of tokens never appear in an error.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from genperf.config import Settings
from genperf.errors import ConfigError

TOKENS_ENV = "GENPERF_API_TOKENS"
HOSTS_ENV = "GENPERF_ALLOWED_HOSTS"
CORS_ENV = "GENPERF_CORS_ORIGINS"

MAX_BODY_BYTES = 1024 * 1024  # task ingestion bodies are a few KiB; 1 MiB is generous
MAX_WINDOW_HOURS = 24.0 * 365  # one year: the longest window any endpoint accepts


class ApiSettings(BaseModel):
    """Settings of the HTTP API. Construct directly in tests; :meth:`load` in the server."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_tokens: tuple[str, ...] = Field(default=(), repr=False)  # "role:token" entries
    allowed_hosts: tuple[str, ...] = ()  # Host header values served besides loopback
    cors_origins: tuple[str, ...] = ()  # browser origins allowed cross-origin; empty: CORS off
    max_body_bytes: Annotated[int, Field(ge=0)] = MAX_BODY_BYTES
    # Reports are reused this long per (window, filters), then rebuilt in the background
    # while the old one is still served (see genperf.api.reports); 0: build every request.
    report_cache_seconds: Annotated[float, Field(ge=0)] = 5.0

    @classmethod
    def load(cls, settings: Settings, environ: Mapping[str, str] | None = None) -> ApiSettings:
        """From ``settings`` (when it has the keys) and the ``GENPERF_*`` environment.

        Raises:
            ConfigError: an environment value is not a list of strings.
        """
        env = os.environ if environ is None else environ
        return cls(
            api_tokens=(
                *_from_settings(settings, "api_tokens"),
                *_env_list(env, TOKENS_ENV, secret=True),
            ),
            allowed_hosts=(
                *_from_settings(settings, "allowed_hosts"),
                *_env_list(env, HOSTS_ENV),
            ),
            cors_origins=(
                *_from_settings(settings, "cors_origins"),
                *_env_list(env, CORS_ENV),
            ),
        )


def _from_settings(settings: Settings, key: str) -> tuple[str, ...]:
    value: Any = getattr(settings, key, None)
    if value is None:
        return ()
    if isinstance(value, str):
        return _split(value)
    if isinstance(value, Mapping):  # {"read": ["tok", ...], "admin": "tok"} for tokens
        return tuple(
            f"{role}:{tok}"
            for role, toks in value.items()
            for tok in ([toks] if isinstance(toks, str) else toks)
        )
    return tuple(str(v) for v in value)


def _env_list(env: Mapping[str, str], name: str, *, secret: bool = False) -> tuple[str, ...]:
    raw = env.get(name, "").strip()
    if not raw:
        return ()
    if raw.startswith("["):
        try:
            items = json.loads(raw)
        except json.JSONDecodeError:
            items = None
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            shown = "" if secret else f" (got {raw!r})"
            raise ConfigError(
                f"expected a JSON list of strings or comma-separated text{shown}", source=name
            )
        return tuple(i.strip() for i in items if i.strip())
    return _split(raw)


def _split(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())
