"""Elasticsearch: task documents, their index template, and the NDJSON bulk body.

A task document is the record as the JSON export writes it (``TaskRecord.to_dict()``, the
spec's field names and units) plus ``@timestamp`` (its ``started_at``), which Kibana and
data views take as the time field. Its ``_id`` is the ``run_id``, so indexing a task again (a
retry after an outage, a second export) replaces it rather than adding a copy.

:func:`index_template` is the composable index template (``PUT _index_template/<name>``) with
a mapping for every field, derived from the record's type annotations so that it cannot drift
from the documents; ``deploy/elasticsearch/genperf-tasks.index-template.json`` is its output
(a test keeps them equal). ``python -m genperf.exporters.elastic [INDEX]`` prints it.

:func:`render_ndjson` streams the bulk body (an action line and a document line per task),
the ``genperf export --format ndjson`` file that ``curl --data-binary @file .../_bulk`` loads.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
import typing
from collections.abc import Iterable, Iterator
from typing import Any

from genperf.records import PhaseRecord, TaskRecord

DEFAULT_INDEX = "genperf-tasks"
CHUNK_DOCUMENTS = 500
NDJSON_TYPE = "application/x-ndjson"

# Free text (searched by words, and kept whole for exact matches up to 1024 characters).
_TEXT = {"error_message", "recovery_suggestions"}
_TIMES = {"started_at", "completed_at"}


def _field_type(annotation: Any) -> str:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    base = args[0] if isinstance(annotation, types.UnionType) and len(args) == 1 else annotation
    if typing.get_origin(base) is tuple:  # tuple[X, ...]: an array of X
        base = typing.get_args(base)[0]
    if base is bool:
        return "boolean"
    if base is int:
        return "long"
    if base is float:
        return "double"
    return "keyword"


def _properties(cls: type[Any]) -> dict[str, dict[str, Any]]:
    hints = typing.get_type_hints(cls)
    out: dict[str, dict[str, Any]] = {}
    for f in dataclasses.fields(cls):
        if f.name in _TEXT:
            out[f.name] = {
                "type": "text",
                "fields": {"raw": {"type": "keyword", "ignore_above": 1024}},
            }
        elif f.name in _TIMES:
            out[f.name] = {"type": "date"}
        elif f.name == "phases":
            out[f.name] = {"type": "nested", "properties": _properties(PhaseRecord)}
        else:
            out[f.name] = {"type": _field_type(hints[f.name])}
    return out


def mappings() -> dict[str, Any]:
    """The mapping of a task document: every field, typed from TaskRecord's annotations.
    ``dynamic: false``: a field a later genperf adds is kept in ``_source`` but not indexed
    until the template is updated, rather than refusing the document."""
    properties = {"@timestamp": {"type": "date"}, **_properties(TaskRecord)}
    properties["success"] = {"type": "boolean"}
    return {"dynamic": False, "properties": properties}


def index_template(index: str = DEFAULT_INDEX) -> dict[str, Any]:
    """The composable index template for ``index`` (and ``index-*``, for rolled indices)."""
    return {
        "index_patterns": [index, f"{index}-*"],
        "priority": 200,
        "template": {
            "settings": {"number_of_shards": 1},
            "mappings": mappings(),
        },
        "_meta": {"description": "genperf: one document per monitored generation"},
    }


def task_document(record: TaskRecord) -> dict[str, Any]:
    """The document of one task: the JSON export's record plus ``@timestamp``."""
    doc = record.to_dict()
    return {"@timestamp": doc["started_at"], **doc}


def bulk_action(record: TaskRecord, index: str = DEFAULT_INDEX) -> dict[str, Any]:
    """The bulk helpers' action for one task: index it under its run_id."""
    return {
        "_op_type": "index",
        "_index": index,
        "_id": record.run_id,
        "_source": task_document(record),
    }


def _dumps(value: Any) -> str:
    # The separators of the elasticsearch client's own JSON serializer, so the export file is
    # byte for byte the body the client would send.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def render_ndjson(
    records: Iterable[TaskRecord],
    index: str = DEFAULT_INDEX,
    *,
    chunk_documents: int = CHUNK_DOCUMENTS,
) -> Iterator[str]:
    """Yield the ``_bulk`` body (action line, document line, per task) in chunks."""
    chunk: list[str] = []
    for record in records:
        action = {"index": {"_id": record.run_id, "_index": index}}  # the helpers' order
        chunk.append(f"{_dumps(action)}\n{_dumps(task_document(record))}\n")
        if len(chunk) >= chunk_documents:
            yield "".join(chunk)
            chunk = []
    if chunk:
        yield "".join(chunk)


def main(argv: list[str] | None = None) -> None:
    """Print the index template (for ``deploy/elasticsearch/``)."""
    args = sys.argv[1:] if argv is None else argv
    print(json.dumps(index_template(args[0] if args else DEFAULT_INDEX), indent=2))


if __name__ == "__main__":
    main()


__all__ = [
    "DEFAULT_INDEX",
    "NDJSON_TYPE",
    "bulk_action",
    "index_template",
    "mappings",
    "render_ndjson",
    "task_document",
]
