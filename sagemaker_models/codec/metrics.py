"""Quality metrics on luma: PSNR-Y and MS-SSIM (own implementation, torch).

Luma is BT.601 ``Y`` computed from RGB. Two conventions exist and they differ by a constant
1.3 dB, so the choice is explicit:

* ``"limited"`` (default): ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255``, i.e. the
  Y plane of a BT.601 yuv420p conversion (what ffmpeg's ``psnr`` filter compares when
  x264 is evaluated on yuv420p), with peak 255. This keeps figures comparable with the
  x264 baselines in MODELS.md.
* ``"full"``: ``Y = 0.299 R + 0.587 G + 0.114 B`` (JPEG/full range), peak 255.

PSNR is pooled: one MSE over every pixel of every frame, then ``10 log10(255^2 / MSE)``.
MS-SSIM follows Wang et al. 2003 (11-tap Gaussian, sigma 1.5, 5 scales, weights
0.0448/0.2856/0.3001/0.2363/0.1333, 2x2 average-pool between scales); frames too small for
5 scales use as many scales as fit (weights renormalised), and frames smaller than the
window use a smaller window. It is averaged over frames.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

YRange = Literal["limited", "full"]

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
_Y_COEF = {
    "limited": ((65.481, 128.553, 24.966), 16.0 * 255.0, 255.0),
    "full": ((0.299 * 255, 0.587 * 255, 0.114 * 255), 0.0, 255.0),
}


def rgb_to_y(frames: np.ndarray | torch.Tensor, y_range: YRange = "limited") -> torch.Tensor:
    """uint8 RGB ``[..., 3]`` -> float32 BT.601 luma ``[...]`` on a 0..255 scale."""
    # numpy input converts to float32 in numpy: one copy, and read-only arrays (frames
    # from np.frombuffer) are fine.
    t = (
        torch.from_numpy(np.asarray(frames, dtype=np.float32))
        if isinstance(frames, np.ndarray)
        else torch.as_tensor(frames).float()
    )
    (r, g, b), offset, div = _Y_COEF[y_range]
    return (t[..., 0] * r + t[..., 1] * g + t[..., 2] * b + offset) / div


def mse_y(
    a: np.ndarray | torch.Tensor,
    b: np.ndarray | torch.Tensor,
    y_range: YRange = "limited",
    chunk: int = 32,
) -> float:
    """Mean squared luma error between two uint8 RGB clips ``[T,H,W,3]`` (chunked)."""
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"shape mismatch {tuple(a.shape)} vs {tuple(b.shape)}")
    total, count = 0.0, 0
    for i in range(0, len(a), chunk):
        d = rgb_to_y(a[i : i + chunk], y_range) - rgb_to_y(b[i : i + chunk], y_range)
        total += float(d.double().pow(2).sum())
        count += d.numel()
    return total / max(1, count)


def psnr_from_mse(mse: float, peak: float = 255.0) -> float:
    """PSNR in dB; identical inputs give ``inf`` (reported as 100 dB by the JSON writers)."""
    return float("inf") if mse <= 0 else float(10 * np.log10(peak * peak / mse))


def psnr_y(
    a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor, y_range: YRange = "limited"
) -> float:
    """Pooled PSNR of BT.601 luma between two uint8 RGB clips ``[T,H,W,3]`` (or one frame)."""
    return psnr_from_mse(mse_y(a, b, y_range))


def _gaussian(size: int, sigma: float) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma * sigma))
    return g / g.sum()


def _ssim_cs(
    x: torch.Tensor, y: torch.Tensor, win: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image SSIM and contrast-structure term for [N,1,H,W] luma on a 0..255 scale."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    k = len(win)
    # The five local moments blurred in one grouped, separable convolution pair ('valid',
    # like the paper): one pass over memory instead of ten single-channel convolutions.
    wx = win.view(1, 1, 1, k).expand(5, 1, 1, k)
    wy = win.view(1, 1, k, 1).expand(5, 1, k, 1)
    stack = torch.cat([x, y, x * x, y * y, x * y], dim=1)
    mu_x, mu_y, exx, eyy, exy = F.conv2d(F.conv2d(stack, wx, groups=5), wy, groups=5).unbind(1)
    sxx = exx - mu_x**2
    syy = eyy - mu_y**2
    sxy = exy - mu_x * mu_y
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    ssim = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1) * cs
    return ssim.mean(dim=(1, 2)), cs.mean(dim=(1, 2))


def ms_ssim_y(
    a: np.ndarray | torch.Tensor,
    b: np.ndarray | torch.Tensor,
    y_range: YRange = "limited",
    chunk: int = 16,
) -> float:
    """Mean MS-SSIM over frames of the luma of two uint8 RGB clips ``[T,H,W,3]`` (or frames)."""
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"shape mismatch {tuple(a.shape)} vs {tuple(b.shape)}")
    if torch.as_tensor(a).ndim == 3:
        a, b = a[None], b[None]
    h, w = int(a.shape[1]), int(a.shape[2])
    size = min(11, min(h, w) - (1 - min(h, w) % 2))  # odd window no larger than the frame
    levels = 1
    while levels < 5 and min(h, w) // (2**levels) >= size:
        levels += 1
    weights = torch.tensor(MS_SSIM_WEIGHTS[:levels])
    weights = weights / weights.sum()
    win = _gaussian(size, 1.5 * size / 11)
    scores: list[torch.Tensor] = []
    for i in range(0, len(a), chunk):
        x = rgb_to_y(a[i : i + chunk], y_range)[:, None]
        y = rgb_to_y(b[i : i + chunk], y_range)[:, None]
        terms = []
        for level in range(levels):
            ssim, cs = _ssim_cs(x, y, win)
            # Negative cs (anti-correlated structure) would make fractional powers NaN.
            terms.append((ssim if level == levels - 1 else cs).clamp_min(0))
            if level < levels - 1:
                x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
        stack = torch.stack(terms, dim=1)  # [N, levels]
        scores.append(torch.prod(stack ** weights[None], dim=1))
    return float(torch.cat(scores).mean())
