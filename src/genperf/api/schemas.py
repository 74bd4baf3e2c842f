"""Request bodies and the API's own small answers; the response models of reads are
:mod:`genperf.queries.models` (derived from the records), imported here for the routers.

Inputs refuse NaN and infinities, unknown fields and lax coercion.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from types import NoneType, UnionType
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, create_model

from genperf.queries.models import (
    ActiveTaskOut,
    AnalysisOut,
    BenchmarksOut,
    ExportDocument,
    GpuOut,
    MetricsPage,
    MonitoringOut,
    MonitorStatsOut,
    PhaseOut,
    RecommendationsOut,
    SampleOut,
    StatusOut,
    TaskOut,
)
from genperf.queries.reads import STATUS_ACTIVE_TASKS
from genperf.records import (
    NODE_PATTERN,
    TEXT_LIMITS,
    UPDATABLE_FIELDS,
    ErrorCategory,
    TaskRecord,
)


def _json_integer(value: Any) -> Any:
    """JSON has numbers, not integers: 81.0 is the integer 81 (as JSON Schema says); text
    and booleans are not integers."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# Characters no label may hold: control characters (a terminal escape such as "\x1b[31m"),
# format characters (bidi overrides such as U+202E, zero-width joiners), line and paragraph
# separators and private use. Free text (error messages) may hold newlines and tabs. Written
# as patterns so the OpenAPI document says what is accepted; renderers escape what they show
# anyway, this keeps stored data honest.
_CONTROLS = r"\x00-\x08\x0b-\x1f\x7f-\x9f"
_FORMATS = (
    r"\u00ad\u0600-\u0605\u061c\u06dd\u070f\u180e\u200b-\u200f\u2028-\u202e"
    r"\u2060-\u206f\ufeff\ufff9-\ufffb\ue000-\uf8ff"
)
LABEL_PATTERN = rf"^[^\t\n{_CONTROLS}{_FORMATS}]*$"
TEXT_PATTERN = rf"^[^{_CONTROLS}{_FORMATS}]*$"  # newlines and tabs allowed
_LABEL = re.compile(LABEL_PATTERN)
_TEXT = re.compile(TEXT_PATTERN)


def _printable(value: str, pattern: re.Pattern[str] = _LABEL) -> str:
    if not pattern.fullmatch(value):  # fullmatch: "$" alone would let a final "\n" through
        bad = next(ch for ch in value if not pattern.fullmatch(ch))
        raise ValueError(f"must be printable text: U+{ord(bad):04X} is a control character")
    return value


def _printable_text(value: str) -> str:
    return _printable(value, _TEXT)


# What genperf.records.resolution_class understands: WIDTHxHEIGHT, a class (720p), a name.
RESOLUTION_PATTERN = (  # spaces, not \s: tabs and line breaks are not printable labels
    r"^ *(?:[1-9][0-9]{0,4} *[xX×*,] *[1-9][0-9]{0,4}|[1-9][0-9]{2,3} *[pP]"
    r"|4[kK]|[uUfF]?[hH][dD]|[sS][dD]) *$"
)
_RESOLUTION = re.compile(RESOLUTION_PATTERN)


def _resolution(value: str) -> str:
    if not _RESOLUTION.fullmatch(value):
        raise ValueError("expected WIDTHxHEIGHT (such as 1280x720) or a class such as 720p")
    return value


Printable = AfterValidator(_printable)
LabelSchema = Field(json_schema_extra={"pattern": LABEL_PATTERN})
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0, le=10_000_000), BeforeValidator(_json_integer)]
Percent = Annotated[float, Field(ge=0, le=1000, allow_inf_nan=False)]
Label = Annotated[str, Field(min_length=1, max_length=100), LabelSchema, Printable]
ShortText = Annotated[str, Field(max_length=200), LabelSchema, Printable]
TaskId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=TEXT_LIMITS["task_id"],
        pattern=rf"^[^/\t\n{_CONTROLS}{_FORMATS}]+$",
    ),
]

MAX_PHASES = 100  # per task; a generation has a handful
MAX_STEP_TIMES = 1000  # per task; diffusion runs take tens of steps, 200 at most here


# Short text fields, as long as their database columns allow (records.TEXT_LIMITS).
def _text(field: str) -> Any:
    return Field(
        min_length=1,
        max_length=TEXT_LIMITS.get(field, 2000),
        json_schema_extra={"pattern": LABEL_PATTERN},
    )


ModelType = Annotated[str, _text("model_type"), Printable]
ResolutionText = Annotated[
    str,
    Field(
        min_length=1,
        max_length=TEXT_LIMITS["resolution"],
        json_schema_extra={"pattern": RESOLUTION_PATTERN},
    ),
    Printable,
    AfterValidator(_resolution),
]
PhaseName = Annotated[str, _text("phase"), Printable]
FailedPhase = Annotated[str, _text("failed_phase"), Printable]
ErrorText = Annotated[
    str,
    Field(max_length=2000, json_schema_extra={"pattern": TEXT_PATTERN}),
    AfterValidator(_printable_text),
]


class _In(BaseModel):
    """Request bodies: unknown fields refused, no lax coercion ("1" is not a number, 0 is
    not false), so what the OpenAPI document calls invalid is refused."""

    model_config = ConfigDict(extra="forbid", strict=True)


class PhaseIn(_In):
    name: PhaseName
    started_offset_seconds: NonNegative = 0.0
    duration_seconds: NonNegative
    peak_vram_allocated_mb: NonNegative | None = None
    peak_vram_mb: NonNegative | None = None
    peak_ram_mb: NonNegative | None = None
    failed: bool = False


