"""The real ASL files under moto's interpreter, handlers in-process, heavy models faked:
the wiring of ingest_video and process_chunk, retries and the failure path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sightline import factory, handlers
from sightline.models import VideoStatus
from sightline.services.ingest import IngestService
from sightline.services.repository import Repository
from tests.support.fakes import FakeCodec, FakeDescriber, HashEmbedder
from tests.support.media import synth_video, truncated_mp4, unsupported_codec_video

TENANT = "acme/plaza"


@pytest.fixture
def service(home: Path, monkeypatch: pytest.MonkeyPatch) -> IngestService:
    codec, describer = FakeCodec(factory.blobs()), FakeDescriber()
    monkeypatch.setattr(factory, "codec", lambda: codec)
    monkeypatch.setattr(factory, "describer", lambda: describer)
    monkeypatch.setattr(factory, "embedder", lambda: HashEmbedder())
    monkeypatch.setenv("SIGHTLINE_CHUNK_SECONDS", "2")
    from sightline.config import get_settings

    get_settings.cache_clear()
    handlers.pipeline.cache_clear()
    yield IngestService(factory.blobs(), Repository(factory.tables()), factory.orchestrator())
    handlers.pipeline.cache_clear()


def _ingest(service: IngestService, path: Path) -> dict[str, Any]:
    sub = service.submit_file(TENANT, path)
    assert sub.execution_id
    outcome = service.orchestrator.wait(sub.execution_id, timeout_s=120)
    video = service.repo.get_video(TENANT, sub.video.video_id)
    return {"outcome": outcome, "video": video, "sub": sub}


def test_ingest_video_runs_every_chunk_through_process_chunk(
    service: IngestService, tmp_path: Path
) -> None:
    r = _ingest(service, synth_video(tmp_path / "v.mp4", seconds=5.0))
    assert r["outcome"]["status"] == "SUCCEEDED", r["outcome"]
    video = r["video"]
    assert video.status == VideoStatus.COMPLETED
    assert video.chunks_total == 3 and video.chunks_done == 3  # 2 s + 2 s + 1 s
    assert len(service.repo.list_manifests(TENANT, video.video_id)) == 3
    assert len(service.repo.list_events(TENANT, video.video_id)) == 3
    assert factory.index().count(TENANT) == 3
    # The same bytes again: nothing new is created, and the existing video is returned
    again = service.submit_file(TENANT, tmp_path / "v.mp4")
    assert again.reused and again.video.video_id == video.video_id
    # A forced re-run (a redrive) of the whole pipeline duplicates nothing either
    rerun = service.start(service.repo.get_video(TENANT, video.video_id))
    assert service.orchestrator.wait(rerun.execution_id, 120)["status"] == "SUCCEEDED"
    assert len(service.repo.list_manifests(TENANT, video.video_id)) == 3
    assert len(service.repo.list_events(TENANT, video.video_id)) == 3
    assert factory.index().count(TENANT) == 3


@pytest.mark.parametrize("case", ["empty", "text", "truncated", "unsupported"])
def test_bad_input_ends_failed_with_a_reason_and_leaves_nothing(
    service: IngestService, tmp_path: Path, case: str
) -> None:
    path = tmp_path / "bad.mp4"
    if case == "empty":
        path.write_bytes(b"")
    elif case == "text":
        path.write_text("hello, I am not a video\n" * 100)
    elif case == "truncated":
        truncated_mp4(path, tmp_path)
    else:
        path = unsupported_codec_video(tmp_path / "bad.avi", tmp_path)
    r = _ingest(service, path)
    assert r["outcome"]["status"] == "FAILED"
    video = r["video"]
    assert video.status == VideoStatus.FAILED
    assert video.failure_reason and video.failure_reason.startswith("InvalidVideo: ")
    vid = video.video_id
    assert service.repo.list_manifests(TENANT, vid) == []
    assert service.repo.list_events(TENANT, vid) == []
    assert factory.index().count(TENANT) == 0
    assert factory.blobs().list_keys(f"{TENANT}/videos/{vid}/derived/") == []


def test_a_failing_chunk_fails_the_video_and_cleans_up(
    service: IngestService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = FakeCodec(factory.blobs(), fail_with="endpoint crashed")
    monkeypatch.setattr(factory, "codec", lambda: failing)
    handlers.pipeline.cache_clear()
    r = _ingest(service, synth_video(tmp_path / "v.mp4", seconds=3.0))
    assert r["video"].status == VideoStatus.FAILED
    assert (r["video"].failure_reason or "").startswith("CodecError: ")
    assert "endpoint crashed" in (r["video"].failure_reason or "")
    assert factory.index().count(TENANT) == 0
    assert service.repo.list_events(TENANT, r["video"].video_id) == []


def test_windows_without_a_frame_make_no_chunks(service: IngestService, tmp_path: Path) -> None:
    import subprocess

    # One frame every ten seconds for 30 s, cut into 2-s chunks (15 windows).
    path = tmp_path / "sparse.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
         "testsrc2=size=160x120:rate=1/10", "-t", "30", "-c:v", "libx264",
         "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )  # fmt: skip
    r = _ingest(service, path)
    assert r["outcome"]["status"] == "SUCCEEDED", r["outcome"]
    video = r["video"]
    manifests = service.repo.list_manifests(TENANT, video.video_id)
    # Windows ffmpeg finds no frame in are skipped; the ones that keep a frame are chunks.
    assert video.chunks_total == len(manifests) and 3 <= len(manifests) < 15
    assert {0.0, 10.0, 20.0} <= {m.t0 for m in manifests}
