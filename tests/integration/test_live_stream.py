"""A camera that pulls a real network stream: ffmpeg sends the plaza clip as MPEG-TS over
loopback UDP, the recorder cuts one-second fragments with wall-clock times, the scheduler
fires live_clip, and a killed recorder (an outage) becomes a recorded gap; the camera
then resumes. Heavy models faked; about 20 s of real time."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest

from sightline import factory, handlers
from sightline.config import get_settings
from sightline.models import WindowStatus
from sightline.services.cameras import CameraRepository
from sightline_local.live import ScheduleRunner
from tests.support.fakes import FakeCodec, FakeDescriber, HashEmbedder

TENANT = "acme/gate"


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Sender:
    """The clip looped in real time to udp://127.0.0.1:PORT, keyframe every second."""

    def __init__(self, clip: Path) -> None:
        self.clip = clip
        self.url = f"udp://127.0.0.1:{_free_udp_port()}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["ffmpeg", "-v", "error", "-nostdin", "-re", "-stream_loop", "-1", "-i",
             str(self.clip), "-an", "-vf", "scale=384:288", "-c:v", "libx264", "-preset",
             "ultrafast", "-g", "10", "-f", "mpegts", f"{self.url}?pkt_size=1316"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def stop(self) -> None:
        if self.proc:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def sender(vtest: Path) -> Iterator[Sender]:
    s = Sender(vtest)
    s.start()
    yield s
    s.stop()


@pytest.fixture
def fakes(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    codec, describer = FakeCodec(factory.blobs()), FakeDescriber()
    monkeypatch.setattr(factory, "codec", lambda: codec)
    monkeypatch.setattr(factory, "describer", lambda: describer)
    monkeypatch.setattr(factory, "embedder", lambda: HashEmbedder())
    monkeypatch.setenv("SIGHTLINE_LIVE_SETTLE_SECONDS", "1.5")
    get_settings.cache_clear()
    for cached in (handlers.pipeline, handlers.live, handlers.cameras):
        cached.cache_clear()


def _wait_for(predicate, timeout: float, runner: ScheduleRunner) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runner.tick()
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError("timed out")


def test_stream_camera_records_processes_and_survives_outages(fakes: None, sender: Sender) -> None:
    cam = handlers.cameras().create(TENANT, "gate", source_url=sender.url, clip_seconds=2.0)
    repo = CameraRepository(factory.tables())
    runner = ScheduleRunner()

    def windows() -> list:  # type: ignore[type-arg]
        return repo.list_windows(TENANT, cam.camera_id)

    def done_after(n: int) -> bool:
        return sum(w.status == WindowStatus.DONE for w in windows()[n:]) >= 2

    try:
        _wait_for(lambda: done_after(0), 40, runner)
        # The camera goes dark for five seconds, then streams again.
        sender.stop()
        time.sleep(5)
        sender.start()
        mark = len(windows())
        _wait_for(lambda: done_after(mark), 60, runner)
        # The recorder itself dies; it is restarted and the camera carries on.
        recorder = runner.recorder(cam.camera_id)
        assert recorder is not None
        recorder.kill_ffmpeg()
        mark = len(windows())
        _wait_for(lambda: recorder.restarts >= 1 and done_after(mark), 60, runner)
    finally:
        runner.stop()
    ws = windows()
    assert any(w.status == WindowStatus.GAP for w in ws), [w.status for w in ws]
    assert [w.index for w in ws] == list(range(len(ws)))
    for a, b in pairwise(ws):
        assert a.t1 == b.t0
    assert ws[0].t0 == cam.origin
    manifests = handlers.pipeline().repo.list_manifests(TENANT, cam.camera_id)
    assert sorted(m.manifest_id for m in manifests) == sorted(
        w.manifest_id for w in ws if w.status == WindowStatus.DONE
    )


def test_live_lag_benchmark_reports_per_event_lag(fakes: None, tmp_path: Path) -> None:
    from sightline_local import bench_live
    from tests.support.media import synth_video

    clip = synth_video(tmp_path / "cam.mp4", seconds=3.0)
    report = bench_live.run(clip, clip_seconds=2.0, windows=2, timeout_s=90)
    assert report["windows"] == 2 and report["windows_done"] == 2
    assert report["events"] > 0
    # An event cannot be searchable before its window ended and settled.
    assert report["lag_min_s"] >= get_settings().live_settle_seconds
    assert report["lag_max_s"] >= report["lag_p50_s"] >= report["lag_min_s"]
    assert {"encode", "describe", "index"} <= set(report["step_mean_s"])
