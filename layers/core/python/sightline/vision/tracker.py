"""A small IoU + centroid tracker for sparsely sampled frames (one tracker per category).

At 1-5 samples a second a walking person moves about their own width between samples, so
matching falls back from IoU to centre distance (relative to box size) with a constant
velocity prediction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Box = tuple[float, float, float, float]


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _centre(b: Sequence[float]) -> tuple[float, float]:
    return (b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0


def _diag(b: Sequence[float]) -> float:
    return math.hypot(b[2] - b[0], b[3] - b[1])


@dataclass
class TrackInput:
    """One observation offered to the tracker."""

    box: Box
    score: float
    label: str
    category: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrackPoint:
    """A matched observation of a track at time ``t`` (seconds)."""

    t: float
    box: Box
    score: float
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Track:
    """An object followed across samples."""

    track_id: int
    category: str
    points: list[TrackPoint] = field(default_factory=list)
    labels: dict[str, float] = field(default_factory=dict)  # label -> summed score
    misses: int = 0

    @property
    def hits(self) -> int:
        """Number of samples the object was observed in."""
        return len(self.points)

    @property
    def first_s(self) -> float:
        """Time of the first observation."""
        return self.points[0].t

    @property
    def last_s(self) -> float:
        """Time of the last observation."""
        return self.points[-1].t

    @property
    def label(self) -> str:
        """Most frequent label (score-weighted)."""
        return max(self.labels.items(), key=lambda kv: kv[1])[0]

    @property
    def mean_score(self) -> float:
        """Mean detection score over the observations."""
        return float(np.mean([p.score for p in self.points]))

    @property
    def top_score(self) -> float:
        """Mean of the (up to) three best scores: robust to one lucky frame."""
        best = sorted((p.score for p in self.points), reverse=True)[:3]
        return float(np.mean(best))

    @property
    def boxes(self) -> list[Box]:
        """The observed boxes in time order."""
        return [p.box for p in self.points]

    def median_box(self) -> Box:
        """Representative box: per-coordinate median."""
        arr = np.median(np.array(self.boxes), axis=0)
        return (float(arr[0]), float(arr[1]), float(arr[2]), float(arr[3]))

    def union_box(self) -> Box:
        """Box covering every observation."""
        arr = np.array(self.boxes)
        return (
            float(arr[:, 0].min()),
            float(arr[:, 1].min()),
            float(arr[:, 2].max()),
            float(arr[:, 3].max()),
        )

    def displacement(self) -> tuple[float, float, float]:
        """Centre displacement (dx, dy; normalized) and height ratio, first to last sightings.

        The ends are averaged over up to two observations each to damp box jitter.
        """
        k = min(2, max(1, self.hits // 2))
        first = np.array(self.boxes[:k]).mean(axis=0)
        last = np.array(self.boxes[-k:]).mean(axis=0)
        (fx, fy), (lx, ly) = _centre(first), _centre(last)
        fh, lh = first[3] - first[1], last[3] - last[1]
        return lx - fx, ly - fy, (lh / fh) if fh > 0 else 1.0

    def is_static(self, tolerance: float = 0.03) -> bool:
        """True when the centre never wanders more than ``tolerance`` (of the frame)."""
        cs = np.array([_centre(b) for b in self.boxes])
        spread = np.max(np.linalg.norm(cs - np.median(cs, axis=0), axis=1))
        size = float(np.median([_diag(b) for b in self.boxes]))
        # Big boxes jitter more in absolute terms: allow a quarter of the box diagonal.
        return bool(spread <= max(tolerance, 0.25 * size))

    def direction(self) -> str:
        """Plain-language direction of motion, e.g. ``"left to right"`` or ``"stationary"``.

        Vertical motion is called towards/away from the camera only when the box also grows
        or shrinks (true for elevated cameras); otherwise it is up/down the frame.
        """
        if self.hits < 2 or self.is_static():
            return "stationary"
        dx, dy, hr = self.displacement()
        if math.hypot(dx, dy) < 0.04:
            return "stationary"
        parts: list[str] = []
        if abs(dx) >= 0.5 * abs(dy):
            parts.append("left to right" if dx > 0 else "right to left")
        if abs(dy) >= 0.5 * abs(dx):
            if dy > 0:
                parts.append("towards the camera" if hr > 1.15 else "down the frame")
            else:
                parts.append("away from the camera" if hr < 0.87 else "up the frame")
        return " and ".join(parts)

    def predicted(self, t: float) -> Box:
        """Constant-velocity prediction of the box at time ``t``."""
        last = self.points[-1]
        if self.hits < 2 or t <= last.t:
            return last.box
        prev = self.points[-2]
        dt = last.t - prev.t
        if dt <= 0:
            return last.box
        (px, py), (lx, ly) = _centre(prev.box), _centre(last.box)
        vx, vy = (lx - px) / dt, (ly - py) / dt
        h = t - last.t
        return (
            last.box[0] + vx * h,
            last.box[1] + vy * h,
            last.box[2] + vx * h,
            last.box[3] + vy * h,
        )


class Tracker:
    """Greedy IoU/centroid tracker. Objects of different categories never match."""

    def __init__(
        self,
        *,
        iou_threshold: float = 0.2,
        max_distance: float = 1.2,
        max_misses: int = 2,
    ) -> None:
        """``max_distance`` is in units of the larger box diagonal; ``max_misses`` is how many
        consecutive samples a track may go unseen before it is closed."""
        self.iou_threshold = iou_threshold
        self.max_distance = max_distance
        self.max_misses = max_misses
        self.tracks: list[Track] = []
        self._next_id = 1

    def _affinity(self, track: Track, t: float, obs: TrackInput) -> float:
        if track.category != obs.category:
            return -1.0
        pred = track.predicted(t)
        last = track.points[-1].box
        overlap = max(_iou(pred, obs.box), _iou(last, obs.box))
        if overlap >= self.iou_threshold:
            return 1.0 + overlap
        # Size must be comparable: a person does not double in height between samples.
        ha, hb = last[3] - last[1], obs.box[3] - obs.box[1]
        if ha <= 0 or hb <= 0 or not 0.5 <= hb / ha <= 2.0:
            return -1.0
        (ax, ay), (bx, by) = _centre(pred), _centre(obs.box)
        dist = math.hypot(ax - bx, ay - by) / max(_diag(pred), _diag(obs.box), 1e-6)
        if dist > self.max_distance:
            return -1.0
        return 1.0 - dist / self.max_distance

    def update(self, t: float, observations: Sequence[TrackInput]) -> list[int]:
        """Add the observations at time ``t``; returns the track id given to each one."""
        live = [tr for tr in self.tracks if tr.misses <= self.max_misses]
        pairs = []
        for ti, tr in enumerate(live):
            for oi, obs in enumerate(observations):
                a = self._affinity(tr, t, obs)
                if a > 0:
                    pairs.append((a, ti, oi))
        pairs.sort(reverse=True)
        used_t: set[int] = set()
        assigned: dict[int, int] = {}
        for _, ti, oi in pairs:
            if ti in used_t or oi in assigned:
                continue
            used_t.add(ti)
            assigned[oi] = ti
        ids: list[int] = []
        for oi, obs in enumerate(observations):
            if oi in assigned:
                tr = live[assigned[oi]]
            else:
                tr = Track(track_id=self._next_id, category=obs.category)
                self._next_id += 1
                self.tracks.append(tr)
            tr.points.append(TrackPoint(t=t, box=obs.box, score=obs.score, extra=obs.extra))
            tr.labels[obs.label] = tr.labels.get(obs.label, 0.0) + obs.score
            tr.misses = 0
            ids.append(tr.track_id)
        matched = {live[ti].track_id for ti in used_t}
        new_ids = set(ids) - matched
        for tr in live:
            if tr.track_id not in matched and tr.track_id not in new_ids:
                tr.misses += 1
        return ids

    def confirmed(self, min_hits: int = 2) -> list[Track]:
        """Tracks observed in at least ``min_hits`` samples."""
        return [tr for tr in self.tracks if tr.hits >= min_hits]
