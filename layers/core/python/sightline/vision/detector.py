"""CenterNet-MobileNetV3 (80 COCO classes) object detector on onnxruntime.

The model takes one RGB 0-255 float image of 512x512 (NHWC) and returns its 100 best peaks
as ``x1, y1, x2, y2, score, class`` in 512-pixel space. Frames of any size are letterboxed
(aspect kept, centred, black padding) and the boxes are mapped back to the original frame
in normalized coordinates.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict

from sightline.vision.coco import category_for, label_for
from sightline.vision.model_store import detector_model_path

logger = logging.getLogger(__name__)

INPUT_SIZE = 512
Box = tuple[float, float, float, float]

# Per-category thresholds for "this alone is a detection". Chosen on the real clips: people
# score 0.45-0.8 when fully visible from an elevated camera, static clutter (bins, rocks,
# cones) reaches 0.38 as "person" and 0.64 as "sports ball"; parked cars and vans score
# 0.35-0.45 as car/truck. Animal and other classes are rare in surveillance views and their
# false positives are common, so they need more. The clip analysis works from a lower floor
# and lets motion and track persistence confirm weaker detections.
DEFAULT_THRESHOLDS: dict[str, float] = {
    "person": 0.4,
    "vehicle": 0.35,
    "animal": 0.5,
    "other": 0.5,
}


class Detection(BaseModel):
    """One detected object in a frame."""

    model_config = ConfigDict(frozen=True)

    label: str
    category: Literal["person", "vehicle", "animal", "other"]
    score: float
    box: Box  # normalized x1, y1, x2, y2 of the original frame

    @property
    def area(self) -> float:
        """Normalized area of the box."""
        return max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1])


class Letterbox(BaseModel):
    """How a frame was placed in the square model input."""

    model_config = ConfigDict(frozen=True)

    scale: float  # model pixels per frame pixel
    pad_x: float  # left padding, model pixels
    pad_y: float  # top padding, model pixels
    width: int  # original frame width
    height: int  # original frame height

    def to_frame(self, box_model: Sequence[float]) -> Box:
        """Map a box in model pixels back to normalized coordinates of the original frame."""
        x1, y1, x2, y2 = (float(v) for v in box_model[:4])
        fx1 = (x1 - self.pad_x) / self.scale / self.width
        fx2 = (x2 - self.pad_x) / self.scale / self.width
        fy1 = (y1 - self.pad_y) / self.scale / self.height
        fy2 = (y2 - self.pad_y) / self.scale / self.height
        return (
            float(np.clip(fx1, 0.0, 1.0)),
            float(np.clip(fy1, 0.0, 1.0)),
            float(np.clip(fx2, 0.0, 1.0)),
            float(np.clip(fy2, 0.0, 1.0)),
        )

    def to_model(self, box_norm: Sequence[float]) -> Box:
        """Map a normalized frame box into model pixels (inverse of :meth:`to_frame`)."""
        x1, y1, x2, y2 = box_norm
        return (
            x1 * self.width * self.scale + self.pad_x,
            y1 * self.height * self.scale + self.pad_y,
            x2 * self.width * self.scale + self.pad_x,
            y2 * self.height * self.scale + self.pad_y,
        )


def letterbox(frame_rgb: np.ndarray, size: int = INPUT_SIZE) -> tuple[np.ndarray, Letterbox]:
    """Resize ``frame_rgb`` (HxWx3 uint8) into a ``size``x``size`` canvas, aspect kept, centred."""
    if frame_rgb.ndim != 3 or frame_rgb.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 RGB frame, got shape {frame_rgb.shape}")
    h, w = frame_rgb.shape[:2]
    scale = size / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(frame_rgb, (nw, nh), interpolation=interp)
    canvas = np.zeros((size, size, 3), dtype=np.uint8)
    px, py = (size - nw) // 2, (size - nh) // 2
    canvas[py : py + nh, px : px + nw] = resized
    # Use the effective per-axis scale of the rounded size so the inverse mapping is exact.
    lb = Letterbox(scale=nw / w, pad_x=float(px), pad_y=float(py), width=w, height=h)
    if abs(nh / h - nw / w) > 0.01:
        logger.debug("letterbox rounding: x scale %.4f, y scale %.4f", nw / w, nh / h)
    return canvas, lb


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two x1,y1,x2,y2 boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _dedupe(dets: list[Detection], iou_threshold: float = 0.6) -> list[Detection]:
    """Category-wise NMS: the model emits one peak per class, so a van shows up as both truck
    and car at the same place; keep the best-scoring label for each object."""
    kept: list[Detection] = []
    for det in sorted(dets, key=lambda d: d.score, reverse=True):
        if all(k.category != det.category or iou(k.box, det.box) < iou_threshold for k in kept):
            kept.append(det)
    return kept


class CenterNetDetector:
    """CenterNet-MobileNetV3 COCO detector (onnxruntime, CPU)."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        score_threshold: float | Mapping[str, float] | None = None,
        intra_op_threads: int = 1,
    ) -> None:
        """Load the model.

        ``score_threshold`` is one threshold for every class, or a mapping from category
        (``person``, ``vehicle``, ``animal``, ``other``) or COCO label to threshold; labels
        win over categories, missing entries fall back to :data:`DEFAULT_THRESHOLDS`.
        """
        import onnxruntime as ort

        path = Path(model_path) if model_path is not None else detector_model_path()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, int(intra_op_threads))
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3
        self.model_path = path
        self._session = ort.InferenceSession(
            str(path), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self._input = self._session.get_inputs()[0].name
        self._output = self._session.get_outputs()[0].name
        self.thresholds: dict[str, float] = dict(DEFAULT_THRESHOLDS)
        if isinstance(score_threshold, int | float):
            self.thresholds = {k: float(score_threshold) for k in DEFAULT_THRESHOLDS}
        elif score_threshold is not None:
            self.thresholds.update({k: float(v) for k, v in score_threshold.items()})

    def threshold_for(self, label: str) -> float:
        """Score threshold applied to a COCO label."""
        if label in self.thresholds:
            return self.thresholds[label]
        return self.thresholds.get(category_for(label), DEFAULT_THRESHOLDS["other"])

    def raw(self, frame_rgb: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        """Run the model: the 100x6 output rows (model pixel space) and the letterbox used."""
        canvas, lb = letterbox(frame_rgb)
        out = self._session.run([self._output], {self._input: canvas[None].astype(np.float32)})
        return np.asarray(out[0][0], dtype=np.float32), lb

    def detect(self, frame_rgb: np.ndarray, *, min_score: float | None = None) -> list[Detection]:
        """Detect objects in one RGB uint8 frame.

        With ``min_score`` every class is kept from that score on (candidates for callers that
        confirm detections themselves); otherwise the per-class thresholds apply.
        """
        rows, lb = self.raw(frame_rgb)
        dets: list[Detection] = []
        for x1, y1, x2, y2, score, cls in rows:
            label = label_for(round(float(cls)))
            thr = min_score if min_score is not None else self.threshold_for(label)
            if score < thr:
                continue
            box = lb.to_frame((x1, y1, x2, y2))
            if box[2] - box[0] <= 1e-4 or box[3] - box[1] <= 1e-4:
                continue  # a box entirely in the padding
            dets.append(
                Detection(
                    label=label,
                    category=category_for(label),
                    score=round(float(score), 4),
                    box=box,
                )
            )
        return _dedupe(dets)

    def detect_batch(
        self, frames: Sequence[np.ndarray], *, min_score: float | None = None
    ) -> list[list[Detection]]:
        """Detect objects in several frames (the model has a fixed batch of one)."""
        return [self.detect(f, min_score=min_score) for f in frames]
