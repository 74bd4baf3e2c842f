"""Errors that arrive only as text through the ingestion API get the same diagnosis."""

from __future__ import annotations

from api_support import P


def test_a_text_only_error_through_ingestion_is_diagnosed(client) -> None:  # type: ignore[no-untyped-def]
    """The wider taxonomy reaches services that report errors only as text."""
    start = {"task_id": "job-disk", "model_type": "t2v-A14B", "resolution": "1280x720"}
    assert client.post(f"{P}/tasks", json=start).status_code == 201
    r = client.post(
        f"{P}/tasks/job-disk/complete",
        json={
            "success": False,
            "error": "OSError: [Errno 28] No space left on device: '/outputs/job-disk.mp4'",
            "failed_phase": "save",
        },
    )
    assert r.status_code == 200, r.text
    stored = client.get(f"{P}/tasks/job-disk").json()
    assert stored["error_category"] == "storage_error"
    assert "output volume is full" in stored["recovery_suggestions"][0]
