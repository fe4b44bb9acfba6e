"""Merge events from two sources (a detector and a model) without duplicates.

Two events are the same when they have the same type and their time spans overlap
(``tolerance_s`` widens the test); the merged event spans both, keeps the higher
confidence, and takes its box and description from the more confident source (falling
back to whichever has one). Events of one source are never merged with each other:
two people walking at the same time are two events.
"""

from __future__ import annotations

from collections.abc import Sequence

from sightline.models import DetectedEvent


def _overlap(a: DetectedEvent, b: DetectedEvent, tolerance_s: float) -> float | None:
    """Overlap in seconds (negative: a gap within the tolerance); None when apart."""
    lo, hi = max(a.start_s, b.start_s), min(a.end_s, b.end_s)
    return hi - lo if hi + tolerance_s >= lo else None


def _combine(keep: DetectedEvent, other: DetectedEvent) -> DetectedEvent:
    best, rest = (keep, other) if keep.confidence >= other.confidence else (other, keep)
    return DetectedEvent(
        type=keep.type,
        start_s=min(keep.start_s, other.start_s),
        end_s=max(keep.end_s, other.end_s),
        confidence=best.confidence,
        bbox=best.bbox if best.bbox is not None else rest.bbox,
        description=best.description or rest.description,
    )


def merge_events(
    a: Sequence[DetectedEvent], b: Sequence[DetectedEvent], *, tolerance_s: float = 0.0
) -> list[DetectedEvent]:
    """Events of ``a`` and ``b`` with cross-source duplicates merged; sorted by (start, type).

    Pure: the inputs are not changed. Each event of ``b`` joins the event of ``a`` of the
    same type it overlaps most (ties: the earlier one); otherwise it is added as is.
    """
    merged = [e.model_copy() for e in a]
    extra: list[DetectedEvent] = []
    for ev in b:
        best_i, best_ov = -1, 0.0
        for i, cur in enumerate(merged):
            if cur.type.lower() != ev.type.lower():
                continue
            ov = _overlap(cur, ev, tolerance_s)
            if ov is not None and (best_i < 0 or ov > best_ov):
                best_i, best_ov = i, ov
        if best_i >= 0:
            merged[best_i] = _combine(merged[best_i], ev)
        else:
            extra.append(ev.model_copy())
    return sorted(merged + extra, key=lambda e: (e.start_s, e.type, e.end_s))
