"""Frame reading for the codec: any ffmpeg-readable video -> uint8 RGB ``[T, H, W, 3]``.

ffmpeg (a pipe of raw ``rgb24`` frames) is the primary reader: it handles every container
the pipeline will see and converts with the stream's own colour matrix. OpenCV is the
fallback where no ffmpeg binary exists. Limits are checked *before* decoding everything,
so an over-sized upload fails fast with ``VideoLimitError`` (a ``ValueError``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import numpy as np

from sightline.errors import InvalidVideo

log = logging.getLogger(__name__)

DEFAULT_MAX_FRAMES = int(os.environ.get("SIGHTLINE_CODEC_MAX_FRAMES", "3000"))
DEFAULT_MAX_PIXELS = int(os.environ.get("SIGHTLINE_CODEC_MAX_PIXELS", str(3840 * 2160)))


class VideoDecodeError(InvalidVideo, ValueError):
    """The bytes are not a decodable video."""


class VideoLimitError(InvalidVideo, ValueError):
    """The video exceeds a configured limit (frame count or frame size)."""


@dataclass(frozen=True)
class VideoInfo:
    """What ffprobe (or OpenCV) says about the first video stream."""

    width: int
    height: int
    fps: float
    n_frames: int | None  # None when the container does not say
    codec: str | None = None
    duration: float | None = None  # seconds, from the container


def raw_video_input(width: int, height: int, fps: float, pix_fmt: str = "rgb24") -> list[str]:
    """ffmpeg input options for raw frames written to its stdin."""
    return [
        "-f",
        "rawvideo",
        "-pix_fmt",
        pix_fmt,
        "-s",
        f"{width}x{height}",
        "-r",
        f"{fps}",
        "-i",
        "-",
    ]


def _ffmpeg(name: str) -> str | None:
    return shutil.which(os.environ.get(f"SIGHTLINE_{name.upper()}", name))


def probe(path: str | Path) -> VideoInfo:
    """Size, frame rate and (if known) frame count of the first video stream."""
    ffprobe = _ffmpeg("ffprobe")
    if ffprobe is None:
        return _probe_cv2(path)
    cmd = [
        ffprobe,
        "-v",
        "error",
        "-select_streams",
        "v:0",
        "-show_entries",
        "stream=width,height,avg_frame_rate,r_frame_rate,nb_frames,codec_name:"
        "stream_side_data=rotation:format=duration",
        "-of",
        "json",
        str(path),
    ]
    res = subprocess.run(cmd, capture_output=True, check=False, timeout=60)
    try:
        doc = json.loads(res.stdout or b"{}")
    except json.JSONDecodeError:
        doc = {}
    streams = doc.get("streams") or []
    if res.returncode != 0 or not streams:
        raise VideoDecodeError(f"not a readable video: {res.stderr.decode(errors='replace')[:300]}")
    s = streams[0]
    w, h = int(s.get("width") or 0), int(s.get("height") or 0)
    rotation = 0
    for side in s.get("side_data_list") or []:
        rotation = int(side.get("rotation", 0) or 0)
    if rotation % 180:  # ffmpeg auto-rotates, so the frames come out transposed
        w, h = h, w
    fps = 0.0
    for key in ("avg_frame_rate", "r_frame_rate"):
        try:
            fps = float(Fraction(s.get(key) or "0/1"))
        except (ValueError, ZeroDivisionError):
            fps = 0.0
        if fps > 0:
            break
    nb = s.get("nb_frames")
    n = int(nb) if nb and str(nb).isdigit() and int(nb) > 0 else None
    if w <= 0 or h <= 0:
        raise VideoDecodeError("video stream has no size")
    try:
        duration: float | None = float((doc.get("format") or {})["duration"])
    except (KeyError, TypeError, ValueError):
        duration = None
    return VideoInfo(
        width=w, height=h, fps=fps or 25.0, n_frames=n, codec=s.get("codec_name"), duration=duration
    )


def _probe_cv2(path: str | Path) -> VideoInfo:
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise VideoDecodeError("not a readable video (OpenCV)")
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        return VideoInfo(
            width=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            height=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            fps=float(cap.get(cv2.CAP_PROP_FPS)) or 25.0,
            n_frames=n if n > 0 else None,
        )
    finally:
        cap.release()


def _check_size(info: VideoInfo, max_pixels: int) -> None:
    if info.width * info.height > max_pixels:
        raise VideoLimitError(
            f"frame size {info.width}x{info.height} exceeds the limit of {max_pixels} pixels"
        )


def read_frames(
    path: str | Path,
    *,
    start: int = 0,
    max_frames: int | None = None,
    limit_frames: int | None = DEFAULT_MAX_FRAMES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_voxels: int | None = None,
) -> tuple[np.ndarray, VideoInfo]:
    """Decode frames ``[start, start + max_frames)`` as uint8 RGB ``[T, H, W, 3]``.

    ``max_frames`` is a window the caller wants (no error if the video is longer);
    ``limit_frames`` is a hard cap: a video with more frames than that (after ``start``,
    within the window) raises ``VideoLimitError``. Frame size over ``max_pixels`` raises too,
    and ``max_voxels`` (frames x pixels, a memory bound) tightens ``limit_frames``.
    """
    info = probe(path)
    _check_size(info, max_pixels)
    if max_voxels is not None:
        by_memory = max(1, max_voxels // (info.width * info.height))
        limit_frames = by_memory if limit_frames is None else min(limit_frames, by_memory)
    # The cap applies unless the caller asks for a window no longer than the cap.
    cap = (
        limit_frames
        if max_frames is None or (limit_frames is not None and max_frames > limit_frames)
        else None
    )
    # Under a cap, read one frame more than allowed: its presence proves the video is over.
    # (The container's frame count is not trusted for this: AVI can count empty packets.)
    read_n = cap + 1 if cap is not None else max_frames
    ffmpeg = _ffmpeg("ffmpeg")
    frames = (
        _read_ffmpeg(ffmpeg, path, info, start, read_n)
        if ffmpeg
        else _read_cv2(path, info, start, read_n)
    )
    if cap is not None and len(frames) > cap:
        raise VideoLimitError(f"video has more than {cap} frames (the limit)")
    reached_end = max_frames is None or len(frames) < max_frames
    if max_frames is not None:
        frames = frames[:max_frames]
    total = start + len(frames)
    if (
        reached_end
        and info.duration
        and info.n_frames
        and abs(total - info.n_frames) > 0.05 * info.n_frames
    ):
        # The container's frame count was wrong (e.g. AVI with packed B-frames counts empty
        # packets): the true rate is the decoded frames per second of duration.
        info = replace(info, fps=total / info.duration, n_frames=total)
    return frames, info


def _read_ffmpeg(
    ffmpeg: str, path: str | Path, info: VideoInfo, start: int, n: int | None
) -> np.ndarray:
    vf = [f"select=gte(n\\,{start})"] if start else []
    cmd = [
        ffmpeg,
        "-nostdin",
        "-v",
        "error",
        "-i",
        str(path),
        "-map",
        "0:v:0",
        "-fps_mode",
        "passthrough",
        "-threads",
        "2",
    ]
    if vf:
        cmd += ["-vf", ",".join(vf)]
    if n is not None:
        cmd += ["-frames:v", str(n)]
    cmd += ["-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
    frame_bytes = info.width * info.height * 3
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    chunks: list[np.ndarray] = []
    assert proc.stdout is not None
    try:
        while n is None or len(chunks) < n:
            buf = proc.stdout.read(frame_bytes)
            if len(buf) < frame_bytes:
                break
            chunks.append(np.frombuffer(buf, np.uint8).reshape(info.height, info.width, 3))
    finally:
        proc.stdout.close()  # stops ffmpeg early (SIGPIPE) when we have enough frames
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    if not chunks:
        raise VideoDecodeError(f"ffmpeg decoded no frames: {err.decode(errors='replace')[:300]}")
    return np.stack(chunks)


def _read_cv2(path: str | Path, info: VideoInfo, start: int, n: int | None) -> np.ndarray:
    import cv2

    cap = cv2.VideoCapture(str(path))
    frames: list[np.ndarray] = []
    try:
        i = 0
        while n is None or len(frames) < n:
            ok, bgr = cap.read()
            if not ok:
                break
            if i >= start:
                frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            i += 1
    finally:
        cap.release()
    if not frames:
        raise VideoDecodeError("OpenCV decoded no frames")
    return np.stack(frames)


def read_frames_from_bytes(
    data: bytes, *, suffix: str = ".mp4", **kwargs: object
) -> tuple[np.ndarray, VideoInfo]:
    """``read_frames`` for in-memory video bytes.

    The bytes go to a private temporary directory that is removed on return (an MP4 whose
    index sits at the end cannot be decoded from a non-seekable pipe).
    """
    if not data:
        raise VideoDecodeError("empty request body")
    with tempfile.TemporaryDirectory(prefix="sightline-codec-") as tmp:
        path = Path(tmp) / f"input{suffix}"
        path.write_bytes(data)
        return read_frames(path, **kwargs)  # type: ignore[arg-type]