# Input types of record fields whose bounds are not those of their type's convention.
_INPUT_TYPES: dict[str, Any] = {
    # Bounded: a running task lives in the server's memory until it completes.
    "phases": Annotated[list[PhaseIn], Field(max_length=MAX_PHASES)],
    "step_times_seconds": Annotated[list[NonNegative], Field(max_length=MAX_STEP_TIMES)],
    "error_message": ErrorText,
    "recovery_suggestions": Annotated[list[ShortText], Field(max_length=64)],
}


def _input_type(name: str, hint: Any) -> Any:
    """What a caller may send for a record field, by its type: counts and finite non-negative
    numbers (``*_percent`` up to 1000), text as long as its column, bounded lists."""
    if name in _INPUT_TYPES:
        return _INPUT_TYPES[name]
    args = [a for a in typing.get_args(hint) if a is not NoneType]
    base = args[0] if len(args) == 1 and typing.get_origin(hint) in (Union, UnionType) else hint
    item = typing.get_args(base)[0] if typing.get_origin(base) is tuple else None
    if base is bool:
        return bool
    if base is int:
        return Count
    if base is float:
        return Percent if name.endswith("_percent") else NonNegative
    if base is str:
        return Annotated[str, _text(name), Printable]
    if item is str:
        return Annotated[list[Label], Field(max_length=64)]
    if item is float:
        return Annotated[list[NonNegative], Field(max_length=100_000)]
    raise TypeError(f"TaskMetricsIn: no input type for TaskRecord.{name} ({hint})")


class _MetricsIn(_In):
    def fields(self) -> dict[str, Any]:
        """The fields the caller sent, ready for ``update_task_metrics(**fields)``."""
        sent = self.model_dump(exclude_unset=True)
        for name in _LIST_FIELDS & sent.keys():
            if sent[name] is None:
                sent[name] = []
        return sent


_HINTS = typing.get_type_hints(TaskRecord)
_UPDATABLE = [f.name for f in dataclasses.fields(TaskRecord) if f.name in UPDATABLE_FIELDS]
_LIST_FIELDS = frozenset(n for n in _UPDATABLE if typing.get_origin(_HINTS[n]) is tuple)

if TYPE_CHECKING:
    TaskMetricsIn = _MetricsIn
else:
    # One optional field per field a caller may update (records.UPDATABLE_FIELDS), derived
    # from the record: a new metric is accepted here with no edit.
    TaskMetricsIn = create_model(
        "TaskMetricsIn",
        __base__=_MetricsIn,
        __module__=__name__,
        __doc__=(
            "Metrics of a running task, by name; any subset. Unknown names are refused (422).\n"
            "null sets a metric back to unknown (a list to empty)."
        ),
        **{name: (_input_type(name, _HINTS[name]) | None, None) for name in _UPDATABLE},
    )


NodeName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=TEXT_LIMITS["node"],
        pattern=NODE_PATTERN,
        description="The node the generation runs on (a host name); default: the server's.",
    ),
]


class TaskStartIn(TaskMetricsIn):
    """Start monitoring a generation (the spec's ``start_task_monitoring``)."""

    task_id: TaskId
    model_type: ModelType
    resolution: ResolutionText = "720p"
    steps: Count | None = None
    node: NodeName | None = None

    def fields(self) -> dict[str, Any]:
        out = super().fields()
        for key in ("task_id", "model_type", "resolution", "steps", "node"):
            out.pop(key, None)
        return out


class TaskCompleteIn(_In):
    """Finish a task (the spec's ``complete_task_monitoring``). An empty body is success."""

    success: bool = True
    error: ErrorText | None = Field(
        default=None, description="The error message of a failed generation; never a prompt."
    )
    error_category: Annotated[ErrorCategory, Field(strict=False)] | None = None
    failed_phase: FailedPhase | None = None


class TaskCompletedOut(TaskOut):
    """A finished task and whether its record is stored."""

    durable: bool = Field(
        description="True: committed to the database. False: held in memory until the "
        "database is back (a restart of the server before then loses it)."
    )


class RunningTasksPage(BaseModel):
    """Running tasks, oldest first, one page at a time."""

    total: int = Field(description="Running tasks now, all pages.")
    limit: int
    offset: int
    next_offset: int | None = Field(description="Offset of the next page, null on the last.")
    tasks: list[ActiveTaskOut]


# --- health --------------------------------------------------------------------------------


class WhoAmIOut(BaseModel):
    role: Literal["read", "write", "admin"]


class HealthOut(BaseModel):
    status: Literal["ok"] = "ok"


class ReadyOut(BaseModel):
    status: Literal["ready"] = "ready"
    database: Literal["ok"] = "ok"


__all__ = [
    "MAX_PHASES",
    "MAX_STEP_TIMES",
    "STATUS_ACTIVE_TASKS",
    "ActiveTaskOut",
    "AnalysisOut",
    "BenchmarksOut",
    "ExportDocument",
    "GpuOut",
    "HealthOut",
    "MetricsPage",
    "MonitorStatsOut",
    "MonitoringOut",
    "PhaseIn",
    "PhaseOut",
    "ReadyOut",
    "RecommendationsOut",
    "RunningTasksPage",
    "SampleOut",
    "StatusOut",
    "TaskCompleteIn",
    "TaskCompletedOut",
    "TaskMetricsIn",
    "TaskOut",
    "TaskStartIn",
    "WhoAmIOut",
]
