"""A model type is a name inside the registry or model_dir, never a path (issue 10)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genperf.config import Settings
from genperf.generation import ModelNotAvailableError, ModelRegistry
from genperf.generation.tiny_wan import MODEL_INDEX


def _model(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / MODEL_INDEX).write_text(json.dumps({"_class_name": "WanPipeline"}))
    return path


@pytest.fixture
def layout(tmp_path: Path) -> tuple[ModelRegistry, Path]:
    model_dir = tmp_path / "srv" / "models"
    _model(model_dir / "wan-inside")
    (model_dir / "empty-dir").mkdir()
    _model(tmp_path / "outside" / "tiny")  # a real model directory, outside model_dir
    settings = Settings(data_dir=tmp_path / "data", model_dir=model_dir)
    return ModelRegistry(settings), tmp_path


def test_a_name_inside_model_dir_resolves(layout):
    registry, _ = layout
    spec = registry.resolve("wan-inside")
    assert spec.path.name == "wan-inside"
    assert "wan-inside" in registry.model_types()


@pytest.mark.parametrize(
    "name",
    [
        "../outside/tiny",
        "../../outside/tiny",
        "wan-inside/../../../outside/tiny",
        "./wan-inside",
        "..",
        ".",
        "wan-inside/",
        "wan-inside\n",
        "wan\\inside",
        "wan\x1b[31minside",
        "",
    ],
)
def test_paths_and_odd_names_are_refused(layout, name):
    registry, _ = layout
    with pytest.raises(ModelNotAvailableError):
        registry.resolve(name)


def test_an_absolute_path_to_a_real_model_is_refused(layout):
    registry, tmp_path = layout
    outside = str(tmp_path / "outside" / "tiny")
    with pytest.raises(ModelNotAvailableError) as info:
        registry.resolve(outside)
    assert "not a model name" in str(info.value)


def test_errors_name_the_model_type_only_and_reveal_no_existence(layout):
    registry, tmp_path = layout
    messages = {}
    for name in ("empty-dir", "no-such-dir"):  # one exists on disk, one does not
        with pytest.raises(ModelNotAvailableError) as info:
            registry.resolve(name)
        messages[name] = str(info.value).replace(name, "NAME")
        assert str(tmp_path) not in str(info.value)
        assert "GENPERF_MODEL_DIR" in str(info.value)
    assert messages["empty-dir"] == messages["no-such-dir"]
