"""`sightline cameras` and `sightline events --camera NAME --json` (the interface outside
checks use), over the local store with the heavy models faked."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from sightline import factory, handlers
from sightline.models import LiveClipInput
from sightline.services.cameras import CameraRepository
from sightline_local.cli import main
from tests.support.fakes import FakeCodec, FakeDescriber, HashEmbedder
from tests.support.media import synth_video


@pytest.fixture
def fakes(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    codec, describer = FakeCodec(factory.blobs()), FakeDescriber()
    monkeypatch.setattr(factory, "codec", lambda: codec)
    monkeypatch.setattr(factory, "describer", lambda: describer)
    monkeypatch.setattr(factory, "embedder", lambda: HashEmbedder())


def _json(capsys: pytest.CaptureFixture[str]) -> dict:
    return json.loads(capsys.readouterr().out)


def test_cameras_commands_and_camera_events(
    fakes: None, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    clip = synth_video(tmp_path / "c.mp4", seconds=4.0)
    assert main(["cameras", "add", "dock", "--source", str(clip), "--clip-seconds", "2",
                 "--json"]) == 0  # fmt: skip
    cam = _json(capsys)
    assert cam["name"] == "dock" and cam["state"] == "active" and cam["clip_seconds"] == 2
    assert "lease_owner" not in cam
    assert main(["cameras", "add", "dock", "--source", str(clip)]) == 1  # names are unique
    capsys.readouterr()
    assert main(["cameras", "add", "x", "--source", str(tmp_path / "missing.mp4")]) == 2
    capsys.readouterr()
    assert main(["cameras", "pause", "dock", "--json"]) == 0
    assert _json(capsys)["state"] == "paused"
    assert main(["cameras", "resume", cam["camera_id"], "--json"]) == 0
    assert _json(capsys)["state"] == "active"
    # Eight seconds of camera time have passed: three 2-s windows are due.
    repo = CameraRepository(factory.tables())
    record = repo.get(handlers.cameras().settings.default_tenant, cam["camera_id"])
    past = record.origin - timedelta(seconds=8)
    repo.update(record, {"origin": past, "watermark": past})
    orch = factory.orchestrator()
    arn = orch.start_live_clip(
        LiveClipInput(tenant_id=record.tenant_id, camera_id=record.camera_id)
    )
    assert orch.wait(arn, 120)["status"] == "SUCCEEDED"
    assert main(["cameras", "list", "--json"]) == 0
    (listed,) = _json(capsys)["cameras"]
    assert listed["windows_done"] == 3
    assert main(["events", "--camera", "dock", "--json"]) == 0
    events = _json(capsys)["events"]
    assert events
    for e in events:
        assert {"type", "start", "end", "confidence", "description"} <= set(e)
        assert e["start"].endswith("Z") and e["start"] <= e["end"]
    assert main(["cameras", "remove", "dock"]) == 0
    capsys.readouterr()
    assert main(["cameras", "list", "--json"]) == 0
    assert _json(capsys)["cameras"] == []
    assert main(["events", "--camera", "dock", "--json"]) == 1
