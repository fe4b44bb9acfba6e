"""The 80 COCO class labels in the order the CenterNet model emits them, and their categories."""

from __future__ import annotations

from typing import Literal

Category = Literal["person", "vehicle", "animal", "other"]

COCO_LABELS: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat",
    "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack",
    "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball",
    "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket",
    "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair",
    "couch", "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote",
    "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book",
    "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip

# Road and rail vehicles a surveillance user means by "vehicle"; aircraft and boats are kept
# too because they are vehicles in plain English and are rare enough not to add noise.
VEHICLE_LABELS: frozenset[str] = frozenset(
    {"bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat"}
)
ANIMAL_LABELS: frozenset[str] = frozenset(
    {"bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe"}
)

# Plural forms used in descriptions.
PLURALS: dict[str, str] = {
    "person": "people",
    "bus": "buses",
    "sheep": "sheep",
    "bicycle": "bicycles",
}


def label_for(class_index: int) -> str:
    """COCO label for a class index (0-79); ``"unknown"`` outside that range."""
    if 0 <= class_index < len(COCO_LABELS):
        return COCO_LABELS[class_index]
    return "unknown"


def category_for(label: str) -> Category:
    """Coarse category of a COCO label."""
    if label == "person":
        return "person"
    if label in VEHICLE_LABELS:
        return "vehicle"
    if label in ANIMAL_LABELS:
        return "animal"
    return "other"


def plural(label: str, n: int) -> str:
    """``"1 car"``, ``"2 cars"``, ``"3 people"``."""
    if n == 1:
        return f"1 {label}"
    return f"{n} {PLURALS.get(label, label + 's')}"
