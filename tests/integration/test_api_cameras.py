"""/v1/cameras over loopback HTTP: create, read, pause/resume, delete with the schedule,
tenant isolation, validation, and a camera's events with wall-clock times."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

from sightline import factory
from sightline.adapters.local_live import LocalScheduler
from sightline.api.security import Role
from sightline.models import LiveClipInput
from sightline.services.cameras import CameraRepository
from tests.integration.test_api_http import client, server  # noqa: F401 (fixture)
from tests.support.media import synth_video

KVS = "arn:aws:kinesisvideo:eu-west-1:123456789012:stream/dock-7/1700000000000"


def _clip(server: dict[str, Any]) -> Path:  # noqa: F811
    path = server["tmp"] / "cam.mp4"
    if not path.exists():
        synth_video(path, seconds=4.0)
    return path


def _schedules() -> dict[str, dict[str, Any]]:
    return {s["camera_id"]: s for s in LocalScheduler(factory.tables()).all()}


def test_camera_lifecycle_with_its_schedule(server: dict[str, Any]) -> None:  # noqa: F811
    c = client(server)
    status, _, cam = c.call(
        "POST",
        "/v1/cameras",
        {"name": "dock-1", "source_url": str(_clip(server)), "clip_seconds": 5},
    )
    assert status == 201, cam
    cid = cam["camera_id"]
    assert cam["state"] == "active" and cam["clip_seconds"] == 5
    assert _schedules()[cid]["enabled"] is True
    status, _, listing = c.call("GET", "/v1/cameras")
    assert status == 200 and cid in [x["camera_id"] for x in listing["cameras"]]
    status, _, got = c.call("PATCH", f"/v1/cameras/{cid}", {"state": "paused"})
    assert status == 200 and got["state"] == "paused"
    assert _schedules()[cid]["enabled"] is False
    status, _, got = c.call("PATCH", f"/v1/cameras/{cid}", {"state": "active", "clip_seconds": 4})
    assert status == 200 and got["state"] == "active" and got["clip_seconds"] == 4
    assert _schedules()[cid] == {**_schedules()[cid], "enabled": True, "every_s": 4.0}
    # Another tenant sees nothing and can change nothing.
    other = client(server, org="rival", project="x", role=Role.ADMIN)
    for method, body in (("GET", None), ("PATCH", {"state": "paused"}), ("DELETE", None)):
        status, _, _ = other.call(method, f"/v1/cameras/{cid}", body)
        assert status == 404, method
    assert other.call("GET", "/v1/cameras")[2]["cameras"] == []
    assert other.call("GET", f"/v1/events?camera_id={cid}")[0] == 404
    # A viewer may look but not change.
    viewer = client(server, role=Role.VIEWER)
    assert viewer.call("GET", f"/v1/cameras/{cid}")[0] == 200
    assert viewer.call("PATCH", f"/v1/cameras/{cid}", {"state": "paused"})[0] == 403
    assert c.call("DELETE", f"/v1/cameras/{cid}")[0] == 200
    assert c.call("GET", f"/v1/cameras/{cid}")[0] == 404
    assert cid not in _schedules()


def test_camera_requests_are_validated(server: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    c = client(server)
    clip = str(_clip(server))
    cases = [
        ({"name": "a", "source_url": clip, "kvs_stream_arn": KVS}, 422),
        ({"name": "a"}, 422),
        ({"name": "a", "kvs_stream_arn": "arn:aws:s3:::bucket"}, 422),
        ({"name": "a", "source_url": clip, "clip_seconds": 0.5}, 422),
        ({"name": "a", "source_url": clip, "extra": 1}, 422),
        ({"name": "a", "source_url": "ftp://cam.example/x"}, 422),
        ({"name": "a<script>", "source_url": clip}, 422),
    ]
    outside = tmp_path / "outside.mp4"
    shutil.copy(clip, outside)
    cases.append(({"name": "a", "source_url": str(outside)}, 404))  # not under the roots
    for body, want in cases:
        status, headers, problem = c.call("POST", "/v1/cameras", body)
        assert status == want, (body, status, problem)
        assert headers["content-type"].startswith("application/problem+json")
    assert c.call("GET", "/v1/cameras/cam_nope")[0] == 404
    assert c.call("GET", "/v1/cameras/not-a-camera")[0] in (404, 422)
    status, _, cam = c.call("POST", "/v1/cameras", {"name": "dup", "source_url": clip})
    assert status == 201
    assert c.call("POST", "/v1/cameras", {"name": "dup", "source_url": clip})[0] == 422
    c.call("DELETE", f"/v1/cameras/{cam['camera_id']}")


def test_camera_events_carry_wall_clock_times(server: dict[str, Any]) -> None:  # noqa: F811
    c = client(server)
    status, _, cam = c.call(
        "POST", "/v1/cameras", {"name": "yard", "source_url": str(_clip(server)), "clip_seconds": 2}
    )
    assert status == 201
    # The camera has been up for eight seconds: three 2-s windows have ended and settled.
    repo = CameraRepository(factory.tables())
    record = repo.get("acme/plaza", cam["camera_id"])
    past = record.origin - timedelta(seconds=8)
    repo.update(record, {"origin": past, "watermark": past})
    orch = factory.orchestrator()
    arn = orch.start_live_clip(LiveClipInput(tenant_id="acme/plaza", camera_id=cam["camera_id"]))
    assert orch.wait(arn, 120)["status"] == "SUCCEEDED"
    status, _, view = c.call("GET", f"/v1/cameras/{cam['camera_id']}")
    assert view["windows_done"] == 3 and view["gaps"] == 0
    status, _, body = c.call("GET", f"/v1/cameras/{cam['camera_id']}/windows")
    assert [w["status"] for w in body["windows"]] == ["done"] * 3
    status, _, events = c.call("GET", f"/v1/events?camera_id={cam['camera_id']}")
    assert status == 200 and events["events"]
    for e in events["events"]:
        assert e["camera_id"] == cam["camera_id"]
        assert e["start"].endswith("Z") and e["start"] <= e["end"]
        assert e["start"] >= past.isoformat().replace("+00:00", "Z")[:19]
