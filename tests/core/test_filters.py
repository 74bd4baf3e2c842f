"""A read's filters are one value: each is a field of ``Filters`` that the report, the task
query and the metrics page take under the same name, so a new filter needs no edit of the
signatures in between; equal filters are one cache key."""

from __future__ import annotations

import dataclasses
import inspect

from genperf.analysis import build_report
from genperf.queries import EVERY, Filters
from genperf.queries.models import MetricsPage
from genperf.storage.base import TaskQuery


def test_every_filter_is_taken_by_the_report_the_task_query_and_the_page():
    names = {f.name for f in dataclasses.fields(Filters)}
    assert names <= set(inspect.signature(build_report).parameters)
    assert names <= {f.name for f in dataclasses.fields(TaskQuery)}
    assert names <= set(MetricsPage.model_fields)
    TaskQuery(**Filters("t2v-A14B", True, ["gpu-01"]).fields())  # and accepts its values


def test_the_same_nodes_in_any_order_are_one_filter_and_one_cache_key():
    one = Filters(nodes=["gpu-02", "gpu-01", "gpu-02"])
    other = Filters(nodes=("gpu-01", "gpu-02"))
    assert one == other and hash(one) == hash(other)
    assert one.nodes == ("gpu-01", "gpu-02")
    assert Filters() == EVERY and EVERY.fields() == {
        "model_type": None,
        "success_only": False,
        "nodes": (),
    }
