"""Clip analysis on synthetic clips written to tmp_path: empty scenes give no events."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from sightline.vision.analyze import (
    ClipAnalysis,
    VideoSampler,
    _intervals,
    analyze_clip,
    dominant_colour,
    region_of,
)
from sightline.vision.detector import CenterNetDetector

W, H, FPS = 384, 288, 10


@pytest.fixture(scope="module")
def detector() -> CenterNetDetector:
    return CenterNetDetector()


def _background(seed: int = 0) -> np.ndarray:
    """A noise-free 'car park' style background: tarmac gradient, kerb, painted bays."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W]
    tarmac = 90 + 0.1 * xx + 0.15 * yy + rng.normal(0, 6, (H, W))
    img = np.repeat(tarmac[:, :, None], 3, axis=2)
    img[: H // 4] = (120, 150, 110)  # a grass verge / wall band at the top
    for x in range(30, W, 60):
        img[H // 2 :, x : x + 3] = 230  # bay lines
    return np.clip(img, 0, 255).astype(np.float32)


def _write_clip(
    path: Path, n_frames: int, frame_fn: Callable[[int], np.ndarray], fps: int = FPS
) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (W, H))
    assert writer.isOpened()
    for i in range(n_frames):
        writer.write(frame_fn(i))
    writer.release()
    return path


def _noisy(img: np.ndarray, rng: np.random.Generator, sigma: float = 2.0) -> np.ndarray:
    return np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)


def test_empty_static_scene_gives_no_events(tmp_path: Path, detector: CenterNetDetector) -> None:
    rng = np.random.default_rng(0)
    bg = _background()
    clip = _write_clip(tmp_path / "empty.avi", 100, lambda i: _noisy(bg, rng))
    result = analyze_clip(clip, detector=detector)
    assert isinstance(result, ClipAnalysis)
    assert result.events == []
    assert result.counts == {"person": 0, "vehicle": 0}
    assert result.frames_analysed == 20
    assert result.duration_s == pytest.approx(10.0, abs=0.15)
    assert result.motion_fraction < 0.001
    assert "nobody in view" in result.description.lower()
    assert "person" not in result.tags and "vehicle" not in result.tags


def test_moving_object_gives_a_motion_event_with_times(
    tmp_path: Path, detector: CenterNetDetector
) -> None:
    # A textured grey box crosses the frame from 3 s to 7 s: motion, not a person or vehicle.
    rng = np.random.default_rng(1)
    bg = _background()
    tex = rng.normal(0, 25, (40, 40, 3))

    def frame(i: int) -> np.ndarray:
        img = bg.copy()
        t = i / FPS
        if 3.0 <= t < 7.0:
            x = int(20 + (t - 3.0) * 80)
            img[150:190, x : x + 40] = 200 + tex
        return _noisy(img, rng)

    clip = _write_clip(tmp_path / "mover.avi", 100, frame)
    result = analyze_clip(clip, detector=detector)
    motion = [e for e in result.events if e.type == "motion"]
    assert len(motion) == 1, result.events
    ev = motion[0]
    assert ev.start_s == pytest.approx(3.0, abs=0.6)
    assert ev.end_s == pytest.approx(6.5, abs=0.6)
    assert "left to right" in ev.description
    assert ev.bbox is not None and ev.bbox[1] > 0.45 and ev.bbox[3] < 0.7
    assert not [e for e in result.events if e.type in ("person", "vehicle")]
    assert "motion" in result.tags


def test_sampler_picks_frames_by_timestamp(tmp_path: Path) -> None:
    # The frame index is written into the frame's brightness.
    clip = _write_clip(
        tmp_path / "index.avi", 50, lambda i: np.full((H, W, 3), 4 * i + 20, np.uint8)
    )
    sampler = VideoSampler(clip, 2.0)
    got = [(t, round((float(f.mean()) - 20) / 4)) for t, f in sampler]
    assert [i for _, i in got] == list(range(0, 50, 5))
    assert [t for t, _ in got] == pytest.approx([0.5 * k for k in range(10)])
    assert sampler.duration_s == pytest.approx(5.0, abs=0.01)
    limited = VideoSampler(clip, 1.0, max_frames=3)
    assert [round(t, 3) for t, _ in limited] == [0.0, 1.0, 2.0]
    assert limited.duration_s == pytest.approx(3.0)


def test_unreadable_video_raises(tmp_path: Path, detector: CenterNetDetector) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(ValueError):
        analyze_clip(bad, detector=detector)
    with pytest.raises(ValueError):
        analyze_clip(bad, detector=detector, sample_fps=0)


def test_dominant_colour() -> None:
    img = np.zeros((100, 100, 3), np.uint8)
    img[:] = (0, 0, 200)  # BGR red
    assert dominant_colour(img, (0.1, 0.1, 0.9, 0.9)) == "red"
    img[:] = (230, 230, 230)
    assert dominant_colour(img, (0.1, 0.1, 0.9, 0.9)) == "white"
    img[:] = (200, 60, 20)
    assert dominant_colour(img, (0.1, 0.1, 0.9, 0.9)) == "blue"
    assert dominant_colour(img, (0.1, 0.1, 0.15, 0.15)) is None  # too small to say
    rng = np.random.default_rng(0)
    rainbow = cv2.cvtColor(
        np.stack(
            [rng.integers(0, 180, (100, 100)), np.full((100, 100), 220), np.full((100, 100), 200)],
            axis=2,
        ).astype(np.uint8),
        cv2.COLOR_HSV2BGR,
    )
    assert dominant_colour(rainbow, (0.0, 0.0, 1.0, 1.0)) is None  # no dominant hue


def test_region_and_intervals() -> None:
    assert region_of((0.0, 0.0, 0.2, 0.2)) == "top left"
    assert region_of((0.4, 0.4, 0.6, 0.6)) == "centre"
    assert region_of((0.8, 0.4, 0.9, 0.6)) == "right"
    assert region_of((0.4, 0.8, 0.6, 0.9)) == "bottom centre"
    times = [0.5 * k for k in range(10)]
    present = [False, True, True, False, True, False, False, False, True, True]
    assert _intervals(times, present, 1.0) == [(1, 4), (8, 9)]
    assert _intervals(times, present, 0.5) == [(1, 2), (4, 4), (8, 9)]
    assert _intervals(times, [False] * 10, 1.0) == []
