"""merge_events: cross-source duplicates (same type, overlapping time) become one event."""

from __future__ import annotations

from sightline.models import DetectedEvent
from sightline.services.event_merge import merge_events


def ev(type_: str, s: float, e: float, c: float, **kw: object) -> DetectedEvent:
    return DetectedEvent(type=type_, start_s=s, end_s=e, confidence=c, **kw)


def test_overlapping_same_type_becomes_one_event_with_max_confidence() -> None:
    det = [ev("person", 1.0, 4.0, 0.6, bbox=(0.1, 0.1, 0.2, 0.5), description="")]
    vlm = [ev("person", 3.0, 6.0, 0.9, description="a man walks in")]
    (merged,) = merge_events(det, vlm)
    assert (merged.start_s, merged.end_s, merged.confidence) == (1.0, 6.0, 0.9)
    assert merged.description == "a man walks in"
    assert merged.bbox == (0.1, 0.1, 0.2, 0.5)  # the only box there is


def test_different_type_or_disjoint_time_stay_separate() -> None:
    det = [ev("person", 0.0, 2.0, 0.8)]
    vlm = [ev("vehicle", 0.0, 2.0, 0.7), ev("person", 5.0, 7.0, 0.5)]
    out = merge_events(det, vlm)
    assert [(e.type, e.start_s) for e in out] == [
        ("person", 0.0),
        ("vehicle", 0.0),
        ("person", 5.0),
    ]


def test_touching_and_tolerance() -> None:
    a, b = [ev("motion", 0.0, 2.0, 0.5)], [ev("motion", 2.0, 3.0, 0.4)]
    assert len(merge_events(a, b)) == 1  # touching spans overlap by zero seconds
    c = [ev("motion", 2.5, 3.0, 0.4)]
    assert len(merge_events(a, c)) == 2
    assert len(merge_events(a, c, tolerance_s=0.5)) == 1


def test_events_of_one_source_are_not_merged_with_each_other() -> None:
    det = [ev("person", 0.0, 5.0, 0.7), ev("person", 1.0, 4.0, 0.8)]
    assert len(merge_events(det, [])) == 2
    assert len(merge_events([], det)) == 2


def test_model_event_joins_the_detector_event_it_overlaps_most() -> None:
    det = [ev("person", 0.0, 1.0, 0.7), ev("person", 2.0, 6.0, 0.6)]
    out = merge_events(det, [ev("person", 0.5, 5.0, 0.65)])
    assert [(e.start_s, e.end_s, e.confidence) for e in out] == [(0.0, 1.0, 0.7), (0.5, 6.0, 0.65)]


def test_merge_is_pure_and_type_matching_ignores_case() -> None:
    a = [ev("person", 0.0, 2.0, 0.5)]
    b = [ev("Person", 1.0, 3.0, 0.9)]
    before = ([x.model_dump() for x in a], [x.model_dump() for x in b])
    out = merge_events(a, b)
    assert len(out) == 1 and out[0].type == "person" and out[0].confidence == 0.9
    assert ([x.model_dump() for x in a], [x.model_dump() for x in b]) == before
    assert out[0] is not a[0]


def test_result_count_is_symmetric_for_one_to_one_duplicates() -> None:
    a = [ev("person", 0.0, 2.0, 0.5), ev("vehicle", 3.0, 9.0, 0.9)]
    b = [ev("person", 1.0, 3.0, 0.9), ev("animal", 0.0, 1.0, 0.3)]
    ab, ba = merge_events(a, b), merge_events(b, a)
    assert len(ab) == len(ba) == 3
    assert {(e.type, e.start_s, e.end_s, e.confidence) for e in ab} == {
        (e.type, e.start_s, e.end_s, e.confidence) for e in ba
    }
