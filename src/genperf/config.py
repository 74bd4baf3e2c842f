"""Settings: the spec's JSON config file, overridden by ``GENPERF_*`` environment variables.

The file has the spec's shape::

    {"performance_monitoring": {"monitoring_interval_seconds": 5.0, ...}}

Every key the spec names exists here with the spec's default; genperf's own keys
(database_url, retention, benchmark targets ...) sit beside them in the same block.
Environment variables override the file: ``GENPERF_<KEY>`` for a top-level key and
``GENPERF_<SECTION>__<KEY>`` for a nested one, e.g.
``GENPERF_PERFORMANCE_THRESHOLDS__MAX_VRAM_USAGE_PERCENT=80``. :func:`load_settings` reads
them with pydantic-settings' own sources (prefix and ``__`` nesting are its
``env_prefix`` and ``env_nested_delimiter``); variables that name no setting are not read.
A bad value raises :class:`ConfigError` naming the key and its source, in one line.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, ClassVar, Self

import platformdirs
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)
from pydantic_settings.sources.utils import parse_env_vars

from genperf.errors import ConfigError
from genperf.records import NODE_PATTERN

ENV_PREFIX = "GENPERF_"
CONFIG_ENV = "GENPERF_CONFIG"
ROOT_KEY = "performance_monitoring"

Percent = Annotated[float, Field(ge=0, le=100)]
Fraction = Annotated[float, Field(ge=0, le=1)]
PositiveSeconds = Annotated[float, Field(gt=0)]

_GEN_TIME_KEY = re.compile(r"^max_generation_time_(\w+)$")


def _http_url(value: str) -> str:
    """An http(s) URL with a host (the live sinks' endpoints)."""
    if not re.match(r"^https?://[^/?#\s]+[^\s]*$", value):
        raise ValueError("must be an http:// or https:// URL with a host")
    return value


HttpUrl = Annotated[str, AfterValidator(_http_url)]


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


class _OrderedBand(_Section):
    """Three levels that must stand in order: a subclass declares them as its fields, best
    first, and says which way is better, so each band's check and message come from one place."""

    _ORDER: ClassVar[str]  # "<=": lower is better; ">=": higher is better

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        levels = tuple(type(self).model_fields)
        best, middle, worst = (getattr(self, name) for name in levels)
        if not (best <= middle <= worst if self._ORDER == "<=" else best >= middle >= worst):
            raise ValueError(f"must satisfy {f' {self._ORDER} '.join(levels)}")
        return self


class Band(_OrderedBand):
    """A lower-is-better usage band (percent): optimal, acceptable, maximum."""

    _ORDER = "<="

    optimal: Percent
    acceptable: Percent
    maximum: Percent


class QualityBand(_OrderedBand):
    """A higher-is-better band (fraction 0..1): target, acceptable, minimum."""

    _ORDER = ">="

    target: Fraction
    acceptable: Fraction
    minimum: Fraction


class BenchmarkTargets(_Section):
    """The spec's "Performance Benchmarks". Generation-time targets come from the thresholds;
    "acceptable" is ``generation_time_acceptable_factor`` times the target (spec: 1.5)."""

    generation_time_acceptable_factor: Annotated[float, Field(ge=1)] = 1.5
    vram_usage_percent: Band = Band(optimal=70, acceptable=85, maximum=95)
    ram_usage_percent: Band = Band(optimal=60, acceptable=75, maximum=90)
    cpu_usage_percent: Band = Band(optimal=70, acceptable=85, maximum=95)
    success_rate: QualityBand = QualityBand(target=0.98, acceptable=0.95, minimum=0.90)
    resource_efficiency: QualityBand = QualityBand(target=0.85, acceptable=0.70, minimum=0.50)


class _FileOnly:
    """Marks a setting :func:`load_settings` reads from the file only: the API reads its
    environment variable itself and adds it to the file's list (``genperf.api.settings``)."""


FILE_ONLY = _FileOnly()


class ModelLimits(_Section):
    """Limits of one model type's requests; unset values fall back to the service's."""

    max_pixels: Annotated[int, Field(ge=256)] | None = None
    max_frames: Annotated[int, Field(ge=1)] | None = None
    max_steps: Annotated[int, Field(ge=1)] | None = None
    max_run_seconds: PositiveSeconds | None = None


class GenerationLimits(_Section):
    """What one client may ask of the reference generation service (``genperf serve``).

    A request over a limit is refused (422 naming the field); a full queue answers 429 with
    Retry-After; a run past ``max_run_seconds`` fails as ``timeout`` in the phase it was in.
    """

    max_queued_requests: Annotated[int, Field(ge=1)] = 100
    max_pixels: Annotated[int, Field(ge=256)] = 1280 * 720  # width x height
    max_frames: Annotated[int, Field(ge=1)] = 121
    max_steps: Annotated[int, Field(ge=1)] = 100
    max_run_seconds: PositiveSeconds = 1800.0
    per_model: dict[str, ModelLimits] = Field(default_factory=dict)  # model_type -> limits

    def for_model(self, model_type: str) -> ModelLimits:
        """This model type's limits, every value set."""
        own = self.per_model.get(model_type, ModelLimits())
        return ModelLimits(
            max_pixels=own.max_pixels or self.max_pixels,
            max_frames=own.max_frames or self.max_frames,
            max_steps=own.max_steps or self.max_steps,
            max_run_seconds=own.max_run_seconds or self.max_run_seconds,
        )


class GenerationQueue(_Section):
    """How workers share the generation queue, on one node or many (docs/design.md).

    A running request holds a lease its worker renews every third of ``lease_seconds``; a
    lease left to expire (the worker died, on any node) is reaped by any live worker or the
    serve process: the request becomes ``interrupted``, or runs once more if it asked to.
    An idle worker is woken by new requests (LISTEN/NOTIFY on PostgreSQL, in-process on
    SQLite) and otherwise looks at the queue at most every ``idle_poll_seconds``.
    """

    lease_seconds: Annotated[float, Field(ge=1, le=3600)] = 30.0
    idle_poll_seconds: Annotated[float, Field(ge=0.05, le=600)] = 30.0


class ApiLimits(_Section):
    """Bounds of ``genperf serve`` under careless or hostile clients."""

    max_open_tasks: Annotated[int, Field(ge=1)] = 1000  # running tasks ingested over HTTP
    max_open_tasks_per_client: Annotated[int, Field(ge=1)] = 200  # per token, or per address
    # A running task with no update for this long is closed as interrupted (abandoned).
    open_task_idle_seconds: PositiveSeconds = 6 * 3600.0
    max_connections: Annotated[int, Field(ge=1)] = 512  # more are closed at once
    request_read_seconds: PositiveSeconds = 10.0  # headers and body must arrive within this
    keep_alive_seconds: Annotated[int, Field(ge=1)] = 5  # an idle connection is closed after


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
    auto_tune: bool = False  # generation service: each request's preset chosen by prediction
    # model_type -> optimisation preset the generation service runs it with (`genperf tune`)
    tuned_presets: dict[str, str] = Field(default_factory=dict)
    sample_retention_hours: Annotated[float, Field(gt=0)] = 24.0 * 7
    # The longest a task's start or phase row waits for the store writer (off the generation's
    # path), and the retry period while the database is away.
    sample_flush_seconds: PositiveSeconds = 2.0
    # Samples are stored in batches of this many (one insert, one commit): the write is the
    # biggest cost of an idle monitor besides its reads (see sample_write_delay_seconds).
    # 2 keeps a node's newest stored sample within 2 intervals, so a node is known down
    # after 3 (queries/fleet.py); a larger batch costs less and delays that verdict.
    samples_per_write: Annotated[int, Field(ge=1, le=1000)] = 2
    pending_task_queue_size: Annotated[int, Field(ge=1)] = 10_000
    node_name: Annotated[str, Field(pattern=NODE_PATTERN)] | None = None  # None: host name
    # The GPU of its node this process's generations run on (a worker per GPU); None: the
    # one CUDA_VISIBLE_DEVICES names, when it names exactly one by index.
    gpu_index: Annotated[int, Field(ge=0, le=1023)] | None = None
    generation_limits: GenerationLimits = GenerationLimits()
    generation_queue: GenerationQueue = GenerationQueue()
    api_limits: ApiLimits = ApiLimits()
    # Reset the kernel's peak RSS (/proc/self/clear_refs) per task and phase: exact peaks for
    # every phase, but the process's ru_maxrss/VmHWM then no longer show its lifetime peak.
    reset_peak_rss: bool = False
    # The HTTP API (genperf serve). Tokens are "role:token" or "role:sha256:<hex digest>"
    # entries, roles read < write < admin; GENPERF_API_TOKENS, GENPERF_ALLOWED_HOSTS and
    # GENPERF_CORS_ORIGINS (comma-separated) add to these.
    api_tokens: Annotated[list[str], FILE_ONLY] = Field(default_factory=list, repr=False)
    # Host names served besides loopback
    allowed_hosts: Annotated[list[str], FILE_ONLY] = Field(default_factory=list)
    cors_origins: Annotated[list[str], FILE_ONLY] = Field(default_factory=list)  # empty: no CORS
    # Live sinks (genperf.sinks, docs/integrations.md): finished tasks (and samples, for
    # InfluxDB) sent as they come, from a thread of their own through a bounded queue each.
    influxdb_url: HttpUrl | None = Field(default=None, repr=False)  # InfluxDB 1.x HTTP API
    influxdb_database: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] = "genperf"
    elasticsearch_url: HttpUrl | None = Field(default=None, repr=False)
    elasticsearch_index: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,254}$")] = (
        "genperf-tasks"
    )
    otlp_endpoint: HttpUrl | None = None  # OTLP/HTTP metrics, e.g. http://host:4318/v1/metrics
    otlp_export_seconds: PositiveSeconds = 10.0
    task_log: Annotated[str, Field(min_length=1)] | None = None  # "stdout", "stderr" or a file
    sink_batch_size: Annotated[int, Field(ge=1, le=100_000)] = 1000
    sink_queue_size: Annotated[int, Field(ge=1, le=10_000_000)] = 10_000
    sink_flush_seconds: PositiveSeconds = 1.0
    sink_retry_max_seconds: PositiveSeconds = 60.0
    sink_timeout_seconds: PositiveSeconds = 10.0

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'genperf.db'}"

    @property
    def watched_disk_path(self) -> Path:
        return self.model_dir or self.data_dir

    def sample_write_delay_seconds(self, interval: float | None = None) -> float:
        """The longest a sample waits in its monitor before it is stored: one batch of
        ``samples_per_write`` intervals (``interval``: the sampling node's own, where known).
        Readers that judge a node by its newest stored sample allow for it."""
        every = self.monitoring_interval_seconds if interval is None else interval
        return self.samples_per_write * every

    @model_validator(mode="after")
    def _thresholds_are_the_limits(self) -> Settings:
        """The spec's thresholds are the limits of the bands every verdict reads.

        ``performance_thresholds.max_vram_usage_percent`` / ``max_ram_usage_percent`` are the
        ``maximum`` of ``benchmark_targets.vram_usage_percent`` / ``ram_usage_percent`` and
        ``min_success_rate`` the ``minimum`` of ``benchmark_targets.success_rate``; the lines
        inside a band (optimal, acceptable / target, acceptable) keep their values, moved to the
        limit when they would pass it. A band set explicitly without its threshold sets the
        threshold instead; both set and disagreeing is an error naming both keys. Done here, once,
        so every reader of ``benchmark_targets`` (Python tally, SQL tally, benchmarks, CLI,
        dashboard) sees the same lines.
        """
        thresholds, targets = self.performance_thresholds, self.benchmark_targets
        t_update: dict[str, float] = {}
        b_update: dict[str, Band | QualityBand] = {}
        for t_key, b_key, line in _LIMITS:
            band = getattr(targets, b_key)
            limit = float(getattr(thresholds, t_key))
            if b_key in targets.model_fields_set and getattr(band, line) != limit:
                if t_key in thresholds.model_fields_set:
                    raise ValueError(
                        f"benchmark_targets.{b_key}.{line} ({getattr(band, line):g}) differs from "
                        f"performance_thresholds.{t_key} ({limit:g}): the threshold is that "
                        "limit, set one of them"
                    )
                t_update[t_key] = getattr(band, line)
                continue
            b_update[b_key] = _with_limit(band, limit)
        if t_update:
            object.__setattr__(
                self, "performance_thresholds", thresholds.model_copy(update=t_update)
            )
        if b_update:
            object.__setattr__(self, "benchmark_targets", targets.model_copy(update=b_update))
        return self

    def safe_dict(self) -> dict[str, Any]:
        """Settings as shown to people: the database password masked."""
        data = self.model_dump(mode="json", exclude={"api_tokens"})
        data["database_url"] = redact_url(self.resolved_database_url)
        for key in ("influxdb_url", "elasticsearch_url", "otlp_endpoint"):
            if data[key]:
                data[key] = redact_url(data[key])
        data["api_tokens"] = f"{len(self.api_tokens)} configured"
        return data


