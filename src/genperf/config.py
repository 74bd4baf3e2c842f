"""Settings: the spec's JSON config file, overridden by ``GENPERF_*`` environment variables.

The file has the spec's shape::

    {"performance_monitoring": {"monitoring_interval_seconds": 5.0, ...}}

Every key the spec names exists here with the spec's default; genperf's own keys
(database_url, retention, benchmark targets ...) sit beside them in the same block.
Environment variables override the file: ``GENPERF_<KEY>`` for a top-level key and
``GENPERF_<SECTION>__<KEY>`` for a nested one, e.g.
``GENPERF_PERFORMANCE_THRESHOLDS__MAX_VRAM_USAGE_PERCENT=80``.
A bad value raises :class:`ConfigError` naming the key and its source.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from genperf.errors import ConfigError

ENV_PREFIX = "GENPERF_"
CONFIG_ENV = "GENPERF_CONFIG"
ROOT_KEY = "performance_monitoring"

Percent = Annotated[float, Field(ge=0, le=100)]
Fraction = Annotated[float, Field(ge=0, le=1)]
PositiveSeconds = Annotated[float, Field(gt=0)]

_GEN_TIME_KEY = re.compile(r"^max_generation_time_(\w+)$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class PerformanceThresholds(_Section):
    """The spec's alert thresholds. ``max_generation_time_<class>`` may name any class."""

    model_config = ConfigDict(extra="allow", frozen=True)

    max_generation_time_720p: PositiveSeconds = 300.0
    max_generation_time_1080p: PositiveSeconds = 900.0
    max_vram_usage_percent: Percent = 90.0
    max_ram_usage_percent: Percent = 85.0
    min_success_rate: Fraction = 0.95

    @model_validator(mode="after")
    def _only_generation_time_extras(self) -> PerformanceThresholds:
        for key, value in (self.model_extra or {}).items():
            if not _GEN_TIME_KEY.match(key):
                raise ValueError(f"unknown key {key!r}")
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{key} must be a number of seconds > 0, got {value!r}")
        return self

    def max_generation_time(self, resolution_class: str) -> float | None:
        """The generation-time target (seconds) for a class such as "720p", or None."""
        value = getattr(self, f"max_generation_time_{resolution_class}", None)
        return float(value) if value is not None else None

    def generation_time_targets(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for key, value in self.model_dump().items():
            if m := _GEN_TIME_KEY.match(key):
                out[m.group(1)] = float(value)
        return out


class Band(_Section):
    """A lower-is-better usage band (percent): optimal, acceptable, maximum."""

    optimal: Percent
    acceptable: Percent
    maximum: Percent

    @model_validator(mode="after")
    def _ordered(self) -> Band:
        if not self.optimal <= self.acceptable <= self.maximum:
            raise ValueError("must satisfy optimal <= acceptable <= maximum")
        return self


class QualityBand(_Section):
    """A higher-is-better band (fraction 0..1): target, acceptable, minimum."""

    target: Fraction
    acceptable: Fraction
    minimum: Fraction

    @model_validator(mode="after")
    def _ordered(self) -> QualityBand:
        if not self.target >= self.acceptable >= self.minimum:
            raise ValueError("must satisfy target >= acceptable >= minimum")
        return self


class BenchmarkTargets(_Section):
    """The spec's "Performance Benchmarks". Generation-time targets come from the thresholds;
    "acceptable" is ``generation_time_acceptable_factor`` times the target (spec: 1.5)."""

    generation_time_acceptable_factor: Annotated[float, Field(ge=1)] = 1.5
    vram_usage_percent: Band = Band(optimal=70, acceptable=85, maximum=95)
    ram_usage_percent: Band = Band(optimal=60, acceptable=75, maximum=90)
    cpu_usage_percent: Band = Band(optimal=70, acceptable=85, maximum=95)
    success_rate: QualityBand = QualityBand(target=0.98, acceptable=0.95, minimum=0.90)
    resource_efficiency: QualityBand = QualityBand(target=0.85, acceptable=0.70, minimum=0.50)


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("genperf", appauthor=False))


