"""ffprobe / ffmpeg wrappers: probing with clear rejections, and chunking."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import blake3

from sightline.errors import EmptyWindow, InvalidVideo

_PROBE_TIMEOUT_S = 60


@dataclass(frozen=True)
class MediaInfo:
    duration_s: float
    fps: float
    width: int
    height: int
    codec: str
    frames: int | None
    format_name: str


def file_hash(path: Path) -> str:
    """BLAKE3 of a file, streamed, as ``blake3:<hex>``."""
    h = blake3.blake3()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return f"blake3:{h.hexdigest()}"


def _rate(text: str | None) -> float:
    if not text or text in ("0/0", "0"):
        return 0.0
    num, _, den = text.partition("/")
    try:
        return float(num) / float(den or 1)
    except (ValueError, ZeroDivisionError):
        return 0.0


def probe(
    path: Path,
    *,
    ffprobe: str = "ffprobe",
    ffmpeg: str = "ffmpeg",
    max_bytes: int,
    max_seconds: float,
    max_pixels: int,
) -> MediaInfo:
    """Read container and stream metadata, and prove the first frame decodes.

    Raises InvalidVideo with a reason a user can act on.
    """
    size = path.stat().st_size
    if size == 0:
        raise InvalidVideo("the file is empty (0 bytes)")
    if size > max_bytes:
        raise InvalidVideo(f"the file is {size} bytes, over the {max_bytes}-byte limit")
    meta = _read_metadata(path, ffprobe=ffprobe, ffmpeg=ffmpeg)
    videos = [
        s
        for s in meta.get("streams", [])
        if s.get("codec_type") == "video" and s.get("disposition", {}).get("attached_pic", 0) == 0
    ]
    if not videos:
        raise InvalidVideo("the file has no video stream")
    stream = videos[0]
    width, height = int(stream.get("width") or 0), int(stream.get("height") or 0)
    if width <= 0 or height <= 0:
        raise InvalidVideo("the video stream has no frame size")
    if width * height > max_pixels:
        raise InvalidVideo(f"frame size {width}x{height} is over the {max_pixels}-pixel limit")
    fps = _rate(stream.get("avg_frame_rate")) or _rate(stream.get("r_frame_rate"))
    duration = float(stream.get("duration") or meta.get("format", {}).get("duration") or 0.0)
    frames = int(stream["nb_frames"]) if str(stream.get("nb_frames", "")).isdigit() else None
    if duration <= 0 and frames and fps > 0:
        duration = frames / fps
    if not math.isfinite(duration) or duration <= 0:
        raise InvalidVideo("the video has zero length")
    if duration > max_seconds:
        raise InvalidVideo(f"the video lasts {duration:.0f} s, over the {max_seconds:.0f}-s limit")
    if fps <= 0 or fps > 1000:
        raise InvalidVideo(f"the video has no usable frame rate ({stream.get('avg_frame_rate')})")
    # Metadata can lie (truncated files, unsupported codecs): decode one frame to be sure.
    try:
        dec = subprocess.run(
            [
                ffmpeg,
                "-v",
                "error",
                "-nostdin",
                "-i",
                str(path),
                "-map",
                "0:v:0",
                "-frames:v",
                "1",
                "-f",
                "null",
                "-",
            ],
            capture_output=True,
            timeout=_PROBE_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise InvalidVideo("decoding the first frame timed out") from exc
    err = dec.stderr.decode(errors="replace").strip()
    if dec.returncode != 0 or "Decoder (codec" in err or "no decoder" in err.lower():
        codec = stream.get("codec_name", "unknown")
        raise InvalidVideo(
            f"the video stream ({codec}) cannot be decoded: "
            f"{err.splitlines()[-1] if err else 'decode failed'}"
        )
    return MediaInfo(
        duration_s=duration,
        fps=fps,
        width=width,
        height=height,
        codec=str(stream.get("codec_name", "unknown")),
        frames=frames,
        format_name=str(meta.get("format", {}).get("format_name", "")),
    )


def _read_metadata(path: Path, *, ffprobe: str, ffmpeg: str) -> dict:
    """ffprobe's JSON; where no ffprobe binary exists (the Lambda media layer ships ffmpeg
    only), the same fields read from ``ffmpeg -i``."""
    if shutil.which(ffprobe) is None:
        return _metadata_from_ffmpeg(path, ffmpeg)
    try:
        out = subprocess.run(
            [
                ffprobe,
                "-v",
                "error",
                "-print_format",
                "json",
                "-show_format",
                "-show_streams",
                str(path),
            ],
            capture_output=True,
            timeout=_PROBE_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise InvalidVideo("probing the file timed out; it is not a readable video") from exc
    if out.returncode != 0:
        msg = out.stderr.decode(errors="replace").strip().splitlines()
        raise InvalidVideo(
            f"not a readable video container: {msg[-1] if msg else 'ffprobe failed'}"
        )
    return dict(json.loads(out.stdout or b"{}"))


_DURATION = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")
_VIDEO = re.compile(r"Stream #\d+:\d+[^:]*: Video: (\w+)(.*)")
_SIZE = re.compile(r", (\d{1,5})x(\d{1,5})[ ,\[]")
_FPS = re.compile(r", ([\d.]+) fps")
_TBR = re.compile(r", ([\d.]+k?) tbr")


def _metadata_from_ffmpeg(path: Path, ffmpeg: str) -> dict:
    try:
        out = subprocess.run(
            [ffmpeg, "-hide_banner", "-nostdin", "-i", str(path)],
            capture_output=True,
            timeout=_PROBE_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise InvalidVideo("probing the file timed out; it is not a readable video") from exc
    text = out.stderr.decode(errors="replace")
    if "Input #0" not in text:
        last = [line for line in text.strip().splitlines() if line.strip()]
        raise InvalidVideo(f"not a readable video container: {last[-1] if last else 'no input'}")
    streams: list[dict] = []
    for line in text.splitlines():
        if "Audio:" in line and "Stream #" in line:
            streams.append({"codec_type": "audio"})
        m = _VIDEO.search(line)
        if m is None:
            continue
        codec, rest = m.group(1), m.group(2)
        size, fps, tbr = _SIZE.search(rest + ","), _FPS.search(rest), _TBR.search(rest)
        # tbr is the frame rate ffmpeg will use; "fps" can be a container's field rate.
        rate = (
            tbr.group(1) if tbr and not tbr.group(1).endswith("k") else fps.group(1) if fps else "0"
        )
        streams.append(
            {
                "codec_type": "video",
                "codec_name": codec,
                "width": int(size.group(1)) if size else 0,
                "height": int(size.group(2)) if size else 0,
                "avg_frame_rate": f"{rate}/1",
                "disposition": {"attached_pic": int("attached pic" in rest)},
            }
        )
    d = _DURATION.search(text)
    duration = (int(d.group(1)) * 3600 + int(d.group(2)) * 60 + float(d.group(3))) if d else 0.0
    return {"streams": streams, "format": {"duration": duration, "format_name": ""}}


def plan_windows(duration_s: float, chunk_s: float, overlap_s: float) -> list[tuple[float, float]]:
    """Chunk windows covering [0, duration); a tail shorter than 1 s joins the previous chunk."""
    step = chunk_s - overlap_s
    if step <= 0:
        raise ValueError("chunk overlap must be shorter than the chunk")
    windows: list[tuple[float, float]] = []
    t0 = 0.0
    while t0 < duration_s - 1e-6:
        t1 = min(t0 + chunk_s, duration_s)
        windows.append((round(t0, 3), round(t1, 3)))
        if t1 >= duration_s:
            break
        t0 += step
    if len(windows) > 1 and windows[-1][1] - windows[-1][0] < 1.0:
        last = windows.pop()
        windows[-1] = (windows[-1][0], last[1])
    return windows


def h264_mp4_args(*, threads: int = 2, crf: int = 16) -> list[str]:
    """ffmpeg output options of every chunk: the first video stream only, H.264 yuv420p with
    even dimensions, MP4 with the index up front."""
    return [
        "-map",
        "0:v:0",
        "-an",
        "-sn",
        "-dn",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        str(crf),
        "-pix_fmt",
        "yuv420p",
        "-vf",
        "pad=ceil(iw/2)*2:ceil(ih/2)*2",
        "-threads",
        str(threads),
        "-movflags",
        "+faststart",
    ]


def cut_chunk(
    src: Path, dest: Path, t0: float, t1: float, *, ffmpeg: str = "ffmpeg", threads: int = 2
) -> None:
    """Cut [t0, t1) into an H.264 MP4 with exact boundaries (re-encoded, near-lossless)."""
    cmd = [
        ffmpeg,
        "-v",
        "error",
        "-nostdin",
        "-y",
        "-ss",
        f"{t0:.3f}",
        "-i",
        str(src),
        "-t",
        f"{t1 - t0:.3f}",
        *h264_mp4_args(threads=threads, crf=16),
        str(dest),
    ]
    res = subprocess.run(cmd, capture_output=True, timeout=max(120, 10 * (t1 - t0)), check=False)
    if res.returncode != 0 or not dest.is_file() or dest.stat().st_size == 0:
        err = res.stderr.decode(errors="replace").strip().splitlines()
        raise InvalidVideo(f"cutting {t0:.1f}-{t1:.1f}s failed: {err[-1] if err else 'no output'}")
    # ffmpeg writes a file even when the window holds no frame (a sparse recording): an MP4
    # without a video stream is not a chunk.
    check = subprocess.run(
        [ffmpeg, "-v", "error", "-nostdin", "-i", str(dest), "-map", "0:v:0", "-frames:v", "1",
         "-f", "null", "-"],
        capture_output=True,
        timeout=60,
        check=False,
    )  # fmt: skip
    if check.returncode != 0:
        dest.unlink(missing_ok=True)
        raise EmptyWindow(f"no frame between {t0:.1f}s and {t1:.1f}s")
