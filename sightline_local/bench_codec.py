"""``sightline bench codec``: the learned codec's rate–distortion beside x264 and lossless
gzip/zstd of raw yuv420p, all measured in one run on the same frames.

Per clip and operating point: bits per pixel, PSNR-Y (BT.601 limited range, the
convention that reproduces MODELS.md's x264 figures), MS-SSIM on luma, and encode /
decode frames per second on this machine. Writes ``rd.json``, ``rd.md`` and ``rd.png``.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np

X264_MEDIUM_CRF = (18, 28, 35, 45)
X264_FAST_CRF = (28, 35, 45)
STICKINESS = (0.0, 0.5, 0.8)


def _yuv420p(frames: np.ndarray, fps: float) -> bytes:
    _, h, w, _ = frames.shape
    out = subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-s",
            f"{w}x{h}",
            "-r",
            f"{fps}",
            "-i",
            "-",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "yuv420p",
            "-",
        ],
        input=np.ascontiguousarray(frames).tobytes(),
        capture_output=True,
        check=True,
    )
    return out.stdout


def _x264(
    frames: np.ndarray, fps: float, crf: int, *, fast: bool
) -> tuple[int, np.ndarray, float, float]:
    n, h, w, _ = frames.shape
    opts = ["-preset", "veryfast", "-tune", "zerolatency"] if fast else ["-preset", "medium"]
    raw = _yuv420p(frames, fps)
    t = time.perf_counter()
    enc = subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "yuv420p",
            "-s",
            f"{w}x{h}",
            "-r",
            f"{fps}",
            "-i",
            "-",
            "-c:v",
            "libx264",
            *opts,
            "-crf",
            str(crf),
            "-threads",
            "2",
            "-f",
            "h264",
            "-",
        ],
        input=raw,
        capture_output=True,
        check=True,
    )
    enc_s = time.perf_counter() - t
    t = time.perf_counter()
    dec = subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-f",
            "h264",
            "-i",
            "-",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ],
        input=enc.stdout,
        capture_output=True,
        check=True,
    )
    dec_s = time.perf_counter() - t
    recon = np.frombuffer(dec.stdout, np.uint8).reshape(-1, h, w, 3)[:n]
    return len(enc.stdout), recon, enc_s, dec_s


def run(clips: list[Path], *, frames: int = 300, out_dir: Path) -> list[dict[str, Any]]:
    """Measure every codec on the first ``frames`` frames of each clip; write the report."""
    import zstandard

    from sagemaker_models.codec.registry import load_codec
    from sagemaker_models.codec.video_io import read_frames

    codec = load_codec()
    rows: list[dict[str, Any]] = []
    for clip in clips:
        video, info = read_frames(clip, max_frames=frames, limit_frames=None)
        for stick in STICKINESS:
            t = time.perf_counter()
            enc = codec.encode(video, fps=info.fps, stickiness=stick)
            blob = enc.to_blob()
            enc_s = time.perf_counter() - t
            t = time.perf_counter()
            recon = codec.decode(enc.tokens, enc.frame_size, enc.n_frames)
            dec_s = time.perf_counter() - t
            name = f"sightline@stick{stick:g}"
            rows.append(_row(clip, video, name, len(blob), recon, enc_s, dec_s))
        for fast, crfs in ((False, X264_MEDIUM_CRF), (True, X264_FAST_CRF)):
            for crf in crfs:
                size, recon, enc_s, dec_s = _x264(video, info.fps, crf, fast=fast)
                name = f"x264-{'veryfast-zerolatency' if fast else 'medium'}-crf{crf}"
                rows.append(_row(clip, video, name, size, recon, enc_s, dec_s))
        raw = _yuv420p(video, info.fps)
        t = time.perf_counter()
        gz = gzip.compress(raw, compresslevel=9)
        rows.append(_row(clip, video, "gzip", len(gz), None, time.perf_counter() - t, None))
        t = time.perf_counter()
        zs = zstandard.ZstdCompressor(level=19).compress(raw)
        rows.append(_row(clip, video, "zstd", len(zs), None, time.perf_counter() - t, None))
    _write(rows, out_dir)
    return rows


def _row(
    clip: Path,
    video: np.ndarray,
    name: str,
    nbytes: int,
    recon: np.ndarray | None,
    enc_s: float,
    dec_s: float | None,
) -> dict[str, Any]:
    from sagemaker_models.codec.metrics import ms_ssim_y, psnr_y

    n, h, w, _ = video.shape
    return {
        "clip": clip.name,
        "codec": name,
        "frames": n,
        "width": w,
        "height": h,
        "bytes": nbytes,
        "bpp": round(8 * nbytes / (n * h * w), 5),
        "psnr_y": None if recon is None else round(psnr_y(video, recon), 2),
        "ms_ssim": None if recon is None else round(ms_ssim_y(video, recon), 4),
        "enc_fps": round(n / enc_s, 1),
        "dec_fps": None if dec_s is None else round(n / dec_s, 1),
    }


def _write(rows: list[dict[str, Any]], out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "rd.json").write_text(json.dumps(rows, indent=2) + "\n")
    cols = ["clip", "codec", "bpp", "psnr_y", "ms_ssim", "enc_fps", "dec_fps"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += [
        "| "
        + " | ".join(
            "lossless"
            if r[c] is None and c in ("psnr_y", "ms_ssim")
            else "–"
            if r[c] is None
            else str(r[c])
            for c in cols
        )
        + " |"
        for r in rows
    ]
    (out_dir / "rd.md").write_text("\n".join(lines) + "\n")
    clips = sorted({r["clip"] for r in rows})
    fig, axes = plt.subplots(1, len(clips), figsize=(6 * len(clips), 4.5), squeeze=False)
    for ax, clip in zip(axes[0], clips, strict=True):
        for family, marker in (("sightline", "o"), ("x264-medium", "s"), ("x264-veryfast", "^")):
            pts = sorted(
                (r["bpp"], r["psnr_y"])
                for r in rows
                if r["clip"] == clip and r["codec"].startswith(family) and r["psnr_y"] is not None
            )
            if pts:
                ax.plot(*zip(*pts, strict=True), marker=marker, label=family)
        ax.set_xscale("log")
        ax.set_xlabel("bits per pixel")
        ax.set_ylabel("PSNR-Y (dB)")
        ax.set_title(clip)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "rd.png", dpi=100)
    plt.close(fig)
