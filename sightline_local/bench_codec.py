"""``sightline bench codec``: the learned codec's rate–distortion beside x264 and lossless
gzip/zstd of raw yuv420p, all measured in one run on the same frames.

Per clip and operating point: bits per pixel, PSNR-Y (BT.601 limited range, the
convention that reproduces MODELS.md's x264 figures), MS-SSIM on luma, and encode /
decode frames per second on this machine. Writes ``rd.json``, ``rd.md`` and ``rd.png``.
The codec's bytes are those of its token blobs as the pipeline stores them (one per 10-s
chunk, header, tile index and digests included); its encode time includes packing them,
its decode time unpacking and verifying them.

``sightline bench codec --roi`` (``roi_benchmark``) measures region-of-interest decode on
a stored chunk: a 10-s chunk is encoded to a token blob, then a quarter of the frame over
one second is decoded through ranged reads (``sightline_local.roi``) at several times and
places; it reports milliseconds, bytes read against the whole blob and the number of
ranged reads, beside a full-frame decode of the same second.
"""

from __future__ import annotations

import gzip
import itertools
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np

from sagemaker_models.codec.video_io import raw_video_input

X264_MEDIUM_CRF = (18, 28, 35, 38, 40, 42, 45, 49, 51)
X264_FAST_CRF = (28, 35, 38, 40, 42, 45, 47, 49, 51)
# Operating points: (stickiness, blob tile size in tokens, temporal window in token steps).
# 8x8 tokens / 2 steps is the default layout (fine ROI reads); 16x16 / 8 steps is the
# coarser v1 grid, which spends fewer bytes on per-tile overhead (rate-oriented).
OPERATING_POINTS = (
    (0.0, 8, 2),
    (0.5, 8, 2),
    (2.0, 8, 2),
    (4.0, 8, 2),
    (4.0, 16, 8),
    (8.0, 16, 8),
)


# Background-layer points (token blob v3): (luma quantizer step, tile, window); chroma
# step 2x luma, stickiness 0.5. Each 10-s chunk is encoded on its own, as the pipeline does.
BACKGROUND_POINTS = (
    (16.0, 8, 2),
    (24.0, 8, 2),
    (32.0, 8, 2),
    (24.0, 16, 8),
)


def point_name(stickiness: float, tile: int, window: int) -> str:
    """``stick<s>`` for the default layout, ``stick<s>-t<tile>w<window>`` otherwise."""
    base = f"stick{stickiness:g}"
    return base if (tile, window) == (8, 2) else f"{base}-t{tile}w{window}"


def _yuv420p(frames: np.ndarray, fps: float) -> bytes:
    _, h, w, _ = frames.shape
    out = subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            *raw_video_input(w, h, fps),
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
            *raw_video_input(w, h, fps, "yuv420p"),
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
        # Points that share a stickiness share the tokens (and so the reconstruction):
        # encode and decode once, then time each layout's packing and unpacking.
        cache: dict[float, tuple[Any, float, np.ndarray, float, dict[str, Any]]] = {}
        for stick, tile, window in OPERATING_POINTS:
            if stick not in cache:
                t = time.perf_counter()
                enc = codec.encode(video, fps=info.fps, stickiness=stick)
                enc_s = time.perf_counter() - t
                t = time.perf_counter()
                recon = codec.decode(enc.tokens, enc.frame_size, enc.n_frames)
                dec_s = time.perf_counter() - t
                cache[stick] = (enc, enc_s, recon, dec_s, _quality(video, recon))
            enc, enc_s, recon, dec_s, quality = cache[stick]
            t = time.perf_counter()
            blob = _chunked_blob(enc, info.fps, tile, window)
            pack_s = time.perf_counter() - t
            t = time.perf_counter()
            _, tokens = _unpack_chunks(blob)
            unpack_s = time.perf_counter() - t
            assert np.array_equal(tokens, enc.tokens)
            name = f"sightline@{point_name(stick, tile, window)}"
            row = _row(clip, video, name, sum(map(len, blob)), None, enc_s + pack_s, None)
            row.update(quality, dec_fps=round(len(video) / (dec_s + unpack_s), 1))
            rows.append(row)
        for q, tile, window in BACKGROUND_POINTS:
            rows.append(_background_row(codec, clip, video, info.fps, q, tile, window))
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


CHUNK_SECONDS = 10.0


def background_point_name(q: float, tile: int, window: int) -> str:
    """``bg-q<step>`` for the default layout, ``bg-q<step>-t<tile>w<window>`` otherwise."""
    base = f"bg-q{q:g}"
    return base if (tile, window) == (8, 2) else f"{base}-t{tile}w{window}"