# (threshold key, benchmark band key, the band's line that the threshold is)
_LIMITS = (
    ("max_vram_usage_percent", "vram_usage_percent", "maximum"),
    ("max_ram_usage_percent", "ram_usage_percent", "maximum"),
    ("min_success_rate", "success_rate", "minimum"),
)


def _with_limit(band: Band | QualityBand, limit: float) -> Band | QualityBand:
    """The band with ``limit`` as its last line, the inner lines moved inside it if needed."""
    if isinstance(band, Band):
        acceptable = min(band.acceptable, limit)
        return Band(optimal=min(band.optimal, acceptable), acceptable=acceptable, maximum=limit)
    acceptable = max(band.acceptable, limit)
    return QualityBand(target=max(band.target, acceptable), acceptable=acceptable, minimum=limit)


def redact_url(url: str) -> str:
    """Mask the password of a database URL: postgresql://u:***@host/db."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


class _Environment(EnvSettingsSource):
    """pydantic-settings' environment source, reading a given mapping (tests pass their own)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        if FILE_ONLY in field.metadata:
            return None, field_name, False
        return super().get_field_value(field, field_name)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        loaded: Mapping[str, str | None] = parse_env_vars(
            self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )
        return loaded


# The environment load_settings reads (a parameter, so tests need not touch os.environ).
_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("genperf_environ", default=None)


