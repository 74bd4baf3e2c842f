"""Results as JSON-ready values: dataclasses to dicts, enums to values, no NaN or infinity."""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any


def jsonable(value: Any) -> Any:
    """A JSON-safe copy: NaN and infinities become None, datetimes ISO 8601, tuples lists."""
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value.value if isinstance(value, enum.Enum) else value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if hasattr(value, "to_dict"):
            return value.to_dict()
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(jsonable(k)): jsonable(v) for k, v in value.items()}
    if isinstance(value, tuple | list | set | frozenset):
        items = sorted(value) if isinstance(value, set | frozenset) else value
        return [jsonable(v) for v in items]
    raise TypeError(f"not JSON-safe: {type(value).__name__}")


def fields_dict(obj: Any) -> dict[str, Any]:
    """The dataclass's fields as a JSON-safe dict (what to_dict methods return)."""
    return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
