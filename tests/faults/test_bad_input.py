"""A corpus of bad input, generated with ffmpeg at test time, through the whole pipeline
(the real ASL, the heavy models faked): each file ends in a correct result or a clear
failed status, within a time limit, and nothing else in the store changes.

Already covered elsewhere and not repeated here: an empty file, text, a truncated MP4
and an unknown codec (tests/integration/test_asl_pipeline.py), probe limits and an
audio-only file at the probe (tests/unit/test_media.py).
"""

from __future__ import annotations

import os
import struct
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import blake3
import pytest

from sightline import factory, keys
from sightline.models import VideoStatus
from sightline.services.ingest import IngestService
from sightline_local import faults
from tests.faults.conftest import settle
from tests.faults.stack import TENANT, fake_stack, fingerprint, short_clip

FFMPEG = ("ffmpeg", "-v", "error", "-nostdin", "-y")


def _ffmpeg(*args: str | bytes) -> None:
    subprocess.run([*FFMPEG, *args], check=True, capture_output=True)


def _testsrc(path: Path, seconds: float = 3.0, size: str = "64x48", *extra: str) -> Path:
    _ffmpeg(
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=size={size}:rate=10",
        "-t",
        str(seconds),
        *extra,
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        str(path),
    )
    return path


def _sparse(path: Path, seconds: int) -> Path:
    """One frame per minute for ``seconds`` (a long surveillance export)."""
    _ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "color=c=gray:size=64x48:rate=1/60",
        "-t",
        str(seconds),
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        str(path),
    )
    return path


def random_behind_mp4_header(d: Path) -> Path:
    ftyp = struct.pack(">I", 24) + b"ftypisom" + struct.pack(">I", 512) + b"isomiso2"
    p = d / "random.mp4"
    p.write_bytes(ftyp + os.urandom(64 * 1024))
    return p


def y4m(d: Path, w: int, h: int) -> Path:
    """A YUV4MPEG2 header declaring ``w``x``h`` (the frame data is cut short)."""
    p = d / f"huge-{w}x{h}.y4m"
    p.write_bytes(f"YUV4MPEG2 W{w} H{h} F10:1 Ip A1:1 C420jpeg\nFRAME\n".encode() + b"\x80" * 64)
    return p


def zero_frame_rate(d: Path) -> Path:
    """Every sample lasts 0 ticks (stts deltas zeroed): the container's rate is 1/0."""
    data = bytearray(_testsrc(d / "src.mp4").read_bytes())
    at = data.find(b"stts")
    for k in range(struct.unpack(">I", data[at + 8 : at + 12])[0]):
        data[at + 16 + 8 * k : at + 20 + 8 * k] = b"\0\0\0\0"
    p = d / "zero-rate.mp4"
    p.write_bytes(bytes(data))
    return p


def variable_frame_rate(d: Path) -> Path:
    return _testsrc(
        d / "vfr.mp4",
        3.0,
        "64x48",
        "-vf",
        "setpts='if(lt(N,10),N*0.1,1+(N-10)*0.37)/TB'",
        "-fps_mode",
        "vfr",
    )


def rotated(d: Path) -> Path:
    src = _testsrc(d / "src.mp4", 3.0, "64x48")
    p = d / "rotated.mp4"
    _ffmpeg("-i", str(src), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(p))
    return p


def audio_only(d: Path) -> Path:
    p = d / "tone.m4a"
    _ffmpeg("-f", "lavfi", "-i", "sine=d=2", str(p))
    return p


def no_keyframe_index(d: Path) -> Path:
    """An MP4 whose sync-sample table lists no keyframe at all."""
    data = bytearray(_testsrc(d / "src.mp4").read_bytes())
    at = data.find(b"stss")
    data[at + 8 : at + 12] = b"\0\0\0\0"
    p = d / "no-stss.mp4"
    p.write_bytes(bytes(data))
    return p


def no_keyframe_stream(d: Path) -> Path:
    """A raw H.264 stream with its only IDR frame removed (P-frames only)."""
    raw = d / "one-idr.h264"
    _testsrc(
        raw,
        3.0,
        "64x48",
        "-x264-params",
        "keyint=1000:scenecut=0",
        "-bsf:v",
        "h264_mp4toannexb",
        "-f",
        "h264",
    )
    data = raw.read_bytes()
    starts = [i for i in range(len(data) - 3) if data[i : i + 3] == b"\0\0\1"]
    out = b"".join(
        data[s : (starts[n + 1] if n + 1 < len(starts) else len(data))]
        for n, s in enumerate(starts)
        if data[s + 3] & 0x1F != 5
    )
    p = d / "no-idr.h264"
    p.write_bytes(out)
    return p


def sparse_over_the_limit(d: Path) -> Path:
    return _sparse(d / "sparse-5h.mp4", 5 * 3600)  # the limit is 4 h (max_video_seconds)


def sparse_ten_minutes(d: Path) -> Path:
    return _sparse(d / "sparse-10min.mp4", 600)


def non_utf8_metadata(d: Path) -> Path:
    p = d / "metadata.mp4"
    _ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=64x48:rate=10",
        "-t",
        "2",
        b"-metadata",
        b"title=caf\xe9 \xff\xfe",
        b"-metadata:s:v",
        b"handler_name=\xc3\x28",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        str(p),
    )
    return p


def non_utf8_name(d: Path) -> Path:
    src = _testsrc(d / "src.mp4", 2.0)
    p = Path(os.fsdecode(bytes(d) + b"/vid\xe9o-\xff.mp4"))
    src.rename(p)
    return p


