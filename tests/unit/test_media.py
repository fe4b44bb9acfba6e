from __future__ import annotations

from pathlib import Path

import pytest

from sightline.errors import InvalidVideo
from sightline.services import media
from tests.support.media import synth_video, truncated_mp4, unsupported_codec_video

LIMITS = {"max_bytes": 10**9, "max_seconds": 3600.0, "max_pixels": 4096 * 2160}


def test_plan_windows_cover_the_video_without_gaps() -> None:
    assert media.plan_windows(25.0, 10.0, 0.0) == [(0.0, 10.0), (10.0, 20.0), (20.0, 25.0)]
    # a tail under 1 s joins the previous chunk
    assert media.plan_windows(20.4, 10.0, 0.0) == [(0.0, 10.0), (10.0, 20.4)]
    assert media.plan_windows(15.0, 10.0, 2.0) == [(0.0, 10.0), (8.0, 15.0)]
    assert media.plan_windows(3.0, 10.0, 0.0) == [(0.0, 3.0)]
    with pytest.raises(ValueError):
        media.plan_windows(10.0, 5.0, 5.0)


def test_probe_reads_a_real_video(tmp_path: Path) -> None:
    info = media.probe(synth_video(tmp_path / "ok.mp4", seconds=2.0), **LIMITS)
    assert (info.width, info.height) == (160, 120)
    assert info.fps == pytest.approx(10.0)
    assert info.duration_s == pytest.approx(2.0, abs=0.15)
    assert info.codec == "h264"


@pytest.mark.parametrize(
    "case,reason",
    [
        ("empty", "empty"),
        ("text", "not a readable video"),
        ("truncated", "not a readable video"),
        ("unsupported", "cannot be decoded"),
        ("audio", "no video stream"),
    ],
)
def test_probe_rejects_bad_input_with_a_reason(tmp_path: Path, case: str, reason: str) -> None:
    path = tmp_path / "bad.mp4"
    if case == "empty":
        path.write_bytes(b"")
    elif case == "text":
        path.write_text("this is not a video\n" * 50)
    elif case == "truncated":
        truncated_mp4(path, tmp_path)
    elif case == "unsupported":
        path = unsupported_codec_video(tmp_path / "bad.avi", tmp_path)
    elif case == "audio":
        import subprocess

        path = tmp_path / "tone.m4a"
        subprocess.run(
            ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=d=1", str(path)], check=True
        )
    with pytest.raises(InvalidVideo, match=reason):
        media.probe(path, **LIMITS)


def test_probe_enforces_limits(tmp_path: Path) -> None:
    video = synth_video(tmp_path / "ok.mp4", seconds=2.0)
    with pytest.raises(InvalidVideo, match="byte limit"):
        media.probe(video, max_bytes=100, max_seconds=3600, max_pixels=10**8)
    with pytest.raises(InvalidVideo, match="s limit"):
        media.probe(video, max_bytes=10**9, max_seconds=1.0, max_pixels=10**8)
    with pytest.raises(InvalidVideo, match="pixel limit"):
        media.probe(video, max_bytes=10**9, max_seconds=3600, max_pixels=100 * 100)


def test_cut_chunk_has_exact_boundaries(tmp_path: Path) -> None:
    src = synth_video(tmp_path / "src.mp4", seconds=5.0)
    out = tmp_path / "c.mp4"
    media.cut_chunk(src, out, 2.0, 4.0)
    info = media.probe(out, **LIMITS)
    assert info.duration_s == pytest.approx(2.0, abs=0.15)


@pytest.mark.parametrize("ffprobe", ["ffprobe", "no-such-ffprobe"])
def test_probe_with_and_without_ffprobe_agree(tmp_path: Path, ffprobe: str) -> None:
    # Lambda's media layer ships ffmpeg only: the fallback reads the same fields.
    video = synth_video(tmp_path / "ok.mp4", seconds=2.0, size="320x240", fps=25)
    info = media.probe(video, ffprobe=ffprobe, **LIMITS)
    assert (info.width, info.height, info.codec) == (320, 240, "h264")
    assert info.fps == pytest.approx(25.0)
    assert info.duration_s == pytest.approx(2.0, abs=0.15)
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video\n" * 20)
    with pytest.raises(InvalidVideo, match="not a readable video"):
        media.probe(bad, ffprobe=ffprobe, **LIMITS)
    audio = tmp_path / "tone.m4a"
    import subprocess

    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=d=1", str(audio)], check=True
    )
    with pytest.raises(InvalidVideo, match="no video stream"):
        media.probe(audio, ffprobe=ffprobe, **LIMITS)
