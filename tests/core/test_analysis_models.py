"""The API models of the analysis' results are derived from its dataclasses, so a new field
in one of them is one edit that reaches the OpenAPI document with its type.

Each model must have exactly its dataclass's fields, in order; a dataclass grown by one field
(as the one edit would grow it) gives a model with that field, typed, in its JSON schema.
"""

from __future__ import annotations

import dataclasses

import pytest

pytest.importorskip("fastapi")

from genperf.analysis import Benchmark, Bottleneck, Recommendation, Trend
from genperf.analysis.bottlenecks import BottleneckAnalysis
from genperf.analysis.efficiency import Efficiency
from genperf.analysis.trends import Trends
from genperf.api.app import create_app
from genperf.queries import models

DERIVED = {
    "BottleneckOut": Bottleneck,
    "RecommendationOut": Recommendation,
    "TrendOut": Trend,
    "BenchmarkOut": Benchmark,
    "BottleneckAnalysisOut": BottleneckAnalysis,
    "TrendsOut": Trends,
    "EfficiencyOut": Efficiency,
}


@pytest.mark.parametrize("name", sorted(DERIVED))
def test_each_model_has_its_dataclass_fields_in_order(name):
    model = getattr(models, name)
    assert list(model.model_fields) == [f.name for f in dataclasses.fields(DERIVED[name])]


def test_the_openapi_document_types_the_analysis_fields():
    schemas = create_app().openapi()["components"]["schemas"]
    for name, record in DERIVED.items():
        assert list(schemas[name]["properties"]) == [f.name for f in dataclasses.fields(record)]
    # enums and nested results keep their types rather than a bare string or object
    analysis = schemas["BottleneckAnalysisOut"]["properties"]
    assert analysis["status"]["$ref"] == "#/components/schemas/AnalysisStatus"
    assert analysis["checks"]["additionalProperties"]["$ref"].endswith("/CheckStatus")
    trends = schemas["TrendsOut"]["properties"]
    assert trends["generation_time"]["additionalProperties"]["$ref"].endswith("/TrendOut")


def test_a_new_dataclass_field_is_in_the_model_with_its_type():
    grown = dataclasses.make_dataclass(
        "Efficiency",
        [("probe_share", float | None, dataclasses.field(default=None))],
        bases=(Efficiency,),
        frozen=True,
    )
    model = models.record_model(grown, "EfficiencyOut", "grown")
    schema = model.model_json_schema()["properties"]["probe_share"]
    assert {"type": "number"} in schema["anyOf"]
    assert model.model_validate({**_efficiency(), "probe_share": 0.5}).probe_share == 0.5  # type: ignore[attr-defined]


def _efficiency() -> dict[str, object]:
    return {
        "score": 0.5,
        "success": 1.0,
        "on_time": None,
        "gpu_utilization": None,
        "memory_headroom": 1.0,
    }
