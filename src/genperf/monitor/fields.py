"""Validation of the task metrics a caller sets through ``update_task_metrics(**fields)``.

The accepted names and types come from :class:`genperf.records.TaskRecord` itself, so a new
metric added there is accepted here without another list to keep in step.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Mapping
from typing import Any

from genperf.errors import InvalidFieldValueError, UnknownFieldError
from genperf.records import TEXT_LIMITS, UPDATABLE_FIELDS, PhaseRecord, TaskRecord

_HINTS = typing.get_type_hints(TaskRecord)


def _unwrap(hint: Any) -> tuple[Any, bool]:
    """(the type inside ``X | None``, whether None is allowed)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        (inner,) = [a for a in args if a is not type(None)]
        return inner, type(None) in args
    return hint, False


# Each updatable field's type, unwrapped once here rather than on every call (the task API's
# hot path coerces every start's extra fields).
_TYPES = {name: _unwrap(_HINTS[name]) for name in UPDATABLE_FIELDS}


def coerce_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Check names and values; return them converted to the record's types.

    Raises:
        UnknownFieldError: a name that is not an updatable task metric.
        InvalidFieldValueError: a value of the wrong type or an impossible number.
    """
    out: dict[str, Any] = {}
    for name, value in fields.items():
        if name not in UPDATABLE_FIELDS:
            raise UnknownFieldError(name, UPDATABLE_FIELDS)
        hint, optional = _TYPES[name]
        out[name] = None if value is None and optional else _coerce(name, hint, value)
    return out


def check_text(name: str, value: str) -> str:
    """``value`` if it fits the field's column (see records.TEXT_LIMITS), else an error."""
    limit = TEXT_LIMITS.get(name)
    if limit is not None and len(value) > limit:
        raise InvalidFieldValueError(name, f"at most {limit} characters, got {len(value)}")
    return value


def _coerce(name: str, hint: Any, value: Any) -> Any:
    """``value`` as a ``hint``; the plain types are tried first (no typing introspection)."""
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidFieldValueError(name, f"expected a number, got {type(value).__name__}")
        if not math.isfinite(value) or value < 0:
            raise InvalidFieldValueError(name, f"expected a finite number >= 0, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidFieldValueError(name, f"expected an integer >= 0, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise InvalidFieldValueError(name, f"expected true or false, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise InvalidFieldValueError(name, f"expected text, got {type(value).__name__}")
        return check_text(name, value)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        inner, optional = _unwrap(hint)
        return None if value is None and optional else _coerce(name, inner, value)
    if typing.get_origin(hint) is tuple:
        return _coerce_tuple(name, typing.get_args(hint)[0], value)
    raise InvalidFieldValueError(name, "cannot be set")  # pragma: no cover - new field type


def _coerce_tuple(name: str, item: Any, value: Any) -> tuple[Any, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple | set | frozenset):
        raise InvalidFieldValueError(name, f"expected a list, got {type(value).__name__}")
    items = sorted(value) if isinstance(value, set | frozenset) else list(value)
    if item is PhaseRecord:
        return tuple(_phase(name, p) for p in items)
    values = tuple(_coerce(f"{name}[{i}]", item, v) for i, v in enumerate(items))
    if name == "optimizations_applied":  # tokens compare as written, in SQL too: one spelling
        values = tuple(dict.fromkeys(v.strip().lower() for v in values))
    return values


def _phase(name: str, value: Any) -> PhaseRecord:
    if isinstance(value, PhaseRecord):
        return value
    if not isinstance(value, Mapping):
        raise InvalidFieldValueError(name, "each phase must be an object with name and duration")
    try:
        return PhaseRecord(
            name=check_text("phase", str(value["name"])),
            started_offset_seconds=float(value.get("started_offset_seconds", 0.0)),
            duration_seconds=float(value["duration_seconds"]),
            peak_vram_allocated_mb=_opt_float(value.get("peak_vram_allocated_mb")),
            peak_vram_mb=_opt_float(value.get("peak_vram_mb")),
            peak_ram_mb=_opt_float(value.get("peak_ram_mb")),
            failed=bool(value.get("failed", False)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidFieldValueError(name, f"bad phase {value!r}: {exc}") from None


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)
