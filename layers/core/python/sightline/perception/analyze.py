"""A clip in, what happened in it out: events with times, and a description in words.

1. Frames are decoded and sampled at ``sample_fps`` by timestamp.
2. Every decoded frame (downscaled) feeds an OpenCV MOG2 background model, so motion is
   known at each sample without waiting for the detector.
3. The detector runs on the samples; detections are linked into tracks per category by
   box overlap and distance. A track counts once it is seen on two samples, or on one
   sample if it is confident or overlaps moving pixels: one-off false positives drop out.
4. Events are the intervals where confirmed tracks of a category are present (persons,
   vehicles, animals), where five or more people are present at once (crowd), and where
   pixels move that no person or vehicle explains (motion).
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sightline.models import DetectedEvent
from sightline.perception.detector import CenterNetDetector, Detection

logger = logging.getLogger(__name__)

CROWD_MIN = 5
MOTION_WIDTH = 320
MOTION_MIN_FRACTION = 0.004  # of the frame, after morphology
CONFIDENT = 0.5


@dataclass
class Track:
    category: str
    boxes: list[tuple[float, tuple[float, float, float, float]]] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    labels: Counter[str] = field(default_factory=Counter)
    colours: Counter[str] = field(default_factory=Counter)
    moving_hits: int = 0

    @property
    def first(self) -> float:
        return self.boxes[0][0]

    @property
    def last(self) -> float:
        return self.boxes[-1][0]

    def confirmed(self) -> bool:
        return len(self.boxes) >= 2 or max(self.scores) >= CONFIDENT or self.moving_hits > 0

    def displacement(self) -> tuple[float, float]:
        (_, a), (_, b) = self.boxes[0], self.boxes[-1]
        return ((b[0] + b[2]) / 2 - (a[0] + a[2]) / 2, (b[1] + b[3]) / 2 - (a[1] + a[3]) / 2)


@dataclass
class ClipAnalysis:
    description: str
    tags: list[str]
    events: list[DetectedEvent]
    counts: dict[str, int]
    frames_analysed: int
    sample_fps: float
    duration_s: float
    motion_fraction: float


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _link(
    tracks: list[Track],
    t: float,
    dets: list[Detection],
    gap_s: float,
    moving: list[bool],
    colours: list[str | None],
) -> None:
    """Greedy association of this sample's detections to open tracks of their category."""
    open_tracks = [tr for tr in tracks if t - tr.last <= gap_s]
    used: set[int] = set()
    pairs = []
    for di, d in enumerate(dets):
        for ti, tr in enumerate(open_tracks):
            if tr.category != d.category:
                continue
            prev = tr.boxes[-1][1]
            iou = _iou(prev, d.box)
            size = max(prev[2] - prev[0], prev[3] - prev[1], 1e-3)
            dist = math.dist(((prev[0] + prev[2]) / 2, (prev[1] + prev[3]) / 2), d.center)
            if iou > 0.1 or dist < 1.5 * size:
                pairs.append((iou - dist, di, ti))
    taken_tracks: set[int] = set()
    for _, di, ti in sorted(pairs, reverse=True):
        if di in used or ti in taken_tracks:
            continue
        used.add(di)
        taken_tracks.add(ti)
        _add(open_tracks[ti], t, dets[di], moving[di], colours[di])
    for di, d in enumerate(dets):
        if di not in used:
            tr = Track(category=d.category)
            _add(tr, t, d, moving[di], colours[di])
            tracks.append(tr)


def _add(tr: Track, t: float, d: Detection, moving: bool, colour: str | None) -> None:
    tr.boxes.append((t, d.box))
    tr.scores.append(d.score)
    tr.labels[d.label] += 1
    tr.moving_hits += int(moving)
    if colour:
        tr.colours[colour] += 1


def _intervals(times: list[float], *, gap_s: float) -> list[tuple[float, float]]:
    out: list[list[float]] = []
    for t in sorted(times):
        if out and t - out[-1][1] <= gap_s:
            out[-1][1] = t
        else:
            out.append([t, t])
    return [(a, b) for a, b in out]


def _where(box: tuple[float, float, float, float]) -> str:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    col = "left" if cx < 1 / 3 else "right" if cx > 2 / 3 else "centre"
    row = "top" if cy < 1 / 3 else "bottom" if cy > 2 / 3 else "middle"
    return "the centre" if (row, col) == ("middle", "centre") else f"the {row} {col}"


def _direction(dx: float, dy: float) -> str | None:
    if math.hypot(dx, dy) < 0.05:
        return None
    if abs(dx) >= abs(dy):
        return "left to right" if dx > 0 else "right to left"
    return "towards the camera" if dy > 0 else "away from the camera"


