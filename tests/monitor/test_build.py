"""record_builder makes the same record as the dataclass's own __init__, from a dict of every
field, and refuses classes whose construction it would change."""

from __future__ import annotations

import dataclasses

import pytest

from genperf.monitor.build import record_builder
from genperf.records import TASK_FIELDS, CompletedTask, Durability, TaskRecord, TaskStatus
from genperf.testing import make_task


def test_a_built_record_equals_the_constructed_one_field_for_field() -> None:
    original = make_task(task_id="built", status=TaskStatus.FAILED, error_message="boom")
    fields = {name: getattr(original, name) for name in TASK_FIELDS}
    built = record_builder(TaskRecord)(fields)
    assert type(built) is TaskRecord
    assert built == original
    assert hash(built) == hash(original)
    assert all(getattr(built, name) == getattr(original, name) for name in TASK_FIELDS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.task_id = "changed"  # type: ignore[misc]


def test_a_subclass_field_is_set_too() -> None:
    fields = {name: getattr(make_task(), name) for name in TASK_FIELDS}
    completed = record_builder(CompletedTask)({**fields, "durability": Durability.QUEUED})
    assert type(completed) is CompletedTask
    assert completed.durability is Durability.QUEUED
    assert not completed.durable


def test_a_missing_field_is_an_error_not_a_hole() -> None:
    fields = {name: getattr(make_task(), name) for name in TASK_FIELDS if name != "node"}
    with pytest.raises(KeyError, match="node"):
        record_builder(TaskRecord)(fields)


@dataclasses.dataclass(frozen=True, slots=True)
class Checked:
    value: int

    def __post_init__(self) -> None:
        if self.value < 0:
            raise ValueError("value")


@dataclasses.dataclass(frozen=True)
class NoSlots:
    value: int


@pytest.mark.parametrize("cls", [Checked, NoSlots])
def test_classes_whose_construction_a_builder_would_change_are_refused(cls: type) -> None:
    with pytest.raises(TypeError):
        record_builder(cls)
