"""Small synthetic videos made with ffmpeg for tests that need no real footage."""

from __future__ import annotations

import subprocess
from pathlib import Path


def synth_video(
    path: Path,
    *,
    seconds: float = 3.0,
    size: str = "160x120",
    fps: int = 10,
    codec: str = "libx264",
    pattern: str = "testsrc2",
) -> Path:
    """A moving test pattern (``testsrc2``) or a static colour (``color=c=gray``)."""
    src = (
        f"{pattern}=size={size}:rate={fps}"
        if pattern != "static"
        else f"color=c=gray:size={size}:rate={fps}"
    )
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            src,
            "-t",
            str(seconds),
            "-c:v",
            codec,
            "-pix_fmt",
            "yuv420p",
            str(path),
        ],
        check=True,
    )
    return path


def unsupported_codec_video(path: Path, tmp: Path) -> Path:
    """An AVI whose video FourCC names a codec no decoder knows (the stream is unreadable)."""
    avi = synth_video(tmp / "mjpeg.avi", codec="mjpeg")
    data = bytearray(avi.read_bytes())
    # Both the stream header's handler and the BITMAPINFOHEADER compression carry "MJPG".
    count = data.count(b"MJPG")
    assert count >= 1, "expected an MJPG FourCC to replace"
    path.write_bytes(bytes(data.replace(b"MJPG", b"QQQQ")))
    return path


def truncated_mp4(path: Path, tmp: Path) -> Path:
    full = synth_video(tmp / "full.mp4", seconds=2)
    data = full.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    return path