def _colour(frame_rgb: np.ndarray, box: tuple[float, float, float, float]) -> str | None:
    """The dominant colour of a vehicle box, only when it is clear."""
    import cv2

    h, w = frame_rgb.shape[:2]
    x1, y1, x2, y2 = (int(box[0] * w), int(box[1] * h), int(box[2] * w), int(box[3] * h))
    # The central part avoids road and background around the vehicle.
    cx1, cx2 = x1 + (x2 - x1) // 4, x2 - (x2 - x1) // 4
    cy1, cy2 = y1 + (y2 - y1) // 4, y2 - (y2 - y1) // 4
    patch = frame_rgb[cy1:cy2, cx1:cx2]
    if patch.size < 48:
        return None
    hsv = cv2.cvtColor(patch, cv2.COLOR_RGB2HSV).reshape(-1, 3).astype(np.float32)
    sat, val = np.median(hsv[:, 1]), np.median(hsv[:, 2])
    if sat < 50:
        return "white" if val > 190 else "black" if val < 60 else "grey" if val < 150 else "silver"
    hue = np.median(hsv[hsv[:, 1] >= 50][:, 0]) * 2  # OpenCV hue is 0..180
    names = [
        (15, "red"),
        (40, "orange"),
        (70, "yellow"),
        (170, "green"),
        (260, "blue"),
        (330, "purple"),
        (360, "red"),
    ]
    return next(name for limit, name in names if hue < limit)


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def analyze_clip(
    path: str | Path,
    *,
    detector: CenterNetDetector,
    sample_fps: float = 2.0,
    max_frames: int | None = None,
) -> ClipAnalysis:
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ValueError(f"cannot open {path}")
    fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
    if not 0 < fps < 1000:
        fps = 25.0
    mog = cv2.createBackgroundSubtractorMOG2(history=200, varThreshold=25, detectShadows=True)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    step = 1.0 / sample_fps
    next_t = 0.0
    index = 0
    samples: list[tuple[float, list[Detection], float, np.ndarray]] = []
    tracks: list[Track] = []
    motion_values: list[float] = []
    last_t = 0.0
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            t = index / fps
            index += 1
            last_t = t
            small = cv2.resize(
                frame, (MOTION_WIDTH, max(1, int(frame.shape[0] * MOTION_WIDTH / frame.shape[1])))
            )
            fg = mog.apply(small)
            if t + 1e-6 < next_t:
                continue
            next_t += step
            # Shadows (127) are not motion; open removes sensor noise.
            mask = cv2.morphologyEx((fg == 255).astype(np.uint8), cv2.MORPH_OPEN, kernel)
            warm = index > 3  # the background model needs a few frames
            fraction = float(mask.mean()) if warm else 0.0
            motion_values.append(fraction)
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            dets = [d for d in detector.detect(rgb) if d.area >= 0.0004]
            moving = []
            for d in dets:
                mh, mw = mask.shape
                x1, y1 = int(d.box[0] * mw), int(d.box[1] * mh)
                x2, y2 = max(x1 + 1, int(d.box[2] * mw)), max(y1 + 1, int(d.box[3] * mh))
                moving.append(warm and float(mask[y1:y2, x1:x2].mean()) > 0.08)
            colours = [_colour(rgb, d.box) if d.category == "vehicle" else None for d in dets]
            _link(tracks, t, dets, gap_s=2.5 * step, moving=moving, colours=colours)
            samples.append((t, dets, fraction, mask))
            if max_frames is not None and len(samples) >= max_frames:
                break
    finally:
        cap.release()
    duration = max(last_t + 1.0 / fps, 1.0 / fps)
    return _summarise(samples, tracks, duration=duration, step=step, sample_fps=sample_fps)


