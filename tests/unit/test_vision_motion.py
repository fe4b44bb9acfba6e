"""MOG2 motion over sampled frames: static noise is quiet, moving things are found."""

from __future__ import annotations

import numpy as np
import pytest

from sightline.vision.motion import MotionDetector


def _scene(rng: np.random.Generator, h: int = 240, w: int = 320) -> np.ndarray:
    """A textured static background (gradient plus fixed random texture)."""
    yy, xx = np.mgrid[0:h, 0:w]
    base = 60 + 0.3 * xx + 0.2 * yy
    tex = rng.normal(0, 12, (h, w))
    img = np.clip(base + tex, 0, 255)
    return np.repeat(img[:, :, None], 3, axis=2).astype(np.float32)


def _noisy(bg: np.ndarray, rng: np.random.Generator, sigma: float = 2.0) -> np.ndarray:
    return np.clip(bg + rng.normal(0, sigma, bg.shape), 0, 255).astype(np.uint8)


def test_static_noisy_scene_has_no_foreground() -> None:
    rng = np.random.default_rng(0)
    bg = _scene(rng)
    frames = [_noisy(bg, rng, sigma=3.0) for _ in range(20)]
    results = MotionDetector().analyze(frames)
    assert len(results) == 20
    assert max(r.fg_fraction for r in results) < 0.001
    assert all(r.blobs == [] for r in results)


def test_moving_square_is_found_where_it_is() -> None:
    rng = np.random.default_rng(1)
    bg = _scene(rng)
    frames, truth = [], []
    for k in range(16):
        img = bg.copy()
        x = 20 + 16 * k
        img[100:150, x : x + 30] = 230  # a bright 30x50 object moving right
        frames.append(_noisy(img, rng))
        truth.append((x / 320, 100 / 240, (x + 30) / 320, 150 / 240))
    results = MotionDetector().analyze(frames)
    for r, box in zip(results, truth, strict=True):
        assert r.support(box) > 0.6
        assert r.support((0.0, 0.8, 0.2, 1.0)) == 0.0  # nothing moves down there
        assert len(r.blobs) == 1
        bx = r.blobs[0]
        assert bx[0] == pytest.approx(box[0], abs=0.03)
        assert bx[2] == pytest.approx(box[2], abs=0.03)
        assert 0.01 < r.fg_fraction < 0.04


def test_specks_are_removed_but_objects_kept() -> None:
    rng = np.random.default_rng(2)
    bg = _scene(rng)
    frames = [_noisy(bg, rng) for _ in range(10)]
    # Salt noise: isolated bright pixels in the last frame only.
    speck = frames[-1].copy()
    ys, xs = rng.integers(0, 240, 200), rng.integers(0, 320, 200)
    speck[ys, xs] = 255
    frames[-1] = speck
    res = MotionDetector().analyze(frames)
    assert res[-1].fg_fraction < 0.001


def test_global_change_is_flagged_unreliable() -> None:
    rng = np.random.default_rng(3)
    bg = _scene(rng)
    frames = [_noisy(bg, rng) for _ in range(10)]
    frames.append(_noisy(np.clip(bg + 90, 0, 255), rng))  # lights switched on
    res = MotionDetector().analyze(frames)
    assert res[-1].unreliable
    assert not any(r.unreliable for r in res[:-1])


def test_downscales_large_frames_and_streaming_mode() -> None:
    rng = np.random.default_rng(4)
    md = MotionDetector(work_width=160)
    small = md.prepare(np.zeros((720, 1280, 3), np.uint8))
    assert small.shape == (90, 160, 3)
    bg = _scene(rng)
    for _ in range(15):
        md.apply(_noisy(bg, rng))
    img = bg.copy()
    img[60:180, 100:180] = 250
    r = md.apply(_noisy(img, rng))
    assert r.support((100 / 320, 60 / 240, 180 / 320, 180 / 240)) > 0.5
    md.reset()
    assert md._stream is None
    assert MotionDetector().analyze([]) == []