# (case, builder, expected status, what the failure reason must say)
CASES: list[tuple[str, Callable[[Path], Path], str, str]] = [
    ("random-bytes-behind-mp4-header", random_behind_mp4_header, "failed", "not a readable"),
    ("declared-16384x16384", lambda d: y4m(d, 16384, 16384), "failed", "not a readable"),
    ("declared-8192x8192", lambda d: y4m(d, 8192, 8192), "failed", "pixel limit"),
    ("zero-frame-rate", zero_frame_rate, "completed", ""),
    ("variable-frame-rate", variable_frame_rate, "completed", ""),
    ("rotated-display-matrix", rotated, "completed", ""),
    ("audio-only", audio_only, "failed", "no video stream"),
    ("no-keyframe-in-index", no_keyframe_index, "completed", ""),
    ("no-keyframe-in-stream", no_keyframe_stream, "failed", "zero length"),
    ("sparse-5h-over-the-limit", sparse_over_the_limit, "failed", "s limit"),
    ("sparse-10min-1-frame-a-minute", sparse_ten_minutes, "completed", ""),
    ("non-utf8-metadata", non_utf8_metadata, "completed", ""),
    ("non-utf8-file-name", non_utf8_name, "completed", ""),
]


@pytest.fixture(scope="module")
def resident(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One store for the whole corpus, holding a completed video that must not change."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback as callback,
    )

    mp = pytest.MonkeyPatch()
    mp.setattr(callback, "_DELAY_SECONDS_SYNC_CONDITION_CHECK", 0.05)
    base = tmp_path_factory.mktemp("bad-input")
    faults.PLAN.clear()
    with fake_stack(base / "home") as service:
        sub = service.submit_file(TENANT, short_clip(base))
        assert sub.execution_id
        assert service.orchestrator.wait(sub.execution_id, 120)["status"] == "SUCCEEDED"
        settle()
        yield {"service": service, "video_id": sub.video.video_id, "base": base}
    mp.undo()


def _others(video_id: str) -> dict[str, str]:
    """Every blob outside ``video_id``'s own folder, by digest (codec transfers excluded)."""
    store = factory.blobs()
    own = f"{TENANT}/videos/{video_id}/"
    return {
        k: blake3.blake3(store.get_bytes(k)).hexdigest()
        for k in store.list_keys("")
        if not k.startswith((own, "codec/"))
    }


@pytest.mark.parametrize(("case", "build", "expected", "reason"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_ends_cleanly_and_changes_nothing_else(
    case: str,
    build: Callable[[Path], Path],
    expected: str,
    reason: str,
    resident: dict[str, Any],
    fault_summary: dict[str, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service: IngestService = resident["service"]
    work = resident["base"] / case
    work.mkdir()
    path = build(work)
    if case.startswith("sparse-10min"):
        monkeypatch.setenv("SIGHTLINE_CHUNK_SECONDS", "120")  # 5 chunks of 2 frames
    from sightline import handlers
    from sightline.config import get_settings

    get_settings.cache_clear()
    handlers.pipeline.cache_clear()
    fault_summary["bad_inputs"] += 1
    resident_before = fingerprint(resident["video_id"])
    docs_before = factory.index().count(TENANT)
    # When the file is ingested
    sub = service.submit_file(TENANT, path)
    vid = sub.video.video_id
    before = _others(vid)
    assert sub.execution_id
    outcome = service.orchestrator.wait(sub.execution_id, timeout_s=120)
    settle()
    # Then it ended (no hang), as expected, with a reason a user can act on
    assert outcome["status"] in ("SUCCEEDED", "FAILED"), outcome
    video = service.repo.get_video(TENANT, vid)
    assert video.status.value == expected, (video.status, video.failure_reason)
    manifests = service.repo.list_manifests(TENANT, vid)
    if video.status == VideoStatus.FAILED:
        assert (video.failure_reason or "").startswith("InvalidVideo: ")
        assert reason in (video.failure_reason or ""), video.failure_reason
        assert manifests == [] and service.repo.list_events(TENANT, vid) == []
        assert factory.blobs().list_keys(keys.derived_prefix(TENANT, vid)) == []
        assert factory.index().count(TENANT) == docs_before
    else:
        assert video.chunks_total == video.chunks_done == len(manifests) > 0
        assert factory.index().count(TENANT) == docs_before + len(manifests)
    # And nothing else in the store changed
    assert _others(vid) == before
    assert fingerprint(resident["video_id"]) == resident_before
    fault_summary["bad_inputs_handled"] += 1


def test_cli_ingest_of_a_non_utf8_file_name_prints_and_completes(
    stack: IngestService, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sightline_local.cli import main

    path = non_utf8_name(tmp_path)
    assert main(["--tenant", TENANT, "ingest", str(path)]) == 0
    out = capsys.readouterr().out
    assert "completed" in out and "vid\\udce9o" in out, out


def test_a_chunk_window_without_a_frame_is_not_stored_as_an_empty_chunk(tmp_path: Path) -> None:
    from sightline.errors import InvalidVideo
    from sightline.services import media

    src = _sparse(tmp_path / "sparse.mp4", 600)
    out = tmp_path / "chunk.mp4"
    try:
        media.cut_chunk(src, out, 130.0, 140.0)  # no frame between minute 2 and 3
    except InvalidVideo:
        return  # refusing the window is a clear answer too
    limits = {"max_bytes": 10**9, "max_seconds": 3600.0, "max_pixels": 10**8}
    assert media.probe(out, **limits).frames != 0
