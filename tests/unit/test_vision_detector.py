"""Detector wrapper: letterbox geometry, label mapping, thresholds, model store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sightline.vision import model_store
from sightline.vision.coco import COCO_LABELS, category_for, label_for, plural
from sightline.vision.detector import (
    CenterNetDetector,
    Detection,
    _dedupe,
    iou,
    letterbox,
)


@pytest.fixture(scope="module")
def detector() -> CenterNetDetector:
    return CenterNetDetector()


def test_letterbox_landscape_geometry() -> None:
    frame = np.zeros((576, 768, 3), np.uint8)
    canvas, lb = letterbox(frame)
    assert canvas.shape == (512, 512, 3)
    assert lb.scale == pytest.approx(512 / 768)
    assert lb.pad_x == 0 and lb.pad_y == 64  # 384 rows of content centred in 512


def test_letterbox_portrait_geometry() -> None:
    canvas, lb = letterbox(np.zeros((640, 320, 3), np.uint8))
    assert canvas.shape == (512, 512, 3)
    assert lb.scale == pytest.approx(0.8)
    assert lb.pad_x == 128 and lb.pad_y == 0


@pytest.mark.parametrize("shape", [(576, 768), (720, 1280), (144, 176), (640, 320)])
def test_letterbox_maps_a_drawn_square_back(shape: tuple[int, int]) -> None:
    h, w = shape
    frame = np.zeros((h, w, 3), np.uint8)
    x1, y1, x2, y2 = int(0.6 * w), int(0.2 * h), int(0.8 * w), int(0.5 * h)
    frame[y1:y2, x1:x2] = 255
    canvas, lb = letterbox(frame)
    ys, xs = np.nonzero(canvas[:, :, 0] > 127)
    got = lb.to_frame((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1))
    want = (x1 / w, y1 / h, x2 / w, y2 / h)
    assert got == pytest.approx(want, abs=0.02)


def test_letterbox_round_trip_and_clipping() -> None:
    _, lb = letterbox(np.zeros((576, 768, 3), np.uint8))
    box = (0.1, 0.2, 0.55, 0.9)
    assert lb.to_frame(lb.to_model(box)) == pytest.approx(box)
    # A box reaching into the padding is clipped to the frame.
    assert lb.to_frame((-10, 0, 600, 600)) == pytest.approx((0.0, 0.0, 1.0, 1.0))


def test_letterbox_rejects_grey_frames() -> None:
    with pytest.raises(ValueError):
        letterbox(np.zeros((10, 10), np.uint8))


def test_coco_labels_and_categories() -> None:
    assert len(COCO_LABELS) == 80
    assert label_for(0) == "person" and label_for(2) == "car" and label_for(7) == "truck"
    assert label_for(99) == "unknown"
    assert category_for("person") == "person"
    for v in ("car", "truck", "bus", "motorcycle", "bicycle", "train"):
        assert category_for(v) == "vehicle"
    assert category_for("dog") == "animal"
    assert category_for("fire hydrant") == "other"
    assert plural("person", 3) == "3 people" and plural("car", 1) == "1 car"
    assert plural("bus", 2) == "2 buses"


def test_dedupe_keeps_best_label_per_object() -> None:
    box = (0.8, 0.1, 0.9, 0.2)
    dets = [
        Detection(label="car", category="vehicle", score=0.3, box=box),
        Detection(label="truck", category="vehicle", score=0.4, box=box),
        Detection(label="person", category="person", score=0.5, box=box),
        Detection(label="car", category="vehicle", score=0.35, box=(0.1, 0.1, 0.2, 0.2)),
    ]
    kept = _dedupe(dets)
    assert sorted((d.label, d.score) for d in kept) == [
        ("car", 0.35),
        ("person", 0.5),
        ("truck", 0.4),
    ]
    assert iou(box, box) == pytest.approx(1.0)
    assert iou(box, (0.0, 0.0, 0.1, 0.1)) == 0.0


def test_model_store_default_and_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(model_store.ENV_VAR, raising=False)
    path = model_store.detector_model_path()
    assert path.name == "centernet_mbv3.onnx" and path.stat().st_size > 1_000_000
    monkeypatch.setenv(model_store.ENV_VAR, str(tmp_path / "nope.onnx"))
    with pytest.raises(model_store.DetectorModelMissingError) as err:
        model_store.detector_model_path()
    assert "convert_centernet" in str(err.value) and "nope.onnx" in str(err.value)
    monkeypatch.setenv(model_store.ENV_VAR, str(path))
    assert model_store.detector_model_path() == path


def test_thresholds_configuration() -> None:
    det = CenterNetDetector(score_threshold={"vehicle": 0.2, "truck": 0.6})
    assert det.threshold_for("car") == 0.2
    assert det.threshold_for("truck") == 0.6
    assert det.threshold_for("person") == 0.4
    assert CenterNetDetector(score_threshold=0.7).threshold_for("dog") == 0.7


def test_detector_output_on_synthetic_frames(detector: CenterNetDetector) -> None:
    rows, lb = detector.raw(np.full((240, 320, 3), 128, np.uint8))
    assert rows.shape == (100, 6)
    assert lb.width == 320 and lb.height == 240
    # A flat grey frame holds nothing worth reporting at the default thresholds.
    assert detector.detect(np.full((240, 320, 3), 128, np.uint8)) == []
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 255, (200, 300, 3), dtype=np.uint8) for _ in range(2)]
    out = detector.detect_batch(frames, min_score=0.05)
    assert len(out) == 2
    for dets in out:
        for d in dets:
            assert all(0.0 <= v <= 1.0 for v in d.box)
            assert d.box[0] < d.box[2] and d.box[1] < d.box[3]
            assert d.score >= 0.05
            assert d.category == category_for(d.label)
