"""Ingested text is printable, resolutions are WxH or a class, ids carry no control or bidi
characters (issue 10): refused with a 422 naming the field."""

from __future__ import annotations

import pytest
from api_support import P

START = {"task_id": "ok-1", "model_type": "t2v-A14B", "resolution": "1280x720"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"model_type": "\x1b[31mred"}, "model_type"),
        ({"model_type": "wan\u200d"}, "model_type"),
        ({"model_type": "wan\n"}, "model_type"),
        ({"task_id": "job-\u202etxt.exe"}, "task_id"),
        ({"task_id": "job\x7f"}, "task_id"),
        ({"resolution": "banana"}, "resolution"),
        ({"resolution": "720p\x1b"}, "resolution"),
        ({"model_used": "m\x00"}, "model_used"),
        ({"optimizations_applied": ["ok", "bad\x1b"]}, "optimizations_applied[1]"),
        ({"phases": [{"name": "de\u202enoise", "duration_seconds": 1.0}]}, "phases[0].name"),
        ({"error_message": "boom \x1b[2J"}, "error_message"),
    ],
)
def test_unprintable_or_unknown_text_is_refused_naming_the_field(client, change, field):
    answer = client.post(f"{P}/tasks", json={**START, **change})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["field"] == field
    assert client.get(f"{P}/tasks", params={"limit": 5}).json()["total"] == 0


@pytest.mark.parametrize("resolution", ["1280x720", "832 x 480", "720p", "4k", "64x64", "1080P"])
def test_resolutions_as_services_write_them_are_accepted(client, resolution):
    answer = client.post(f"{P}/tasks", json={**START, "resolution": resolution})
    assert answer.status_code == 201, answer.text


def test_multi_line_error_text_is_accepted(client):
    assert client.post(f"{P}/tasks", json=START).status_code == 201
    error = "Traceback (most recent call last):\n\tFile x\nRuntimeError: CUDA out of memory"
    answer = client.post(f"{P}/tasks/ok-1/complete", json={"success": False, "error": error})
    assert answer.status_code == 200, answer.text
    assert answer.json()["error_message"] == error
