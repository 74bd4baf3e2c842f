import json
import math

import pytest

from genperf.records import PhaseRecord, resolution_class, resolution_label, to_jsonable
from genperf.testing import make_task


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("1280x720", "720p"),
        ("720p", "720p"),
        ((1280, 720), "720p"),
        ("720x1280", "720p"),
        ("1280*704", "720p"),
        ("832x480", "480p"),
        ("1920x1080", "1080p"),
        ("1080P", "1080p"),
        ({"width": 1920, "height": 1080}, "1080p"),
        ("4k", "2160p"),
        ("64x64", "tiny"),
        ("huge", "other"),
        ("", "other"),
        ((0, 0), "other"),
    ],
)
def test_resolution_class(given, expected):
    assert resolution_class(given) == expected


def test_resolution_label():
    assert resolution_label((1280, 720)) == "1280x720"
    assert resolution_label(" 720p ") == "720p"


def test_task_to_dict_is_json_ready_and_never_nan():
    task = make_task(
        phases=(PhaseRecord("denoise", 1.0, 2.0, peak_vram_mb=math.nan),),
        peak_cpu_percent=math.inf,
    )
    data = task.to_dict()
    text = json.dumps(data, allow_nan=False)
    assert '"status": "completed"' in text
    assert data["success"] is True
    assert data["phases"][0]["peak_vram_mb"] is None
    assert data["peak_cpu_percent"] is None
    assert data["started_at"].endswith("+00:00")


def test_percent_properties():
    task = make_task(peak_vram_usage_mb=7600.0, vram_total_mb=8000.0, peak_ram_usage_mb=None)
    assert task.peak_vram_percent == pytest.approx(95.0)
    assert task.peak_ram_percent is None


def test_to_jsonable_mappings_and_sets():
    assert to_jsonable({"a": {1, 2}}) == {"a": [1, 2]}
