"""IoU/centroid tracker over sparse samples: identities, directions, persistence."""

from __future__ import annotations

import pytest

from sightline.vision.tracker import Tracker, TrackInput


def _obs(box: tuple[float, float, float, float], cat: str = "person", score: float = 0.6):
    return TrackInput(box=box, score=score, label=cat if cat != "vehicle" else "car", category=cat)


def _walker(x: float, y: float = 0.4, w: float = 0.04, h: float = 0.12):
    return (x, y, x + w, y + h)


def test_two_people_crossing_keep_their_identity() -> None:
    tr = Tracker()
    ids_a, ids_b = [], []
    for k in range(10):
        t = 0.5 * k
        a = _walker(0.1 + 0.06 * k, y=0.3)  # left to right, upper
        b = _walker(0.7 - 0.06 * k, y=0.5)  # right to left, lower
        ia, ib = tr.update(t, [_obs(a), _obs(b)])
        ids_a.append(ia)
        ids_b.append(ib)
    assert len(set(ids_a)) == 1 and len(set(ids_b)) == 1 and ids_a[0] != ids_b[0]
    tracks = {t.track_id: t for t in tr.confirmed()}
    assert tracks[ids_a[0]].direction() == "left to right"
    assert tracks[ids_b[0]].direction() == "right to left"
    assert tracks[ids_a[0]].first_s == 0.0 and tracks[ids_a[0]].last_s == 4.5
    assert tracks[ids_a[0]].hits == 10


def test_fast_walker_is_followed_by_distance_not_iou() -> None:
    # Moves more than its own width between samples: no IoU, centre distance + velocity.
    tr = Tracker()
    ids = [tr.update(0.5 * k, [_obs(_walker(0.05 + 0.05 * k))])[0] for k in range(8)]
    assert len(set(ids)) == 1


def test_static_vehicle_is_stationary_and_categories_never_mix() -> None:
    tr = Tracker()
    car = (0.8, 0.1, 0.95, 0.2)
    for k in range(6):
        jitter = 0.003 * (-1) ** k
        box = (car[0] + jitter, car[1], car[2] + jitter, car[3])
        tr.update(0.5 * k, [_obs(box, "vehicle", 0.4), _obs(car, "person", 0.5)])
    tracks = tr.confirmed()
    assert sorted(t.category for t in tracks) == ["person", "vehicle"]
    veh = next(t for t in tracks if t.category == "vehicle")
    assert veh.direction() == "stationary" and veh.is_static()
    assert veh.label == "car"
    assert veh.median_box() == pytest.approx(car, abs=0.004)


def test_towards_camera_needs_growth() -> None:
    tr = Tracker()
    for k in range(6):
        h = 0.1 * (1 + 0.15 * k)
        tr.update(0.5 * k, [_obs((0.45, 0.2 + 0.06 * k, 0.5 + 0.01 * k, 0.2 + 0.06 * k + h))])
    (track,) = tr.confirmed()
    assert track.direction() == "towards the camera"
    tr2 = Tracker()
    for k in range(6):
        tr2.update(0.5 * k, [_obs((0.45, 0.2 + 0.06 * k, 0.49, 0.3 + 0.06 * k))])
    assert tr2.confirmed()[0].direction() == "down the frame"


def test_track_closes_after_misses_and_single_hits_are_unconfirmed() -> None:
    tr = Tracker(max_misses=1)
    box = _walker(0.5)
    first = tr.update(0.0, [_obs(box)])[0]
    tr.update(0.5, [])
    tr.update(1.0, [])
    second = tr.update(1.5, [_obs(box)])[0]
    assert first != second  # two misses > max_misses: a new track
    assert tr.confirmed(min_hits=2) == []
    assert len(tr.confirmed(min_hits=1)) == 2


def test_prediction_and_union() -> None:
    tr = Tracker()
    tr.update(0.0, [_obs((0.1, 0.1, 0.2, 0.3))])
    tr.update(1.0, [_obs((0.2, 0.1, 0.3, 0.3))])
    (track,) = tr.tracks
    assert track.predicted(2.0) == pytest.approx((0.3, 0.1, 0.4, 0.3))
    assert track.union_box() == pytest.approx((0.1, 0.1, 0.3, 0.3))
    assert track.top_score == pytest.approx(0.6)