class _Loaded(BaseSettings, Settings):
    """Settings as pydantic-settings loads them: the environment over the file."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        validate_default=True,
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The first source wins: the environment, then the file (passed as init values).
        environ = _ENVIRON.get()
        return _Environment(settings_cls, os.environ if environ is None else environ), init_settings


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
    where = source or "defaults"

    reset = _ENVIRON.set(env)
    try:
        loaded = _Loaded(**data)
    except ValidationError as exc:
        raise _config_error(exc, env, where) from None
    except SettingsError as exc:  # a nested value in the environment that is not JSON
        name = _env_of(str(exc), env)
        key = f"{ROOT_KEY}.{name[len(ENV_PREFIX) :].lower().replace('__', '.')}"
        raise ConfigError(
            "expected a JSON object", key=key, source=f"environment variable {name}"
        ) from None
    finally:
        _ENVIRON.reset(reset)
    # A plain Settings, as tests build them: the loader's class stays in here.
    return Settings.model_validate({name: getattr(loaded, name) for name in Settings.model_fields})


def _config_error(exc: ValidationError, env: Mapping[str, str], where: str) -> ConfigError:
    """The first error as one line naming the key and where it came from."""
    err = exc.errors()[0]
    key = ".".join(str(p) for p in (ROOT_KEY, *err["loc"]))
    env_name = ENV_PREFIX + "__".join(str(p).upper() for p in err["loc"])
    origin = f"environment variable {env_name}" if env_name in env else where
    got = (
        f" (got {err['input']!r})" if "input" in err and not isinstance(err["input"], dict) else ""
    )
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        message = "unknown key"
    return ConfigError(f"{message}{got}", key=key, source=origin)


def _env_of(message: str, env: Mapping[str, str]) -> str:
    """The variable a pydantic-settings error is about ('... for field "x" from source ...')."""
    match = re.search(r'field "(\w+)"', message)
    field = match.group(1) if match else ""
    prefix = f"{ENV_PREFIX}{field.upper()}"
    return next((n for n in env if n.upper().startswith(prefix)), prefix)


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
