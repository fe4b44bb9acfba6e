"""The local describer: a real pretrained detector plus motion analysis, in words.

The stand-in for a VLM on one machine (see ``sightline.vision``); a Bedrock
describer answers through the same port.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from sightline.models import ChunkRef, DetectedEvent
from sightline.ports import ClipDescription


class DetectorDescriber:
    model = "centernet-mbv3+mog2"
    event_source = "detector"

    def __init__(self, *, sample_fps: float = 2.0) -> None:
        self.sample_fps = sample_fps
        self._detector: Any = None
        self._lock = threading.Lock()

    def _get_detector(self) -> Any:
        # Loaded on first use: the ONNX session is the expensive part of a cold start.
        with self._lock:
            if self._detector is None:
                from sightline.vision.detector import CenterNetDetector

                self._detector = CenterNetDetector()
            return self._detector

    def describe(self, clip: Path, chunk: ChunkRef) -> ClipDescription:
        from sightline.vision.analyze import analyze_clip

        analysis = analyze_clip(clip, detector=self._get_detector(), sample_fps=self.sample_fps)
        events = [DetectedEvent.model_validate(e.model_dump()) for e in analysis.events]
        return ClipDescription(
            description=analysis.description,
            tags=list(analysis.tags),
            events=events,
            counts=dict(analysis.counts),
            model=self.model,
            details={
                "frames_analysed": analysis.frames_analysed,
                "sample_fps": analysis.sample_fps,
                "duration_s": analysis.duration_s,
                "motion_fraction": analysis.motion_fraction,
            },
        )
