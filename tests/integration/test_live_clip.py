"""live_clip, the real ASL under moto's interpreter, over a simulated camera playing a real
clip: windows are contiguous, every second is taken exactly once, an outage is a recorded
gap, catch-up is bounded, and a restart resumes from the watermark. Heavy models faked."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from sightline import factory, handlers
from sightline.config import get_settings
from sightline.models import Camera, CameraWindow, LiveClipInput, WindowStatus
from sightline.services import cameras as cameras_module
from sightline.services.cameras import CameraRepository
from tests.support.fakes import FakeCodec, FakeDescriber, HashEmbedder

TENANT = "acme/dock"
CLIP_S = 2.0


class Clock:
    """The wall clock the plan step sees (moved by the test instead of waiting)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture(scope="module")
def camera_clip(vtest: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seven seconds of the real plaza clip, the file the simulated camera loops."""
    out = tmp_path_factory.mktemp("cam") / "plaza7.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(vtest), "-t", "7", "-an", "-c:v", "libx264",
         "-preset", "ultrafast", "-crf", "23", str(out)],
        check=True,
    )  # fmt: skip
    return out


@pytest.fixture
def live(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    codec, describer = FakeCodec(factory.blobs()), FakeDescriber()
    monkeypatch.setattr(factory, "codec", lambda: codec)
    monkeypatch.setattr(factory, "describer", lambda: describer)
    monkeypatch.setattr(factory, "embedder", lambda: HashEmbedder())
    monkeypatch.setenv("SIGHTLINE_LIVE_SETTLE_SECONDS", "1")
    monkeypatch.setenv("SIGHTLINE_LIVE_MAX_WINDOWS", "4")
    get_settings.cache_clear()
    handlers.pipeline.cache_clear()
    handlers.live.cache_clear()
    handlers.cameras.cache_clear()
    clock = Clock()
    monkeypatch.setattr(cameras_module, "utcnow", clock)
    # The looping-file camera serves media up to "now" by the same clock.
    real = factory.clip_source

    def source(camera: Camera):  # type: ignore[no-untyped-def]
        src = real(camera)
        src.clock = clock
        return src

    monkeypatch.setattr(factory, "clip_source", source)
    handlers.live.cache_clear()
    yield clock
    handlers.live.cache_clear()
    handlers.pipeline.cache_clear()


def _add(clip: Path, clock: Clock) -> Camera:
    cam = handlers.cameras().create(TENANT, "dock-1", source_url=str(clip), clip_seconds=CLIP_S)
    # The camera was connected at the clock's "now".
    repo = CameraRepository(factory.tables())
    return repo.update(cam, {"origin": clock.now, "watermark": clock.now})


def _run(camera: Camera) -> dict:
    orch = factory.orchestrator()
    arn = orch.start_live_clip(LiveClipInput(tenant_id=TENANT, camera_id=camera.camera_id))
    out = orch.wait(arn, timeout_s=120)
    assert out["status"] == "SUCCEEDED", out
    return out


def _windows(camera: Camera) -> list[CameraWindow]:
    return CameraRepository(factory.tables()).list_windows(TENANT, camera.camera_id)


def _assert_contiguous(camera: Camera, windows: list[CameraWindow]) -> None:
    assert [w.index for w in windows] == list(range(len(windows)))
    assert windows[0].t0 == camera.origin
    for a, b in pairwise(windows):
        assert a.t1 == b.t0, f"window {b.index} does not start where {a.index} ended"
    now = CameraRepository(factory.tables()).get(TENANT, camera.camera_id)
    assert now.watermark == windows[-1].t1


def test_windows_are_contiguous_and_each_second_is_processed_once(
    live: Clock, camera_clip: Path
) -> None:
    cam = _add(camera_clip, live)
    live.advance(2 * CLIP_S + 1.2)  # two windows ended and settled
    _run(cam)
    assert len(_windows(cam)) == 2
    _run(cam)  # nothing new is due: a second run takes nothing twice
    assert len(_windows(cam)) == 2
    live.advance(3 * CLIP_S)  # wraps past the clip's end: the file loops
    _run(cam)
    windows = _windows(cam)
    assert len(windows) == 5 and all(w.status == WindowStatus.DONE for w in windows)
    _assert_contiguous(cam, windows)
    manifests = handlers.pipeline().repo.list_manifests(TENANT, cam.camera_id)
    assert [m.manifest_id for m in manifests] == [w.manifest_id for w in windows]
    assert [(m.t0, m.t1) for m in manifests] == [(i * CLIP_S, (i + 1) * CLIP_S) for i in range(5)]
    assert factory.index().count(TENANT) == 5
    doc = factory.index().get(TENANT, windows[2].manifest_id)
    assert doc.camera_id == cam.camera_id
    assert (doc.wall_t0, doc.wall_t1) == (windows[2].t0, windows[2].t1)
    events = handlers.pipeline().repo.list_events(TENANT, cam.camera_id)
    assert events and all(e.camera_id == cam.camera_id for e in events)
    for e in events:  # wall-clock times inside their window
        w = windows[e.chunk]
        assert e.wall_t0 is not None and w.t0 <= e.wall_t0 <= e.wall_t1 <= w.t1


def test_a_source_outage_is_a_recorded_gap_and_the_camera_resumes(
    live: Clock, camera_clip: Path, tmp_path: Path
) -> None:
    clip = tmp_path / "cam.mp4"
    clip.write_bytes(camera_clip.read_bytes())
    cam = _add(clip, live)
    live.advance(CLIP_S + 1.1)
    _run(cam)
    clip.rename(tmp_path / "away.mp4")  # the camera goes dark
    live.advance(2 * CLIP_S)
    _run(cam)
    (tmp_path / "away.mp4").rename(clip)  # and comes back
    live.advance(CLIP_S)
    _run(cam)
    windows = _windows(cam)
    assert [w.status for w in windows] == [
        WindowStatus.DONE,
        WindowStatus.GAP,
        WindowStatus.GAP,
        WindowStatus.DONE,
    ]
    assert windows[1].reason == "no media in the window"
    _assert_contiguous(cam, windows)
    state = CameraRepository(factory.tables()).get(TENANT, cam.camera_id)
    assert (state.windows_done, state.gaps, state.failed) == (2, 2, 0)
    # Gaps make no chunks: manifests exist only for the processed windows.
    manifests = handlers.pipeline().repo.list_manifests(TENANT, cam.camera_id)
    assert [m.manifest_id for m in manifests] == [windows[0].manifest_id, windows[3].manifest_id]


def test_catch_up_after_downtime_is_bounded_per_run(live: Clock, camera_clip: Path) -> None:
    cam = _add(camera_clip, live)
    live.advance(6 * CLIP_S + 1.1)  # six windows due, four taken per run
    _run(cam)
    assert len(_windows(cam)) == 4
    _run(cam)
    windows = _windows(cam)
    assert len(windows) == 6 and all(w.status == WindowStatus.DONE for w in windows)
    _assert_contiguous(cam, windows)


def test_media_older_than_retention_is_one_gap(
    live: Clock, camera_clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cam = _add(camera_clip, live)
    monkeypatch.setenv("SIGHTLINE_LIVE_RETENTION_SECONDS", "10")
    get_settings.cache_clear()
    handlers.live.cache_clear()
    live.advance(60)
    _run(cam)
    windows = _windows(cam)
    assert windows[0].status == WindowStatus.GAP
    assert windows[0].reason == "media older than the stream's retention"
    assert all(w.status == WindowStatus.DONE for w in windows[1:])
    _assert_contiguous(cam, windows)
    assert (windows[0].t1 - windows[0].t0).total_seconds() % CLIP_S == 0


def test_a_restart_resumes_from_the_watermark(
    live: Clock, camera_clip: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cam = _add(camera_clip, live)
    live.advance(2 * CLIP_S + 1.1)
    _run(cam)
    # The process dies mid-run: its lease stays behind on the record.
    repo = CameraRepository(factory.tables())
    held = repo.update(
        repo.get(TENANT, cam.camera_id),
        {"lease_owner": "arn:dead-execution", "lease_until": live.now + timedelta(minutes=15)},
    )
    assert held.lease_owner
    # A new process over the same SIGHTLINE_HOME: stores reopened from the files.
    for cached in (factory.tables, factory.blobs, factory.scheduler, handlers.live):
        cached.cache_clear()
    from sightline_local.live import ScheduleRunner

    runner = ScheduleRunner()
    assert runner.release_stale_leases() == 1
    live.advance(2 * CLIP_S)
    _run(cam)
    windows = _windows(cam)
    assert len(windows) == 4
    _assert_contiguous(cam, windows)


def test_a_replayed_commit_changes_nothing(live: Clock, camera_clip: Path) -> None:
    from sightline.errors import Conflict
    from sightline.models import LiveCommitInput, LiveFetchOutput, LiveWindow

    cam = _add(camera_clip, live)
    live.advance(CLIP_S + 1.1)
    _run(cam)
    (w,) = _windows(cam)
    window = LiveWindow(tenant_id=TENANT, camera_id=cam.camera_id, index=0, t0=w.t0, t1=w.t1)
    again = handlers.live().commit(
        LiveCommitInput(window=window, fetch=LiveFetchOutput(has_media=False))
    )
    assert again.status == WindowStatus.DONE  # the record stands; no second commit
    assert CameraRepository(factory.tables()).get(TENANT, cam.camera_id).gaps == 0
    # A window that does not start at the watermark is refused, not committed.
    ahead = LiveWindow(
        tenant_id=TENANT,
        camera_id=cam.camera_id,
        index=5,
        t0=w.t1 + timedelta(seconds=10),
        t1=w.t1 + timedelta(seconds=12),
    )
    with pytest.raises(Conflict):
        handlers.live().commit(LiveCommitInput(window=ahead))
