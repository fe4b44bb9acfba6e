"""The vision stack on real footage from ../shared/data (skipped when that folder is absent).

Ground truth used here (checked by eye on the clips, see MODELS.md): vtest.avi shows 7-9
people at a time on a plaza and a parked white van plus a light blue car in the top right;
its lower lawn (bottom quarter) is empty from 5 s to 20 s.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from sightline.vision.analyze import analyze_clip
from sightline.vision.detector import CenterNetDetector

pytestmark = pytest.mark.integration


def _data_dir() -> Path | None:
    for cand in (
        os.environ.get("SIGHTLINE_SHARED_DATA"),
        Path(__file__).resolve().parents[2].parent / "shared" / "data",
    ):
        if cand and Path(cand).is_dir():
            return Path(cand)
    return None


def _clip(name: str) -> Path:
    d = _data_dir()
    if d is None:
        pytest.skip("../shared/data is absent (set SIGHTLINE_SHARED_DATA to the clips folder)")
    path = d / name
    if not path.is_file():
        pytest.skip(f"{name} is not in {d}")
    return path


@pytest.fixture(scope="module")
def detector() -> CenterNetDetector:
    return CenterNetDetector()


def _frames(path: Path, every: int, start: int = 0, stop: int | None = None) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    out, i = [], 0
    while cap.grab():
        if i >= start and (i - start) % every == 0:
            out.append(cap.retrieve()[1])
        i += 1
        if stop is not None and i >= stop:
            break
    cap.release()
    return out


def _write(path: Path, frames: list[np.ndarray], fps: float) -> Path:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    for f in frames:
        writer.write(f)
    writer.release()
    return path


def test_vtest_people_and_parked_vehicles(detector: CenterNetDetector) -> None:
    result = analyze_clip(_clip("vtest.avi"), detector=detector, max_frames=40)  # 20 s
    assert result.frames_analysed == 40
    assert result.duration_s == pytest.approx(20.0, abs=0.2)
    assert 6 <= result.counts["person"] <= 10
    assert result.counts["vehicle"] == 2
    people = [e for e in result.events if e.type == "person"]
    vehicles = [e for e in result.events if e.type == "vehicle"]
    assert people and vehicles
    assert people[0].start_s <= 1.0 and people[-1].end_s >= 18.0
    assert len(result.events) <= 8  # a handful, not one per detection
    for e in result.events:
        assert 0.0 <= e.start_s <= e.end_s <= result.duration_s
        assert 0.0 < e.confidence <= 1.0
    # The van and the car are parked in the top right for the whole 20 s.
    (veh,) = vehicles
    assert veh.start_s <= 1.0 and veh.end_s >= 18.0
    assert veh.track_count == 2
    assert veh.bbox is not None and veh.bbox[0] > 0.75 and veh.bbox[3] < 0.3
    assert "parked" in veh.description and "white truck" in veh.description
    assert {"person", "vehicle", "crowd"} <= set(result.tags)
    assert "people" in result.description and "vehicles" in result.description


def test_detector_boxes_follow_a_mirrored_frame(detector: CenterNetDetector) -> None:
    (frame,) = _frames(_clip("vtest.avi"), every=1, start=300, stop=301)
    rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    a = [d for d in detector.detect(rgb) if d.category == "person" and d.score > 0.5]
    b = [d for d in detector.detect(rgb[:, ::-1].copy()) if d.category == "person"]
    assert len(a) >= 4
    for d in a:
        mirrored = (1 - d.box[2], d.box[1], 1 - d.box[0], d.box[3])
        best = max(b, key=lambda o: sum(-abs(x - y) for x, y in zip(o.box, mirrored, strict=True)))
        assert best.box == pytest.approx(mirrored, abs=0.02)
        # Boxes are person-shaped in the original frame (taller than wide).
        assert (d.box[3] - d.box[1]) * 576 > (d.box[2] - d.box[0]) * 768


def test_people_appear_and_leave_within_two_seconds(
    tmp_path: Path, detector: CenterNetDetector
) -> None:
    """Empty plaza (median of the clip: parked vehicles, no people) for 6 s, then 10 s of the
    real footage, then the empty plaza again for 6 s."""
    src = _clip("vtest.avi")
    background = np.median(np.stack(_frames(src, every=20)), axis=0)
    rng = np.random.default_rng(0)

    def empty() -> np.ndarray:
        return np.clip(background + rng.normal(0, 2.0, background.shape), 0, 255).astype(np.uint8)

    real = _frames(src, every=1, start=60, stop=160)  # 10 s of people
    frames = [empty() for _ in range(60)] + real + [empty() for _ in range(60)]
    clip = _write(tmp_path / "enter_leave.avi", frames, 10.0)
    result = analyze_clip(clip, detector=detector)
    people = [e for e in result.events if e.type == "person"]
    assert len(people) == 1, result.events
    assert people[0].start_s == pytest.approx(6.0, abs=2.0)
    assert people[0].end_s == pytest.approx(15.9, abs=2.0)
    vehicles = [e for e in result.events if e.type == "vehicle"]
    assert len(vehicles) == 1
    assert vehicles[0].start_s <= 2.0 and vehicles[0].end_s >= result.duration_s - 2.0


def test_real_empty_lawn_gives_no_people_or_vehicles(
    tmp_path: Path, detector: CenterNetDetector
) -> None:
    frames = [f[430:, :] for f in _frames(_clip("vtest.avi"), every=1, start=50, stop=200)]
    clip = _write(tmp_path / "lawn.avi", frames, 10.0)
    result = analyze_clip(clip, detector=detector)
    assert [e for e in result.events if e.type in ("person", "vehicle", "crowd")] == []
    assert result.counts["person"] == 0 and result.counts["vehicle"] == 0
    assert "nobody in view" in result.description.lower()


def test_overhead_crowd(detector: CenterNetDetector) -> None:
    result = analyze_clip(_clip("overhead_pedestrians_720p.avi"), detector=detector, max_frames=12)
    assert result.counts["person"] >= 12
    assert result.counts["vehicle"] == 0
    crowd = [e for e in result.events if e.type == "crowd"]
    assert crowd and crowd[0].start_s <= 1.0
    assert "crowd" in result.tags


def test_carphone_one_person(detector: CenterNetDetector) -> None:
    result = analyze_clip(_clip("carphone_pristine.mp4"), detector=detector)
    assert result.counts["person"] == 1
    assert result.duration_s == pytest.approx(4.0, abs=0.1)
    (person,) = [e for e in result.events if e.type == "person"]
    assert person.start_s <= 0.5 and person.end_s >= 3.0
