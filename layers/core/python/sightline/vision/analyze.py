"""Chunk analysis: what is visible in a clip, when, where and how it moves.

Pipeline per clip: sample frames by timestamp -> CenterNet candidates (low floor) -> MOG2
foreground over the sampled frames -> fuse (strong detections stand alone; weak ones need
foreground support) -> per-category tracks, confirmed by persistence -> events per contiguous
presence interval, a crowd event, motion that no detection explains -> a plain-language
description.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from pydantic import BaseModel, Field

from sightline.vision.coco import plural
from sightline.vision.detector import CenterNetDetector, Detection, iou
from sightline.vision.motion import MotionDetector, MotionResult
from sightline.vision.tracker import Track, Tracker, TrackInput

logger = logging.getLogger(__name__)

Box = tuple[float, float, float, float]

# Observation level: candidates below the floor never count; between WEAK and STRONG they
# need foreground support (moving). Track level: a track is kept when its best scores reach
# TRACK_MIN or when it was seen moving in at least two samples. Measured on vtest.avi: people
# score 0.45-0.8, static clutter 0.3-0.38 as "person"; the parked van and car 0.33-0.45 as
# truck/car (so the observation level for vehicles is lower, keeping their tracks unbroken),
# a row of cones reaches 0.37 as "car" in 2 of 159 samples (rejected at track level), a
# cloth on the lawn 0.55+ as "sheep" (animals need 0.7 or movement).
CANDIDATE_FLOOR = 0.2
STRONG = {"person": 0.45, "vehicle": 0.3, "animal": 0.55}
WEAK = {"person": 0.22, "vehicle": 0.25, "animal": 0.35}
TRACK_MIN = {"person": 0.45, "vehicle": 0.38, "animal": 0.7}
MIN_SUPPORT = 0.12  # fraction of a weak detection's box that must be foreground
MIN_BOX_AREA = 5e-5  # normalized; smaller boxes are below what the model resolves reliably
CROWD_MIN = 5  # people at once for a "crowd" event
MOTION_MIN_AREA = 0.001  # normalized blob area for an unexplained-motion track
SUMMARY_CATEGORIES = ("person", "vehicle", "animal")


class DetectedEvent(BaseModel):
    """Something visible over an interval of the clip."""

    type: str  # "person" | "vehicle" | "animal" | "crowd" | "motion"
    start_s: float  # seconds from the start of the analysed clip
    end_s: float
    confidence: float = Field(ge=0.0, le=1.0)
    bbox: Box | None  # normalized x1,y1,x2,y2: union of the boxes involved
    description: str
    track_count: int = 1


class ClipAnalysis(BaseModel):
    """Everything the local describer says about one clip."""

    description: str
    tags: list[str]
    events: list[DetectedEvent]
    counts: dict[str, int]  # max simultaneous count per category
    frames_analysed: int
    sample_fps: float
    duration_s: float  # duration of the analysed part of the clip
    motion_fraction: float  # mean foreground fraction over the sampled frames


@dataclass
class _Sample:
    t: float
    candidates: list[Detection]
    colours: list[str | None]
    small: np.ndarray
    accepted: list[tuple[Detection, float, str | None]] = field(default_factory=list)


@functools.lru_cache(maxsize=2)
def default_detector(intra_op_threads: int = 1) -> CenterNetDetector:
    """A process-wide detector on the packaged model (loading takes ~0.2 s)."""
    return CenterNetDetector(intra_op_threads=intra_op_threads)


class VideoSampler:
    """Iterate ``(t_seconds, frame_bgr)`` every ``1/sample_fps`` seconds of a video.

    Frames are chosen by timestamp: the first frame at or after each target time. Times come
    from the decoder's per-frame timestamps, relative to the first frame; where those are
    missing or go backwards, from the frame rate. (Container frame rates lie: the overhead
    clip's AVI says 50 fps and 682 frames, its stream has 341 frames at 25 fps.) After a full
    iteration :attr:`duration_s` is the decoded duration; after stopping at ``max_frames`` it
    is the sampled span.
    """

    def __init__(self, path: str | Path, sample_fps: float, max_frames: int | None = None):
        """Open nothing yet; the file is read when iterated."""
        self.path = Path(path)
        self.sample_fps = sample_fps
        self.max_frames = max_frames
        self.duration_s = 0.0

    def __iter__(self) -> Iterator[tuple[float, np.ndarray]]:
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            raise ValueError(f"cannot open video {self.path}")
        try:
            yield from self._read(cap)
        finally:
            cap.release()

    def _read(self, cap: cv2.VideoCapture) -> Iterator[tuple[float, np.ndarray]]:
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if not math.isfinite(fps) or fps <= 0 or fps > 1000:
            fps = 25.0  # unknown rate: only used where the decoder gives no timestamps
        frame_dt = 1.0 / fps
        step = 1.0 / self.sample_fps
        next_t, taken, t_prev, t0 = 0.0, 0, -1.0, None
        while self.max_frames is None or taken < self.max_frames:
            if not cap.grab():
                break
            pos = float(cap.get(cv2.CAP_PROP_POS_MSEC) or 0.0) / 1000.0
            if t0 is None:
                t0 = pos
            t = pos - t0
            if not math.isfinite(t) or t <= t_prev or t - t_prev > 10 * frame_dt + 5.0:
                t = t_prev + frame_dt if t_prev >= 0 else 0.0
            elif t_prev >= 0:
                frame_dt = 0.8 * frame_dt + 0.2 * (t - t_prev)  # follow the real rate
            t_prev = t
            self.duration_s = t + frame_dt
            # Half a frame of slack so that 10 fps sampled at 2 fps takes frames 0, 5, 10...
            if t + 0.5 * frame_dt < next_t:
                continue
            ok, frame = cap.retrieve()
            if not ok or frame is None:
                continue
            if frame.ndim == 2:
                frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
            yield t, frame
            taken += 1
            while next_t <= t + 0.5 * frame_dt:
                next_t += step
        if self.max_frames is not None and taken >= self.max_frames:
            self.duration_s = t_prev + step if t_prev >= 0 else 0.0


# --------------------------------------------------------------------------- colour


def dominant_colour(frame_bgr: np.ndarray, box: Sequence[float]) -> str | None:
    """Plain colour name of the object in ``box`` (normalized), or None when not reliable.

    The central part of the box is used (the edges are background). Achromatic pixels decide
    white/grey/black; otherwise one hue bin must hold at least half of the coloured pixels.
    """
    h, w = frame_bgr.shape[:2]
    x1, y1, x2, y2 = box[0] * w, box[1] * h, box[2] * w, box[3] * h
    if x2 - x1 < 20 or y2 - y1 < 20:
        return None  # too few pixels to say anything
    mx, my = 0.2 * (x2 - x1), 0.2 * (y2 - y1)
    crop = frame_bgr[int(y1 + my) : int(y2 - my), int(x1 + mx) : int(x2 - mx)]
    if crop.size == 0:
        return None
    hsv = cv2.cvtColor(crop, cv2.COLOR_BGR2HSV).reshape(-1, 3).astype(np.int32)
    hue, sat, val = hsv[:, 0], hsv[:, 1], hsv[:, 2]
    grey = (sat < 60) | (val < 50)
    if grey.mean() >= 0.6:
        v = float(np.median(val[grey]))
        if v >= 165:
            return "white"
        if v < 65:
            return "black"
        return "grey"
    coloured = hue[~grey]
    bins = [("red", 0, 8), ("orange", 8, 20), ("yellow", 20, 34), ("green", 34, 85),
            ("blue", 85, 130), ("purple", 130, 160), ("red", 160, 180)]  # fmt: skip
    votes: Counter[str] = Counter()
    for name, lo, hi in bins:
        votes[name] += int(((coloured >= lo) & (coloured < hi)).sum())
    name, count = votes.most_common(1)[0]
    return name if count >= 0.5 * len(coloured) else None


def _track_colour(track: Track) -> str | None:
    names = [p.extra.get("colour") for p in track.points]
    votes = Counter(n for n in names if n)
    if not votes:
        return None
    name, count = votes.most_common(1)[0]
    return name if count >= 0.6 * len(names) else None


# --------------------------------------------------------------------------- wording


def region_of(box: Sequence[float]) -> str:
    """Where a box's centre lies: ``"top left"``, ``"centre"``, ``"bottom right"``..."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    horiz = "left" if cx < 1 / 3 else "right" if cx > 2 / 3 else "centre"
    vert = "top" if cy < 1 / 3 else "bottom" if cy > 2 / 3 else "middle"
    if vert == "middle":
        return horiz
    return f"{vert} {horiz}"


def _where(tracks: Sequence[Track]) -> str:
    regions = Counter(region_of(t.median_box()) for t in tracks)
    if len(regions) == 1:
        return f"in the {next(iter(regions))} of the frame"
    horiz = {r.split()[-1] for r in regions}
    if len(horiz) == 3 and len(tracks) >= 3:
        return "across the frame"
    top, n = regions.most_common(1)[0]
    if n >= 0.5 * len(tracks):
        return f"mostly in the {top} of the frame"
    return "in " + " and ".join(f"the {r}" for r, _ in regions.most_common(2)) + " of the frame"


def _movement_breakdown(tracks: Sequence[Track], noun: str = "walking") -> str:
    """``"5 walking right to left, 2 standing and 3 moving otherwise"`` (top three groups)."""
    dirs = Counter(t.direction() for t in tracks)
    parts = []
    shown = dirs.most_common(3)
    for d, n in shown:
        parts.append(f"{n} standing" if d == "stationary" else f"{n} {noun} {d}")
    rest = len(tracks) - sum(n for _, n in shown)
    if rest:
        parts.append(f"{rest} moving in other directions")
    return _join(parts)


def _people_phrase(tracks: Sequence[Track]) -> str:
    dirs = {t.direction() for t in tracks}
    if len(dirs) == 1:
        d = next(iter(dirs))
        verb = "standing" if d == "stationary" else f"walking {d}"
        return f"{plural('person', len(tracks))} {verb}"
    return f"{plural('person', len(tracks))} ({_movement_breakdown(tracks)})"


def _vehicle_phrase(track: Track) -> str:
    colour = _track_colour(track)
    label = track.label
    noun = f"{colour} {label}" if colour else label
    article = "an" if noun[0] in "aeiou" else "a"
    d = track.direction()
    state = "parked" if d == "stationary" else f"moving {d}"
    return f"{article} {noun} {state} in the {region_of(track.median_box())}"


def _animal_phrase(tracks: Sequence[Track]) -> str:
    labels = Counter(t.label for t in tracks)
    return ", ".join(plural(lbl, n) for lbl, n in labels.most_common())


def _join(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _fmt_t(t: float) -> str:
    return f"{t:.1f} s"


# --------------------------------------------------------------------------- fusion


def _accept(det: Detection, motion: MotionResult) -> bool:
    """Is this candidate a real object? Strong scores stand alone; weak ones must be moving."""
    if det.category not in STRONG or det.area < MIN_BOX_AREA:
        return False
    if det.score >= STRONG[det.category]:
        return True
    if det.score < WEAK[det.category] or motion.unreliable:
        return False
    return motion.local_support(det.box) >= MIN_SUPPORT


def _moving_samples(track: Track) -> int:
    return sum(p.extra.get("support", 0.0) >= MIN_SUPPORT for p in track.points)


def _real_tracks(tracks: Sequence[Track], min_hits: int) -> list[Track]:
    """Keep tracks that persist and are either confident or seen moving.

    Confident tracks (best scores >= TRACK_MIN) stand alone, except animals, which must also
    move (a static "sheep" is a cloth on the lawn more often than a sheep). Weak tracks must
    be foreground in two samples, actually travel, and not duplicate a confident track of the
    same category (the model often adds a weak box on part of a person or group).
    """
    persistent = [t for t in tracks if t.hits >= min_hits]
    strong = []
    for t in persistent:
        if t.top_score < TRACK_MIN[t.category]:
            continue
        if t.category == "animal" and t.direction() == "stationary" and _moving_samples(t) < 2:
            continue
        strong.append(t)
    real = list(strong)
    for t in persistent:
        if t in strong or _moving_samples(t) < 2 or t.direction() == "stationary":
            continue
        if any(_duplicates(t, s) for s in strong if s.category == t.category):
            continue
        real.append(t)
    return real


def _duplicates(weak: Track, strong: Track) -> bool:
    """Does ``weak`` sit on ``strong`` for most of the samples they share?"""
    at = {p.t: p.box for p in strong.points}
    shared = [(p.box, at[p.t]) for p in weak.points if p.t in at]
    if not shared:
        return False
    hits = sum(iou(a, b) > 0.3 or _inside(a, b) for a, b in shared)
    return hits >= 0.5 * len(shared)


def _track_confidence(track: Track) -> float:
    # Score of the best sightings, raised by persistence (a track seen 5+ times is real).
    return float(min(0.99, 0.7 * track.top_score + 0.3 * min(1.0, track.hits / 5)))


def _intervals(
    times: Sequence[float], present: Sequence[bool], max_gap_s: float
) -> list[tuple[int, int]]:
    """Runs of sample indices where ``present``, bridging gaps up to ``max_gap_s``."""
    runs: list[tuple[int, int]] = []
    for k, p in enumerate(present):
        if not p:
            continue
        if runs and times[k] - times[runs[-1][1]] <= max_gap_s + 1e-6:
            runs[-1] = (runs[-1][0], k)
        else:
            runs.append((k, k))
    return runs


def _union(boxes: Sequence[Sequence[float]]) -> Box:
    arr = np.array(boxes, dtype=float)
    return (
        round(float(arr[:, 0].min()), 4),
        round(float(arr[:, 1].min()), 4),
        round(float(arr[:, 2].max()), 4),
        round(float(arr[:, 3].max()), 4),
    )


def _active(track: Track, t: float) -> bool:
    return track.first_s - 1e-6 <= t <= track.last_s + 1e-6


def analyze_clip(
    path: str | Path,
    *,
    detector: CenterNetDetector | None = None,
    sample_fps: float = 2.0,
    max_frames: int | None = None,
) -> ClipAnalysis:
    """Analyse a video clip: people, vehicles, animals, crowds and motion, with times.

    Frames are sampled every ``1/sample_fps`` s (at most ``max_frames`` of them); event
    times have that resolution. Detections are confirmed by persistence (two samples, or one
    when only one frame is analysed) and, when weak, by foreground motion. Parked vehicles
    count as present. Raises ``ValueError`` when the file cannot be decoded.
    """
    if sample_fps <= 0:
        raise ValueError("sample_fps must be positive")
    det = detector or default_detector()
    mover = MotionDetector()
    t0 = time.perf_counter()
    samples: list[_Sample] = []
    sampler = VideoSampler(path, sample_fps, max_frames)
    for t, bgr in sampler:
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        cands = [d for d in det.detect(rgb, min_score=CANDIDATE_FLOOR) if d.category in STRONG]
        colours = [dominant_colour(bgr, d.box) if d.category == "vehicle" else None for d in cands]
        samples.append(_Sample(t=t, candidates=cands, colours=colours, small=mover.prepare(bgr)))
    if not samples:
        raise ValueError(f"no frames could be decoded from {path}")
    t_detect = time.perf_counter() - t0

    motions = mover.analyze([s.small for s in samples], prepared=True)
    times = [s.t for s in samples]
    step = 1.0 / sample_fps
    duration = max(sampler.duration_s, samples[-1].t)

    tracker = Tracker()
    motion_tracker = Tracker(iou_threshold=0.1, max_distance=1.5, max_misses=1)
    for s, m in zip(samples, motions, strict=True):
        obs: list[TrackInput] = []
        for d, colour in zip(s.candidates, s.colours, strict=True):
            if _accept(d, m):
                support = m.local_support(d.box)
                s.accepted.append((d, support, colour))
                obs.append(
                    TrackInput(
                        box=d.box,
                        score=d.score,
                        label=d.label,
                        category=d.category,
                        extra={"colour": colour, "support": support},
                    )
                )
        tracker.update(s.t, obs)
        # Foreground that no candidate (even a rejected weak one) explains.
        explained = [d.box for d in s.candidates]
        unexplained = []
        if not m.unreliable:
            for blob, area in zip(m.blobs, m.blob_areas, strict=True):
                if area < MOTION_MIN_AREA:
                    continue
                if any(iou(blob, b) > 0.05 or _inside(blob, b) for b in explained):
                    continue
                unexplained.append(
                    TrackInput(
                        box=blob, score=min(1.0, area * 50), label="motion", category="motion"
                    )
                )
        motion_tracker.update(s.t, unexplained)

    min_hits = 2 if len(samples) >= 2 else 1
    tracks = _real_tracks(tracker.tracks, min_hits)
    by_cat: dict[str, list[Track]] = {c: [t for t in tracks if t.category == c] for c in STRONG}
    motion_tracks = [t for t in motion_tracker.confirmed(max(min_hits, 2))]

    events: list[DetectedEvent] = []
    counts: dict[str, int] = {}
    max_gap = max(1.0, 2.0 * step)
    for cat in SUMMARY_CATEGORIES:
        cat_tracks = by_cat[cat]
        per_sample = [sum(_active(tr, t) for tr in cat_tracks) for t in times]
        counts[cat] = max(per_sample, default=0)
        for a, b in _intervals(times, [n > 0 for n in per_sample], max_gap):
            start, end = times[a], times[b]
            members = [tr for tr in cat_tracks if tr.first_s <= end and tr.last_s >= start]
            events.append(
                DetectedEvent(
                    type=cat,
                    start_s=round(start, 2),
                    end_s=round(end, 2),
                    confidence=round(max(_track_confidence(tr) for tr in members), 3),
                    bbox=_union([tr.union_box() for tr in members]),
                    description=_event_description(cat, members, max(per_sample[a : b + 1])),
                    track_count=len(members),
                )
            )
        if cat == "person":
            for a, b in _intervals(times, [n >= CROWD_MIN for n in per_sample], max_gap):
                if b - a + 1 < min_hits:
                    continue  # one sample with five people is a coincidence, not a crowd
                start, end = times[a], times[b]
                members = [tr for tr in cat_tracks if tr.first_s <= end and tr.last_s >= start]
                peak = max(per_sample[a : b + 1])
                events.append(
                    DetectedEvent(
                        type="crowd",
                        start_s=round(start, 2),
                        end_s=round(end, 2),
                        confidence=round(
                            float(np.mean([_track_confidence(tr) for tr in members])), 3
                        ),
                        bbox=_union([tr.union_box() for tr in members]),
                        description=f"a crowd of up to {peak} people {_where(members)}",
                        track_count=len(members),
                    )
                )
    counts = {k: v for k, v in counts.items() if v > 0 or k in ("person", "vehicle")}

    per_sample_motion = [sum(_active(tr, t) for tr in motion_tracks) for t in times]
    for a, b in _intervals(times, [n > 0 for n in per_sample_motion], max_gap):
        start, end = times[a], times[b]
        members = [tr for tr in motion_tracks if tr.first_s <= end and tr.last_s >= start]
        dirs = Counter(tr.direction() for tr in members)
        moving = [d for d in dirs if d != "stationary"]
        how = f", moving {moving[0]}" if len(moving) == 1 and len(dirs) == 1 else ""
        events.append(
            DetectedEvent(
                type="motion",
                start_s=round(start, 2),
                end_s=round(end, 2),
                confidence=round(min(0.7, 0.3 + 0.1 * max(tr.hits for tr in members)), 3),
                bbox=_union([tr.union_box() for tr in members]),
                description=(
                    f"unidentified motion ({len(members)} moving "
                    f"{'region' if len(members) == 1 else 'regions'}) {_where(members)}{how}"
                ),
                track_count=len(members),
            )
        )
    events.sort(key=lambda e: (e.start_s, e.type))

    fg = [m.fg_fraction for m in motions if not m.unreliable]
    motion_fraction = float(np.mean(fg)) if fg else 0.0
    tags = _tags(by_cat, events, motion_fraction)
    description = _clip_description(by_cat, counts, events, motion_fraction)
    elapsed = time.perf_counter() - t0
    logger.info(
        "analysed %s: %d frames in %.2f s (%.0f ms/frame, detector+decode %.0f ms/frame); %s",
        path, len(samples), elapsed, 1000 * elapsed / len(samples),
        1000 * t_detect / len(samples), counts,
    )  # fmt: skip
    return ClipAnalysis(
        description=description,
        tags=tags,
        events=events,
        counts=counts,
        frames_analysed=len(samples),
        sample_fps=sample_fps,
        duration_s=round(duration, 3),
        motion_fraction=round(motion_fraction, 5),
    )


def _inside(a: Sequence[float], b: Sequence[float]) -> bool:
    """Is most of box ``a`` inside box ``b``?"""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    area = (a[2] - a[0]) * (a[3] - a[1])
    return area > 0 and ix * iy / area > 0.5


def _event_description(cat: str, members: Sequence[Track], peak: int) -> str:
    if cat == "person":
        text = f"{_people_phrase(members)} {_where(members)}"
        if peak > 1 and peak < len(members):
            text += f", up to {peak} at once"
        return text
    if cat == "vehicle":
        if len(members) == 1:
            return _vehicle_phrase(members[0])
        return f"{len(members)} vehicles: " + _join([_vehicle_phrase(t) for t in members])
    return f"{_animal_phrase(members)} {_where(members)}"


def _tags(
    by_cat: dict[str, list[Track]], events: Sequence[DetectedEvent], motion_fraction: float
) -> list[str]:
    tags: list[str] = []
    for cat in SUMMARY_CATEGORIES:
        if by_cat[cat]:
            tags.append(cat)
            for lbl in sorted({t.label for t in by_cat[cat]}):
                if lbl not in tags:
                    tags.append(lbl)
    if any(e.type == "crowd" for e in events):
        tags.append("crowd")
    vehicles = by_cat["vehicle"]
    if any(t.direction() == "stationary" for t in vehicles):
        tags.append("parked")
    moving_tracks = any(t.direction() != "stationary" for ts in by_cat.values() for t in ts)
    if moving_tracks or any(e.type == "motion" for e in events):
        tags.append("motion")
    return tags


def _clip_description(
    by_cat: dict[str, list[Track]],
    counts: dict[str, int],
    events: Sequence[DetectedEvent],
    motion_fraction: float,
) -> str:
    # Only what is seen: the description is what search embeds, and technical sentences
    # (frames analysed, motion percentages) would dilute it; those stay in the details.
    sentences: list[str] = []
    people = by_cat["person"]
    if people:
        first = min(t.first_s for t in people)
        last = max(t.last_s for t in people)
        peak = counts.get("person", 0)
        if peak > 1:
            lead = f"Up to {plural('person', peak)} visible at once"
            detail = f"{len(people)} tracked in total: {_movement_breakdown(people)}"
        else:
            lead = "One person at a time" if len(people) > 1 else "One person"
            detail = _movement_breakdown(people)
        sentences.append(
            f"{lead} ({detail}) {_where(people)}, from {_fmt_t(first)} to {_fmt_t(last)}."
        )
    vehicles = by_cat["vehicle"]
    if vehicles:
        phrases = [_vehicle_phrase(t) for t in vehicles]
        head = "One vehicle" if len(vehicles) == 1 else f"{len(vehicles)} vehicles"
        sentences.append(f"{head}: {_join(phrases)}.")
    animals = by_cat["animal"]
    if animals:
        sentences.append(f"Animals: {_animal_phrase(animals)} {_where(animals)}.")
    crowds = [e for e in events if e.type == "crowd"]
    if crowds:
        spans = _join([f"{_fmt_t(e.start_s)} to {_fmt_t(e.end_s)}" for e in crowds[:3]])
        sentences.append(f"A crowd of {CROWD_MIN} or more people from {spans}.")
    motion_events = [e for e in events if e.type == "motion"]
    if not people and not vehicles:
        # Worded without "people" or "vehicles": a text embedding reads "no vehicles" as
        # being about vehicles, and an empty scene must not answer a search for a car.
        sentences.append(
            "The scene is empty: nobody in view and nothing moving."
            if not motion_events
            else "Nobody in view."
        )
    if motion_events:
        e = motion_events[0]
        sentences.append(
            f"Unidentified motion {e.description.split(') ', 1)[-1]} "
            f"from {_fmt_t(e.start_s)} to {_fmt_t(e.end_s)}"
            + (f" and {len(motion_events) - 1} more times." if len(motion_events) > 1 else ".")
        )
    if motion_fraction < 0.001 and not motion_events:
        sentences.append("The scene is static.")
    return " ".join(sentences)
