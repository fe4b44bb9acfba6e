"""PSNR-Y and MS-SSIM on luma."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sagemaker_models.codec.metrics import ms_ssim_y, psnr_from_mse, psnr_y, rgb_to_y


def clip(t=3, h=64, w=80, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 255, w)[None, None, :, None] * np.ones((t, h, 1, 3))
    return np.clip(base + rng.normal(0, 20, (t, h, w, 3)), 0, 255).astype(np.uint8)


def test_luma_conventions():
    white = np.full((1, 1, 3), 255, np.uint8)
    black = np.zeros((1, 1, 3), np.uint8)
    assert float(rgb_to_y(white, "limited")) == pytest.approx(235, abs=1e-3)
    assert float(rgb_to_y(black, "limited")) == pytest.approx(16, abs=1e-3)
    assert float(rgb_to_y(white, "full")) == pytest.approx(255, abs=1e-3)


def test_psnr_known_values():
    a = clip()
    assert psnr_y(a, a) == math.inf
    b = a.copy()
    b[..., :] = np.clip(a.astype(int) + 4, 0, 255)  # +4 on every channel
    # Limited-range luma shifts by 4 * 219/255 where nothing clips.
    assert 25 < psnr_y(a, b, "limited") < 40
    assert psnr_from_mse(1.0) == pytest.approx(48.1308, abs=1e-3)


def test_ms_ssim_identity_and_degradation():
    a = clip(h=192, w=192)
    assert ms_ssim_y(a, a) == pytest.approx(1.0, abs=1e-5)
    noisy = np.clip(a.astype(int) + np.random.default_rng(1).normal(0, 25, a.shape), 0, 255).astype(
        np.uint8
    )
    worse = np.clip(a.astype(int) + np.random.default_rng(1).normal(0, 60, a.shape), 0, 255).astype(
        np.uint8
    )
    s1, s2 = ms_ssim_y(a, noisy), ms_ssim_y(a, worse)
    assert 0 < s2 < s1 < 1


@pytest.mark.parametrize("size", [(144, 176), (40, 40), (9, 12), (1, 1)])
def test_ms_ssim_small_frames_fall_back(size):
    a = clip(t=2, h=size[0], w=size[1])
    b = np.clip(a.astype(int) + 10, 0, 255).astype(np.uint8)
    s = ms_ssim_y(a, b)
    assert np.isfinite(s) and 0 <= s <= 1
    assert ms_ssim_y(a, a) == pytest.approx(1.0, abs=1e-5)


def test_shape_mismatch():
    with pytest.raises(ValueError):
        psnr_y(clip(), clip(t=2))
    with pytest.raises(ValueError):
        ms_ssim_y(clip(), clip(t=2))
