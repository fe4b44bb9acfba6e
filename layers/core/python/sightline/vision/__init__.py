"""Local "describer" vision stack: COCO detector, motion, tracking and clip analysis.

The heavy modules (onnxruntime, OpenCV) load on first use of a name exported here, so that
``import sightline.vision.model_store`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sightline.vision.analyze import ClipAnalysis, DetectedEvent, analyze_clip
    from sightline.vision.detector import CenterNetDetector, Detection
    from sightline.vision.model_store import detector_model_path
    from sightline.vision.motion import MotionDetector, MotionResult
    from sightline.vision.tracker import Track, Tracker

_EXPORTS = {
    "ClipAnalysis": "sightline.vision.analyze",
    "DetectedEvent": "sightline.vision.analyze",
    "analyze_clip": "sightline.vision.analyze",
    "CenterNetDetector": "sightline.vision.detector",
    "Detection": "sightline.vision.detector",
    "detector_model_path": "sightline.vision.model_store",
    "MotionDetector": "sightline.vision.motion",
    "MotionResult": "sightline.vision.motion",
    "Track": "sightline.vision.tracker",
    "Tracker": "sightline.vision.tracker",
}

__all__ = [
    "CenterNetDetector",
    "ClipAnalysis",
    "DetectedEvent",
    "Detection",
    "MotionDetector",
    "MotionResult",
    "Track",
    "Tracker",
    "analyze_clip",
    "detector_model_path",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sightline.vision' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