def _summarise(
    samples: list[tuple[float, list[Detection], float, np.ndarray]],
    tracks: list[Track],
    *,
    duration: float,
    step: float,
    sample_fps: float,
) -> ClipAnalysis:
    confirmed = [tr for tr in tracks if tr.confirmed()]
    keep = {id(b) for tr in confirmed for _, b in tr.boxes}
    events: list[DetectedEvent] = []
    counts: dict[str, int] = {}
    phrases: list[str] = []
    end_pad = step  # a sample stands for the time until the next one
    for category, noun, nouns in (
        ("person", "person", "people"),
        ("vehicle", "vehicle", "vehicles"),
        ("animal", "animal", "animals"),
    ):
        group = [tr for tr in confirmed if tr.category == category]
        if not group:
            continue
        per_sample = Counter()
        for tr in group:
            for t, _ in tr.boxes:
                per_sample[t] += 1
        counts[category] = max(per_sample.values())
        for a, b in _intervals([t for tr in group for t, _ in tr.boxes], gap_s=2.5 * step):
            inside = [tr for tr in group if tr.first <= b and tr.last >= a]
            peak = max(per_sample[t] for t in per_sample if a <= t <= b)
            boxes = np.array([box for tr in inside for t, box in tr.boxes if a <= t <= b])
            union = (
                float(boxes[:, 0].min()),
                float(boxes[:, 1].min()),
                float(boxes[:, 2].max()),
                float(boxes[:, 3].max()),
            )
            scores = sorted((s for tr in inside for s in tr.scores), reverse=True)
            confidence = float(np.mean(scores[: max(3, len(scores) // 3)]))
            desc = _group_phrase(inside, peak, noun, nouns)
            events.append(
                DetectedEvent(
                    type=category,
                    start_s=round(a, 2),
                    end_s=round(min(b + end_pad, duration), 2),
                    confidence=round(min(1.0, confidence + 0.1 * math.log1p(len(inside))), 3),
                    bbox=tuple(round(v, 4) for v in union),  # type: ignore[arg-type]
                    description=desc,
                )
            )
        phrases.append(_group_phrase(group, counts[category], noun, nouns))
    # Crowd: five or more people at once.
    person_times = Counter(t for tr in confirmed if tr.category == "person" for t, _ in tr.boxes)
    crowd_times = [t for t, n in person_times.items() if n >= CROWD_MIN]
    for a, b in _intervals(crowd_times, gap_s=2.5 * step):
        peak = max(n for t, n in person_times.items() if a <= t <= b)
        events.append(
            DetectedEvent(
                type="crowd",
                start_s=round(a, 2),
                end_s=round(min(b + end_pad, duration), 2),
                confidence=round(min(1.0, 0.5 + 0.05 * peak), 3),
                description=f"a crowd of up to {peak} people",
            )
        )
    # Motion no detection explains.
    unexplained = []
    for t, dets, fraction, mask in samples:
        if fraction < MOTION_MIN_FRACTION:
            continue
        covered = np.zeros_like(mask)
        mh, mw = mask.shape
        for d in dets:
            if id(d.box) in keep or d.category in ("person", "vehicle"):
                x1, y1 = int(d.box[0] * mw), int(d.box[1] * mh)
                covered[y1 : int(d.box[3] * mh) + 1, x1 : int(d.box[2] * mw) + 1] = 1
        rest = float((mask * (1 - covered)).mean())
        if rest >= MOTION_MIN_FRACTION:
            unexplained.append(t)
    for a, b in _intervals(unexplained, gap_s=1.5 * step):
        if b - a < step:  # one sample of flicker is not an event
            continue
        events.append(
            DetectedEvent(
                type="motion",
                start_s=round(a, 2),
                end_s=round(min(b + end_pad, duration), 2),
                confidence=0.5,
                description="movement that is not a detected person or vehicle",
            )
        )
    motion = float(np.mean([s[2] for s in samples])) if samples else 0.0
    if crowd_times:
        phrases.append("a crowd forms")
    if not phrases:
        description = (
            "A still, quiet scene: nothing moves in view."
            if not unexplained
            else "Something moves in view, but no person, vehicle or animal is recognised."
        )
    else:
        description = "; ".join(phrases) + "."
        description = description[0].upper() + description[1:]
        if unexplained:
            description += " There is also other movement in the scene."
    tags = sorted(
        {e.type for e in events}
        | {lab for tr in confirmed for lab in tr.labels if tr.category != "other"}
    )
    return ClipAnalysis(
        description=description,
        tags=tags,
        events=sorted(events, key=lambda e: (e.start_s, e.type)),
        counts=counts,
        frames_analysed=len(samples),
        sample_fps=sample_fps,
        duration_s=round(duration, 3),
        motion_fraction=round(motion, 5),
    )


def _group_phrase(group: list[Track], peak: int, noun: str, nouns: str) -> str:
    """E.g. "up to 4 people at once, walking right to left through the centre; some
    standing in the top left", or "a white car parked in the top right"."""
    moving = [tr for tr in group if _direction(*tr.displacement())]
    still = [tr for tr in group if not _direction(*tr.displacement())]
    head = (
        f"{_plural(peak, noun, nouns)}"
        if peak == 1 or len(group) == peak
        else f"up to {peak} {nouns} at once"
    )
    if noun == "vehicle":
        labels = Counter(tr.labels.most_common(1)[0][0] for tr in group)
        kinds = ", ".join(lab if n == 1 else f"{lab}s" for lab, n in labels.most_common())
        colours = Counter(c for tr in group for c in tr.colours.elements())
        colour = (
            colours.most_common(1)[0][0] if colours and len(labels) == 1 and peak == 1 else None
        )
        head = (
            f"a {colour} {kinds}" if colour else f"{_plural(peak, 'vehicle', 'vehicles')} ({kinds})"
        )
    parts = [head]
    if moving:
        dirs = Counter(_direction(*tr.displacement()) for tr in moving)
        where = Counter(_where(tr.boxes[len(tr.boxes) // 2][1]) for tr in moving)
        verb = "walking" if noun == "person" else "moving"
        lead = "" if not still else "mostly " if len(moving) >= len(still) else "some "
        parts.append(
            f"{lead}{verb} {dirs.most_common(1)[0][0]} through {where.most_common(1)[0][0]}"
        )
    if still:
        where = Counter(_where(tr.boxes[len(tr.boxes) // 2][1]) for tr in still)
        verb = "parked" if noun == "vehicle" else "standing" if noun == "person" else "staying"
        lead = "" if not moving else "others " if len(moving) >= len(still) else "mostly "
        parts.append(f"{lead}{verb} in {where.most_common(1)[0][0]}")
    return ", ".join(parts[:2]) + ("; " + parts[2] if len(parts) > 2 else "")