class Settings(_Section):
    """All of genperf's settings. Construct directly in tests; use :func:`load_settings` in apps."""

    # The spec's keys and defaults.
    monitoring_interval_seconds: PositiveSeconds = 5.0
    max_history_size: Annotated[int, Field(ge=1, le=10_000_000)] = 1000
    enable_gpu_monitoring: bool = True
    performance_thresholds: PerformanceThresholds = PerformanceThresholds()
    # genperf's own keys.
    benchmark_targets: BenchmarkTargets = BenchmarkTargets()
    database_url: str | None = None  # None: a SQLite file in data_dir
    data_dir: Path = Field(default_factory=default_data_dir)
    model_dir: Path | None = None  # where model weights live; its disk is watched
    sample_retention_hours: Annotated[float, Field(gt=0)] = 24.0 * 7
    sample_flush_seconds: PositiveSeconds = 2.0
    pending_task_queue_size: Annotated[int, Field(ge=1)] = 10_000
    node_name: str | None = None  # None: the host name
    # Reset the kernel's peak RSS (/proc/self/clear_refs) per task and phase: exact peaks for
    # every phase, but the process's ru_maxrss/VmHWM then no longer show its lifetime peak.
    reset_peak_rss: bool = False
    # The HTTP API (genperf serve). Tokens are "role:token" or "role:sha256:<hex digest>"
    # entries, roles read < write < admin; GENPERF_API_TOKENS, GENPERF_ALLOWED_HOSTS and
    # GENPERF_CORS_ORIGINS (comma-separated) add to these.
    api_tokens: list[str] = Field(default_factory=list, repr=False)
    allowed_hosts: list[str] = Field(default_factory=list)  # Host names served besides loopback
    cors_origins: list[str] = Field(default_factory=list)  # empty: CORS off

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'genperf.db'}"

    @property
    def watched_disk_path(self) -> Path:
        return self.model_dir or self.data_dir

    def safe_dict(self) -> dict[str, Any]:
        """Settings as shown to people: the database password masked."""
        data = self.model_dump(mode="json", exclude={"api_tokens"})
        data["database_url"] = redact_url(self.resolved_database_url)
        data["api_tokens"] = f"{len(self.api_tokens)} configured"
        return data


def redact_url(url: str) -> str:
    """Mask the password of a database URL: postgresql://u:***@host/db."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def load_settings(
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Settings from a JSON file (``path`` or ``$GENPERF_CONFIG``) and ``GENPERF_*`` variables.

    Raises:
        ConfigError: the file is missing or not JSON, or a key or value is invalid.
    """
    env = os.environ if environ is None else environ
    source = str(path) if path is not None else env.get(CONFIG_ENV) or None
    data: dict[str, Any] = _read_file(Path(source)) if source else {}
    overrides = _env_overrides(env)
    for dotted, value in overrides.items():
        _set_dotted(data, dotted, value)
    where = source or "defaults"
    if overrides:
        where = f"{where} + environment"
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in (ROOT_KEY, *err["loc"]))
        env_name = _env_name(err["loc"])
        origin = f"environment variable {env_name}" if env_name in env else where
        got = (
            f" (got {err['input']!r})"
            if "input" in err and not isinstance(err["input"], dict)
            else ""
        )
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        raise ConfigError(f"{message}{got}", key=key, source=origin) from None


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read the config file: {exc.strerror}", source=str(path)
        ) from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})", source=str(path)
        ) from None
    if not isinstance(doc, dict) or set(doc) != {ROOT_KEY} or not isinstance(doc[ROOT_KEY], dict):
        raise ConfigError(
            f'the file must be a JSON object {{"{ROOT_KEY}": {{...}}}}', source=str(path), key=None
        )
    return dict(doc[ROOT_KEY])


_TEXT_KEYS = {"database_url", "data_dir", "model_dir", "node_name"}
# Variables read elsewhere: the CLI's server and token, and the API's lists, which it reads as
# comma-separated text (genperf.api.settings).
_NOT_SETTINGS = {
    "CONFIG",
    "URL",
    "TOKEN",
    "API_TOKENS",
    "ALLOWED_HOSTS",
    "CORS_ORIGINS",
    "DEBUG",
}


def _env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    """``GENPERF_A__B=v`` -> {"a.b": parsed v}. Values parse as JSON when they can."""
    out: dict[str, Any] = {}
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX) :]
        if rest in _NOT_SETTINGS or rest.startswith("TEST_"):
            continue
        dotted = ".".join(part.lower() for part in rest.split("__"))
        if dotted.split(".")[0] not in Settings.model_fields:
            continue  # not a setting (another tool's variable); never guess
        value: Any = raw
        if dotted not in _TEXT_KEYS:
            with contextlib.suppress(json.JSONDecodeError):  # plain text: validation judges it
                value = json.loads(raw)
        out[dotted] = value
    return out


def _env_name(loc: tuple[int | str, ...]) -> str:
    return ENV_PREFIX + "__".join(str(p).upper() for p in loc)


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = data
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[leaf] = value