def _background_row(
    codec: Any, clip: Path, video: np.ndarray, fps: float, q: float, tile: int, window: int
) -> dict[str, Any]:
    """One background-layer point: every 10-s chunk encoded to a version-3 blob (median
    background, residual, reference tokens), then decoded from its blob."""
    from sagemaker_models.codec.background import BackgroundParams
    from sagemaker_models.codec.inference import decode_blob

    params = BackgroundParams(q_luma=q, q_chroma=2 * q)
    step = max(1, round(CHUNK_SECONDS * fps))
    blobs, parts = [], []
    enc_s = dec_s = 0.0
    for f0 in range(0, len(video), step):
        chunk = video[f0 : f0 + step]
        t = time.perf_counter()
        enc = codec.encode(chunk, fps=fps, background=params)
        blobs.append(enc.to_blob(temporal_window=window, tile_size=(tile, tile)))
        enc_s += time.perf_counter() - t
        t = time.perf_counter()
        parts.append(decode_blob(blobs[-1], codec=codec))
        dec_s += time.perf_counter() - t
    recon = np.concatenate(parts)
    name = f"sightline@{background_point_name(q, tile, window)}"
    row = _row(clip, video, name, sum(map(len, blobs)), None, enc_s, None)
    row.update(_quality(video, recon), dec_fps=round(len(video) / dec_s, 1))
    return row


def _chunked_blob(enc: Any, fps: float, tile: int, window: int) -> list[bytes]:
    """The clip's tokens as the pipeline stores them: one blob per 10-s chunk."""
    from dataclasses import replace

    steps = max(1, round(CHUNK_SECONDS * fps / enc.time_stride))
    out = []
    for s0 in range(0, len(enc.tokens), steps):
        part = enc.tokens[s0 : s0 + steps]
        n = min(enc.n_frames - s0 * enc.time_stride, len(part) * enc.time_stride)
        chunk = replace(enc, tokens=part, n_frames=n, fps=fps)
        out.append(chunk.to_blob(temporal_window=window, tile_size=(tile, tile)))
    return out


def _unpack_chunks(blobs: list[bytes]) -> tuple[Any, np.ndarray]:
    from sightline.tokenblob import unpack_tokens

    parts = [unpack_tokens(b) for b in blobs]
    return parts[0][0], np.concatenate([tokens for _, tokens in parts])


def _quality(video: np.ndarray, recon: np.ndarray) -> dict[str, Any]:
    from sagemaker_models.codec.metrics import ms_ssim_y, psnr_y

    return {
        "psnr_y": round(psnr_y(video, recon), 2),
        "ms_ssim": round(ms_ssim_y(video, recon), 4),
    }


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


def interpolate_psnr(rows: list[dict[str, Any]], prefix: str, bpp: float) -> float | None:
    """PSNR-Y of the ``prefix`` family (e.g. ``x264-medium``) at ``bpp``, linear in
    log(bpp) between its two nearest points; None outside the measured range."""
    pts = sorted(
        (r["bpp"], r["psnr_y"])
        for r in rows
        if r["codec"].startswith(prefix) and r["psnr_y"] is not None and r["bpp"] > 0
    )
    for (b0, p0), (b1, p1) in itertools.pairwise(pts):
        if b0 <= bpp <= b1 and b1 > b0:
            w = (np.log(bpp) - np.log(b0)) / (np.log(b1) - np.log(b0))
            return float(p0 + w * (p1 - p0))
    return None


