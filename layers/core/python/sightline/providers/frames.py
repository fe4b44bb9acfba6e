"""Frame sampling for image-capable models: N frames evenly spaced over a clip, as JPEG.

Each frame is resized so its long side is at most ``max_side`` pixels (Bedrock's
Converse accepts images up to 8000 px, but Anthropic models downscale anything over
1568 px on the long side, so larger frames only cost tokens) and re-encoded until its
JPEG is under ``max_bytes`` (the Converse image limit is 5 MB per image; the default
leaves a wide margin).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from sightline.errors import InvalidVideo

CONVERSE_IMAGE_LIMIT_BYTES = 5 * 1024 * 1024
MAX_LONG_SIDE = 1568


@dataclass(frozen=True)
class Frame:
    index: int  # frame number in the clip
    t_s: float  # seconds from the start of the clip
    width: int
    height: int
    jpeg: bytes


def frame_positions(frame_count: int, n: int) -> list[int]:
    """``n`` frame numbers evenly spaced over ``frame_count`` frames (centres of n equal bins)."""
    if frame_count <= 0 or n <= 0:
        return []
    n = min(n, frame_count)
    return sorted({min(frame_count - 1, int((i + 0.5) * frame_count / n)) for i in range(n)})


def encode_jpeg(
    image: np.ndarray,
    *,
    max_side: int = MAX_LONG_SIDE,
    max_bytes: int = 3 * 1024 * 1024,
    quality: int = 85,
) -> tuple[bytes, int, int]:
    """Resize (never enlarge) to ``max_side`` and JPEG-encode under ``max_bytes``."""
    if max_side < 16:
        raise ValueError("max_side must be at least 16")
    max_bytes = min(max_bytes, CONVERSE_IMAGE_LIMIT_BYTES)
    h, w = image.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    while True:
        tw, th = max(1, round(w * scale)), max(1, round(h * scale))
        img = (
            image
            if (tw, th) == (w, h)
            else cv2.resize(image, (tw, th), interpolation=cv2.INTER_AREA)
        )
        for q in (quality, 70, 50):
            ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q])
            if not ok:
                raise InvalidVideo("a frame could not be encoded as JPEG")
            if buf.nbytes <= max_bytes:
                return buf.tobytes(), tw, th
        if max(tw, th) <= 16:
            raise InvalidVideo("a frame does not fit the image size limit")
        scale *= 0.75


def sample_frames(
    clip: Path,
    n: int,
    *,
    max_side: int = MAX_LONG_SIDE,
    max_bytes: int = 3 * 1024 * 1024,
    quality: int = 85,
) -> list[Frame]:
    """Read ``n`` frames evenly spaced over ``clip`` (decoded sequentially: seeking in
    short H.264 chunks is unreliable and a 10-s chunk decodes in well under a second)."""
    cap = cv2.VideoCapture(str(clip))
    if not cap.isOpened():
        raise InvalidVideo(f"cannot open {clip.name} to sample frames")
    try:
        fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if count <= 0:  # container without a frame count: count by decoding
            while cap.grab():
                count += 1
            cap.release()
            cap = cv2.VideoCapture(str(clip))
        wanted = frame_positions(count, n)
        frames: list[Frame] = []
        i = 0
        for pos in wanted:
            while i < pos:
                if not cap.grab():
                    break
                i += 1
            ok, image = cap.read()
            if not ok:
                break
            i += 1
            jpeg, w, h = encode_jpeg(image, max_side=max_side, max_bytes=max_bytes, quality=quality)
            t = round(pos / fps, 3) if fps > 0 else 0.0
            frames.append(Frame(index=pos, t_s=t, width=w, height=h, jpeg=jpeg))
    finally:
        cap.release()
    if not frames:
        raise InvalidVideo(f"no frames could be read from {clip.name}")
    return frames