def equal_rate_table(rows: list[dict[str, Any]]) -> list[str]:
    """Markdown lines: each codec point's PSNR-Y minus x264's at the same bpp."""
    out = [
        "PSNR-Y difference to x264 at the same bpp (interpolated in log bpp; "
        "negative: the learned codec is worse)",
        "",
        "| clip | codec | bpp | psnr_y | vs x264-veryfast-zerolatency | vs x264-medium |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        if not r["codec"].startswith("sightline@"):
            continue
        same_clip = [x for x in rows if x["clip"] == r["clip"]]
        cells = []
        for family in ("x264-veryfast-zerolatency", "x264-medium"):
            ref = interpolate_psnr(same_clip, family, r["bpp"])
            cells.append("out of range" if ref is None else f"{r['psnr_y'] - ref:+.2f} dB")
        out.append(
            f"| {r['clip']} | {r['codec']} | {r['bpp']} | {r['psnr_y']} | "
            + " | ".join(cells)
            + " |"
        )
    return out


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
    lines += ["", *equal_rate_table(rows)]
    (out_dir / "rd.md").write_text("\n".join(lines) + "\n")
    clips = sorted({r["clip"] for r in rows})
    fig, axes = plt.subplots(1, len(clips), figsize=(6 * len(clips), 4.5), squeeze=False)
    for ax, clip in zip(axes[0], clips, strict=True):
        families = (
            ("sightline 8x8/2", "o", lambda c: c.startswith("sightline@stick") and "-t" not in c),
            ("sightline 16x16/8", "D", lambda c: c.startswith("sightline@stick") and "-t" in c),
            ("sightline + background layer", "*", lambda c: c.startswith("sightline@bg")),
            ("x264-medium", "s", lambda c: c.startswith("x264-medium")),
            ("x264-veryfast-zerolatency", "^", lambda c: c.startswith("x264-veryfast")),
        )
        for family, marker, member in families:
            pts = sorted(
                (r["bpp"], r["psnr_y"])
                for r in rows
                if r["clip"] == clip and member(r["codec"]) and r["psnr_y"] is not None
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


# --------------------------------------------------------------------------- ROI decode


class _MemoryBlobs:
    """The two BlobStore calls ROI decode makes, over one in-memory blob."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def get_bytes(self, key: str, byte_range: tuple[int, int] | None = None) -> bytes:
        if byte_range is None:
            return self.data
        return self.data[byte_range[0] : byte_range[1] + 1]

    def size(self, key: str) -> int:
        return len(self.data)


def roi_benchmark(
    clips: list[Path], *, seconds: float = 10.0, repeats: int = 3
) -> list[dict[str, Any]]:
    """Quarter-frame ROI decode over 1 s of a ``seconds``-long chunk of each clip.

    One row per clip, blob layer (``tokens``: version 2; ``background``: version 3 with
    the background layer) and region: p50 milliseconds (whole path: prefix, section
    tables, tiles, verification, neural decode), bytes read, blob bytes, their ratio,
    ranged reads, and the p50 of decoding the same second for the whole frame.
    """
    from sagemaker_models.codec.background import BackgroundParams
    from sagemaker_models.codec.registry import load_codec
    from sagemaker_models.codec.video_io import probe, read_frames

    codec = load_codec()
    rows: list[dict[str, Any]] = []
    for clip in clips:
        fps = probe(clip).fps
        video, info = read_frames(clip, max_frames=round(seconds * fps), limit_frames=None)
        fps = info.fps
        for layer, params in (("tokens", None), ("background", BackgroundParams())):
            t = time.perf_counter()
            blob = codec.encode(video, fps=fps, background=params).to_blob()
            enc_s = time.perf_counter() - t
            rows += _roi_rows(clip, codec, blob, layer, enc_s, video.shape, fps, repeats)
    return rows


def _roi_rows(
    clip: Path,
    codec: Any,
    blob: bytes,
    layer: str,
    enc_s: float,
    shape: tuple[int, ...],
    fps: float,
    repeats: int,
) -> list[dict[str, Any]]:
    """``roi_benchmark``'s rows for one blob."""
    rows = []
    n, h, w, _ = shape
    store = _MemoryBlobs(blob)
    dur = n / fps
    starts = [s for s in (2.0, dur / 2 - 0.5, dur - 2.0) if 0 <= s <= dur - 1.0]
    quarters = {
        "bottom-right": (w / 2, h / 2, w / 2, h / 2),
        "top-left": (0.0, 0.0, w / 2, h / 2),
        "centre": (w / 4, h / 4, w / 2, h / 2),
    }

    full_ms = float(np.median([_p50(store, None, t0, codec, repeats).ms for t0 in starts]))
    for name, box in quarters.items():
        for t0 in starts:
            r = _p50(store, box, t0, codec, repeats)
            rows.append(
                {
                    "clip": clip.name,
                    "layer": layer,
                    "size": f"{w}x{h}",
                    "chunk_frames": n,
                    "region": name,
                    "t0": round(t0, 2),
                    "ms": round(r.ms, 1),
                    "bytes_read": r.bytes_read,
                    "blob_bytes": r.blob_bytes,
                    "fraction": round(r.bytes_read / r.blob_bytes, 4),
                    "requests": r.requests,
                    "tiles_read": r.tiles_read,
                    "tiles_total": r.tiles_total,
                    "full_frame_ms": round(full_ms, 1),
                    "encode_s": round(enc_s, 2),
                }
            )
    return rows


def _p50(
    store: _MemoryBlobs,
    region: tuple[float, float, float, float] | None,
    t0: float,
    codec: Any,
    repeats: int,
) -> Any:
    """The median (by time) of ``repeats`` ROI decodes of [t0, t0 + 1) s."""
    from sightline_local.roi import decode_region

    runs = [
        decode_region(store, "chunk", roi=region, t0=t0, t1=t0 + 1.0, codec=codec)
        for _ in range(repeats)
    ]
    runs.sort(key=lambda run: run.ms)
    return runs[len(runs) // 2]


def roi_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of ``roi_benchmark`` rows."""
    cols = ["clip", "layer", "size", "region", "t0", "ms", "full_frame_ms", "bytes_read"]
    cols += ["blob_bytes"]
    cols += ["fraction", "requests"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"
