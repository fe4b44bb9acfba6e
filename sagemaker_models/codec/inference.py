"""SageMaker inference handler for the codec (also run in-process by the local worker).

Contract (SageMaker PyTorch serving / async inference):

* ``model_fn(model_dir)`` -> ``Codec``: loads weights once, ``eval()``, cuda when available.
  ``$SIGHTLINE_CODEC_WEIGHTS`` (folder or ``.pt``) overrides ``model_dir``;
  ``$SIGHTLINE_CODEC_CODEBOOK_ID`` pins a codebook (default: the latest weights there).
  The codec carries the registry of every weights file found, so a decode request for a
  blob written by older weights is served by those weights (``codec.registry``).
  ``$SIGHTLINE_CODEC_THREADS`` sets torch's CPU threads (default: all cores, at most 8).
* ``$SIGHTLINE_CODEC_MODE`` = ``both`` (default) | ``encode`` | ``decode``: what this
  endpoint serves. An encode endpoint refuses decode requests and the other way round, so
  one image can back two endpoints sized for each job (``requirements-decode.txt`` lists
  what a decode-only image needs: no video reader).
* ``input_fn(body, content_type)`` -> ``VideoInput``: ``video/*`` or
  ``application/octet-stream`` bytes, decoded with ffmpeg to uint8 RGB; limits
  (``$SIGHTLINE_CODEC_MAX_FRAMES``, ``..._MAX_PIXELS``, ``..._MAX_VOXELS``) raise
  ``VideoLimitError`` (a ``ValueError``). No temporary file outlives the call.
* ``predict_fn(data, codec)`` -> ``dict``: tokens -> token blob (format v2; v3 with the
  background layer when ``$SIGHTLINE_CODEC_BACKGROUND`` is ``on`` or ``q=N``, see
  ``background``), decode of a sample of the chunk for quality stats, side info.
* ``output_fn(prediction, accept)`` -> JSON bytes::

    {"token_blob_b64": str, "sideinfo_b64": str, "codebook_id": str, "model_id": str,
     "token_hash": "blake3:<hex>", "byte_size": int, "raw_bytes": int, "ratio": float,
     "bpp": float, "quality_stats": {"psnr": float, "ms_ssim": float},
     "frames": int, "fps": float, "width": int, "height": int, "encode_ms": float,
     "decode_ms": float, "tokens_shape": [Tt, Ht, Wt], "time_stride": int,
     "spatial_stride": int, "sideinfo_hash": "blake3:<hex>", "sideinfo_fields": [str]}

  ``raw_bytes`` is the yuv420p size of the input (``W*H*1.5*frames``), ``ratio`` is
  ``raw_bytes / byte_size``, ``bpp`` is ``8 * byte_size / (W*H*frames)``; ``psnr`` is
  pooled PSNR of BT.601 limited-range luma (100.0 when lossless), ``ms_ssim`` the
  mean 5-scale MS-SSIM of luma (see ``metrics``). ``quality_stats`` also says what they
  were measured on: ``sampled`` (bool), ``frames_measured`` and ``frames``. Decoding the
  whole chunk again only to measure it costs as much as encoding it, so by default
  (``$SIGHTLINE_CODEC_QUALITY=sample``) two evenly spaced spans covering about a quarter
  of the token steps are decoded (``$SIGHTLINE_CODEC_QUALITY_FRACTION``); ``full``
  decodes everything, ``off`` reports no quality figures (``psnr``/``ms_ssim`` null).

Side info (``sideinfo_b64``) is a ``sightline.tokenblob.pack_sideinfo`` blob (magic
``SLSI``): float32 arrays ``[Tt, tiles_y, tiles_x]`` per field, one value per token step
and 16x16-token tile, for analytics without decoding:

* ``changed_frac``: share of the tile's tokens whose index differs from the previous step;
* ``latent_delta``: mean squared distance between the codebook vectors of this step's and
  the previous step's tokens (token-space motion energy);
* ``pixel_motion``: mean absolute luma difference between consecutive source frames;
* ``residual_energy``: mean squared luma error of the reconstruction (codec residual),
  NaN on the token steps the quality sample did not decode.

Step 0 has no previous step: its ``changed_frac`` and ``latent_delta`` are 0.

``decode_blob(blob, roi, t0, t1)`` decodes only a region of interest: it reads just the
tiles covering the region plus the decoder's halo (see ``plan_roi``; a v3 blob's
background tiles for the region only) and crops.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import os
import struct
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sagemaker_models.codec import background as bglayer
from sagemaker_models.codec.metrics import ms_ssim_y, psnr_y, rgb_to_y
from sagemaker_models.codec.model import Codec
from sagemaker_models.codec.registry import ENV_WEIGHTS, CodebookRegistry, load_codec
from sagemaker_models.codec.video_io import (
    DEFAULT_MAX_FRAMES,
    DEFAULT_MAX_PIXELS,
    raw_video_input,
    read_frames_from_bytes,
)
from sightline.tokenblob import (
    BlobIndex,
    CorruptBlobError,
    TileKey,
    TokenBlobHeader,
    assemble_reference,
    assemble_region,
    background_tiles_for_box,
    blob_hash,
    pack_sideinfo,
    read_header,
    read_index,
    read_tiles,
)

log = logging.getLogger(__name__)

JSON = "application/json"
MAX_VOXELS = int(os.environ.get("SIGHTLINE_CODEC_MAX_VOXELS", str(1_500_000_000)))
ENV_MODE = "SIGHTLINE_CODEC_MODE"
ENV_THREADS = "SIGHTLINE_CODEC_THREADS"
ENV_QUALITY = "SIGHTLINE_CODEC_QUALITY"
ENV_QUALITY_FRACTION = "SIGHTLINE_CODEC_QUALITY_FRACTION"
ENV_BACKGROUND = "SIGHTLINE_CODEC_BACKGROUND"
MODES = ("both", "encode", "decode")
DEFAULT_QUALITY_FRACTION = 0.25
PSNR_CAP = 100.0  # JSON has no infinity: a lossless result reports this
_SUFFIX = {
    "video/mp4": ".mp4",
    "video/x-msvideo": ".avi",
    "video/avi": ".avi",
    "video/quicktime": ".mov",
    "video/webm": ".webm",
    "video/x-matroska": ".mkv",
    "video/mp2t": ".ts",
    "video/h264": ".h264",
}
SIDEINFO_FIELDS = {
    "changed_frac": "share of tokens whose index differs from the previous token step",
    "latent_delta": "mean squared codebook-vector distance to the previous token step",
    "pixel_motion": "mean |luma(f) - luma(f-1)| over the step's source frames (0..255)",
    "residual_energy": "mean squared luma error of the reconstruction (0..255 scale)",
}


DECODE_CONTENT_TYPE = "application/x-sightline-decode+json"


@dataclass
class DecodeRequest:
    """Decode a region of a token blob: ``roi`` in pixels, times in seconds of the chunk."""

    blob: bytes
    expected_hash: str | None
    roi: tuple[float, float, float, float] | None
    t0: float | None
    t1: float | None
    format: str  # "png" (the first frame) or "mp4"


@dataclass
class VideoInput:
    """Decoded request: frames plus what the response needs about the source."""

    frames: np.ndarray  # uint8 [T,H,W,3]
    fps: float
    source_bytes: int


# --------------------------------------------------------------------------- SageMaker contract


def codec_mode() -> str:
    """What this endpoint serves: ``both`` (default), ``encode`` or ``decode``."""
    mode = (os.environ.get(ENV_MODE) or "both").strip().lower()
    if mode not in MODES:
        raise ValueError(f"{ENV_MODE} must be one of {MODES}, got {mode!r}")
    return mode


def background_params() -> bglayer.BackgroundParams | None:
    """The background layer's settings from ``$SIGHTLINE_CODEC_BACKGROUND``: ``off``
    (default: token blob v2), ``on`` (version 3 with the default quantizer) or ``q=N``
    (on, luma quantizer step N, chroma 2N)."""
    raw = (os.environ.get(ENV_BACKGROUND) or "off").strip().lower()
    if raw in ("off", "0", "false", "no"):
        return None
    if raw in ("on", "1", "true", "yes"):
        return bglayer.BackgroundParams()
    if raw.startswith("q="):
        try:
            q = float(raw[2:])
            return bglayer.BackgroundParams(q_luma=q, q_chroma=2 * q)
        except ValueError as exc:
            raise ValueError(f"{ENV_BACKGROUND}: {exc}") from exc
    raise ValueError(f"{ENV_BACKGROUND} must be off, on or q=N, got {raw!r}")


def cpu_threads() -> int:
    """torch CPU threads: ``$SIGHTLINE_CODEC_THREADS``, else every core (at most 8).

    Measured on vtest.avi (10-s chunk, 768x576, 2-core machine): see the codec README.
    """
    env = os.environ.get(ENV_THREADS)
    if env:
        return max(1, int(env))
    return max(1, min(8, os.cpu_count() or 1))


def model_fn(model_dir: str | None = None) -> Codec:
    """Load the codec once per worker (weights from ``$SIGHTLINE_CODEC_WEIGHTS`` or model_dir).

    The returned codec's ``registry`` knows every weights file found there, so decode
    requests for blobs of older weights are served too.
    """
    mode = codec_mode()
    roots: list[Path] = []
    if os.environ.get(ENV_WEIGHTS):
        roots.append(Path(os.environ[ENV_WEIGHTS]))
    if model_dir:
        roots.append(Path(model_dir))
    registry = CodebookRegistry(roots) if roots else None
    if registry is None or not registry.ids():
        registry = CodebookRegistry()  # fall back to the committed weights
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        torch.set_num_threads(cpu_threads())
    codec = registry.load(os.environ.get("SIGHTLINE_CODEC_CODEBOOK_ID") or None, device)
    codec.registry = registry
    log.info(
        "codec ready: %s %s on %s (%d threads), mode %s",
        codec.model_id,
        codec.codebook_id,
        device,
        torch.get_num_threads(),
        mode,
    )
    return codec


def input_fn(
    request_body: bytes | bytearray | memoryview, content_type: str
) -> VideoInput | DecodeRequest:
    """A video to encode (``video/*``) or a region to decode (``DECODE_CONTENT_TYPE``).

    Raises ValueError when the request is unusable or too big.
    """
    ctype = (content_type or "").split(";")[0].strip().lower()
    mode = codec_mode()
    if ctype == DECODE_CONTENT_TYPE:
        if mode == "encode":
            raise ValueError("this endpoint only encodes (SIGHTLINE_CODEC_MODE=encode)")
        return _decode_request(bytes(request_body))
    if mode == "decode":
        raise ValueError(
            f"this endpoint only decodes (SIGHTLINE_CODEC_MODE=decode): send {DECODE_CONTENT_TYPE}"
        )
    if not (ctype.startswith("video/") or ctype == "application/octet-stream"):
        raise ValueError(f"unsupported content type {content_type!r}: send video/* bytes")
    body = bytes(request_body)
    frames, info = read_frames_from_bytes(
        body,
        suffix=_SUFFIX.get(ctype, ".bin"),
        limit_frames=int(os.environ.get("SIGHTLINE_CODEC_MAX_FRAMES", DEFAULT_MAX_FRAMES)),
        max_pixels=int(os.environ.get("SIGHTLINE_CODEC_MAX_PIXELS", DEFAULT_MAX_PIXELS)),
        max_voxels=int(os.environ.get("SIGHTLINE_CODEC_MAX_VOXELS", MAX_VOXELS)),
    )
    return VideoInput(frames=frames, fps=info.fps, source_bytes=len(body))


def _decode_request(body: bytes) -> DecodeRequest:
    try:
        req = json.loads(body)
        blob = base64.b64decode(req["token_blob_b64"], validate=True)
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"malformed decode request: {exc}") from exc
    fmt = req.get("format", "png")
    if fmt not in ("png", "mp4"):
        raise ValueError("format must be png or mp4")
    roi = req.get("roi")
    return DecodeRequest(
        blob=blob,
        expected_hash=req.get("expected_hash"),
        roi=tuple(float(v) for v in roi) if roi else None,  # type: ignore[arg-type]
        t0=req.get("t0"),
        t1=req.get("t1"),
        format=fmt,
    )


def encode_png(rgb: np.ndarray) -> bytes:
    """uint8 RGB ``[H, W, 3]`` -> PNG bytes (zlib only: a decode image needs no OpenCV)."""
    h, w, _ = rgb.shape
    rows = np.concatenate([np.zeros((h, 1), np.uint8), rgb.reshape(h, w * 3)], axis=1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
        + chunk(b"IEND", b"")
    )


def _predict_decode(req: DecodeRequest, model: Codec) -> dict[str, Any]:
    import subprocess

    t = time.perf_counter()
    same = model.codebook_id == read_header(req.blob).codebook_id
    frames = decode_blob(
        req.blob,
        req.roi,
        req.t0,
        req.t1,
        expected_hash=req.expected_hash,
        codec=model if same else None,
        registry=None if same else getattr(model, "registry", None),
    )
    decode_ms = 1000 * (time.perf_counter() - t)
    n, h, w, _ = frames.shape
    if req.format == "png":
        media, ctype = encode_png(np.ascontiguousarray(frames[0])), "image/png"
    else:
        fps = read_header(req.blob).fps
        # H.264 needs even sizes; pad by one pixel where needed.
        out = subprocess.run(
            [
                "ffmpeg",
                "-v",
                "error",
                *raw_video_input(w, h, fps),
                "-vf",
                "pad=ceil(iw/2)*2:ceil(ih/2)*2",
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-crf",
                "18",
                "-pix_fmt",
                "yuv420p",
                "-movflags",
                "+frag_keyframe+empty_moov",
                "-f",
                "mp4",
                "-",
            ],
            input=np.ascontiguousarray(frames).tobytes(),
            capture_output=True,
            check=False,
        )
        if out.returncode != 0:
            raise ValueError(f"MP4 encoding failed: {out.stderr.decode(errors='replace')[-200:]}")
        media, ctype = out.stdout, "video/mp4"
    return {
        "media": media,
        "content_type": ctype,
        "frames": n,
        "width": w,
        "height": h,
        "decode_ms": decode_ms,
    }


def quality_spans(
    n_steps: int, fraction: float, halo_steps: int, min_saving: float = 0.4
) -> list[tuple[int, int]]:
    """Token-step spans to decode for the quality figures: about ``fraction`` of the steps
    in one or two evenly spaced spans, or every step when sampling would not save at least
    ``min_saving`` of the decode work (the decoder's temporal halo is decoded too)."""
    m = max(1, round(fraction * n_steps))
    parts = 1 if m < 4 else 2
    spans = []
    for i in range(parts):
        length = m // parts + (i < m % parts)
        center = (i + 0.5) * n_steps / parts
        a = max(0, min(n_steps - length, round(center - length / 2)))
        spans.append((a, a + length))
    cost = sum(min(n_steps, b + halo_steps) - max(0, a - halo_steps) for a, b in spans)
    return [(0, n_steps)] if cost > (1 - min_saving) * n_steps else spans


def _measure_quality(
    model: Codec,
    frames: np.ndarray,
    tokens: np.ndarray,
    reference: np.ndarray | None = None,
    background: bglayer.BackgroundCoding | None = None,
) -> tuple[dict[str, Any], list[tuple[int, np.ndarray]]]:
    """PSNR-Y / MS-SSIM of the reconstruction on a sample of token steps (or all, or none).

    Returns the ``quality_stats`` document and the decoded spans ``(first frame, frames)``.
    """
    policy = (os.environ.get(ENV_QUALITY) or "sample").strip().lower()
    n, h, w, _ = frames.shape
    if policy == "off":
        return {"psnr": None, "ms_ssim": None, "sampled": False, "frames_measured": 0}, []
    if policy not in ("sample", "full"):
        raise ValueError(f"{ENV_QUALITY} must be sample, full or off, got {policy!r}")
    tt = tokens.shape[0]
    ts = model.time_stride
    fraction = float(os.environ.get(ENV_QUALITY_FRACTION, DEFAULT_QUALITY_FRACTION))
    spans = [(0, tt)] if policy == "full" else quality_spans(tt, fraction, model.halo[0])
    decoded: list[tuple[int, np.ndarray]] = []
    residual = None if background is None else bglayer.residual_rgb(background, (0, 0, w, h))
    for a, b in spans:
        f0, f1 = a * ts, min(n, b * ts)
        if f0 >= f1:
            continue
        recon = model.decode_region(
            tokens,
            origin=(0, 0, 0),
            grid_dims=tokens.shape,
            pixel_box=(0, 0, w, h),
            frames=(f0, f1),
            frame_size=(h, w),
            n_frames=n,
            reference=reference,
            residual=residual,
        )
        decoded.append((f0, recon))
    src = np.concatenate([frames[f0 : f0 + len(r)] for f0, r in decoded])
    rec = np.concatenate([r for _, r in decoded])
    psnr = psnr_y(src, rec)
    return {
        "psnr": min(psnr, PSNR_CAP),
        "ms_ssim": ms_ssim_y(src, rec),
        "sampled": len(rec) < n,
        "frames_measured": len(rec),
    }, decoded


def predict_fn(data: VideoInput | DecodeRequest, model: Codec) -> dict[str, Any]:
    """Encode to a token blob, decode (a sample of) it back for quality stats, compute side
    info; or decode a requested region."""
    if isinstance(data, DecodeRequest):
        return _predict_decode(data, model)
    frames = data.frames
    n, h, w, _ = frames.shape
    t = time.perf_counter()
    enc = model.encode(frames, fps=data.fps, background=background_params())
    blob = enc.to_blob()
    encode_ms = 1000 * (time.perf_counter() - t)
    t = time.perf_counter()
    quality, decoded = _measure_quality(model, frames, enc.tokens, enc.reference, enc.background)
    quality["frames"] = n
    decode_ms = 1000 * (time.perf_counter() - t)
    token_hash = blob_hash(blob)
    sideinfo = pack_sideinfo(
        compute_sideinfo(
            enc.tokens, frames, decoded, model.embeddings(), model.time_stride, model.spatial_stride
        ),
        time_stride=model.time_stride,
        spatial_stride=model.spatial_stride,
        fps=data.fps,
        token_hash=token_hash,
        descriptions=SIDEINFO_FIELDS,
    )
    raw_bytes = round(w * h * 1.5 * n)
    return {
        "token_blob": blob,
        "sideinfo": sideinfo,
        "codebook_id": model.codebook_id,
        "model_id": model.model_id,
        "token_hash": token_hash,
        "byte_size": len(blob),
        "raw_bytes": raw_bytes,
        "ratio": raw_bytes / len(blob),
        "bpp": 8 * len(blob) / (w * h * n),
        "quality_stats": quality,
        "frames": n,
        "fps": data.fps,
        "width": w,
        "height": h,
        "encode_ms": encode_ms,
        "decode_ms": decode_ms,
        "tokens_shape": list(enc.tokens.shape),
        "time_stride": model.time_stride,
        "spatial_stride": model.spatial_stride,
        "sideinfo_hash": blob_hash(sideinfo),
        "sideinfo_fields": list(SIDEINFO_FIELDS),
    }


def output_fn(prediction: Mapping[str, Any], accept: str | None = JSON) -> bytes:
    """Serialize a prediction as JSON bytes (blobs base64-encoded)."""
    acc = (accept or JSON).split(";")[0].strip().lower()
    if acc not in (JSON, "*/*", "application/*"):
        raise ValueError(f"unsupported accept type {accept!r}: only {JSON}")
    if "media" in prediction:  # a decode: the image or clip, base64 in the same envelope
        doc = {k: v for k, v in prediction.items() if k != "media"}
        doc["media_b64"] = base64.b64encode(prediction["media"]).decode("ascii")
        return json.dumps(doc, separators=(",", ":")).encode()
    doc = {k: v for k, v in prediction.items() if k not in ("token_blob", "sideinfo")}
    doc["token_blob_b64"] = base64.b64encode(prediction["token_blob"]).decode("ascii")
    doc["sideinfo_b64"] = base64.b64encode(prediction["sideinfo"]).decode("ascii")
    return json.dumps(doc, separators=(",", ":")).encode()


# --------------------------------------------------------------------------- side info


def _tile_means(values: torch.Tensor, tile_px: int, grid: tuple[int, int]) -> torch.Tensor:
    """Mean of a [H, W] map per tile of ``tile_px`` cells; cells past the edge are excluded."""
    h, w = values.shape
    ty, tx = grid
    pad = (0, tx * tile_px - w, 0, ty * tile_px - h)
    v = torch.nn.functional.pad(values, pad)
    ones = torch.nn.functional.pad(torch.ones_like(values), pad)
    s = v.view(ty, tile_px, tx, tile_px).sum(dim=(1, 3))
    c = ones.view(ty, tile_px, tx, tile_px).sum(dim=(1, 3))
    return s / c.clamp_min(1)


def compute_sideinfo(
    tokens: np.ndarray,
    frames: np.ndarray,
    recon: np.ndarray | Sequence[tuple[int, np.ndarray]],
    embeddings: np.ndarray,
    time_stride: int,
    spatial_stride: int,
) -> dict[str, np.ndarray]:
    """Per (token step, 16x16-token tile) statistics; see the module docstring.

    ``recon`` is the whole reconstruction, or the decoded spans ``(first frame, frames)``;
    ``residual_energy`` is NaN on steps no span covers entirely.
    """
    tt, ht, wt = tokens.shape
    tile = 16
    grid = (math.ceil(ht / tile), math.ceil(wt / tile))
    out = {name: np.zeros((tt, *grid), np.float32) for name in SIDEINFO_FIELDS}
    spans = [(0, recon)] if isinstance(recon, np.ndarray) else list(recon)
    tok = torch.from_numpy(tokens.astype(np.int64))
    emb = torch.from_numpy(embeddings).float()
    n = len(frames)
    prev_y: torch.Tensor | None = None
    px_tile = tile * spatial_stride
    for t in range(tt):
        if t > 0:
            changed = (tok[t] != tok[t - 1]).float()
            delta = (emb[tok[t]] - emb[tok[t - 1]]).pow(2).sum(-1)
            out["changed_frac"][t] = _tile_means(changed, tile, grid).numpy()
            out["latent_delta"][t] = _tile_means(delta, tile, grid).numpy()
        f0, f1 = t * time_stride, min(n, (t + 1) * time_stride)
        if f0 >= n:  # padding-only step: repeat the statistics of the last real one
            for name in ("pixel_motion", "residual_energy"):
                out[name][t] = out[name][t - 1]
            continue
        y = rgb_to_y(frames[f0:f1], "full")
        diffs = [(y[0] - prev_y).abs()] if prev_y is not None else []
        diffs += [(y[i] - y[i - 1]).abs() for i in range(1, len(y))]
        motion = torch.stack(diffs).mean(0) if diffs else torch.zeros_like(y[0])
        out["pixel_motion"][t] = _tile_means(motion, px_tile, grid).numpy()
        span = next(((s0, r) for s0, r in spans if s0 <= f0 and f1 <= s0 + len(r)), None)
        if span is None:
            out["residual_energy"][t] = np.nan
        else:
            yr = rgb_to_y(span[1][f0 - span[0] : f1 - span[0]], "full")
            residual = (y - yr).pow(2).mean(0)
            out["residual_energy"][t] = _tile_means(residual, px_tile, grid).numpy()
        prev_y = y[-1]
    return out


# --------------------------------------------------------------------------- ROI decode


@dataclass(frozen=True)
class RoiPlan:
    """What to fetch and decode for a region: pixel box, frames and the token window."""

    box: tuple[int, int, int, int]  # x0, y0, x1, y1 (pixels, half-open)
    frames: tuple[int, int]  # f0, f1 (half-open)
    steps: tuple[int, int]  # token window incl. halo (half-open)
    rows: tuple[int, int]
    cols: tuple[int, int]
    tiles: list[TileKey]


def plan_roi(
    header: TokenBlobHeader,
    roi: Sequence[float] | None = None,
    t0: float | None = None,
    t1: float | None = None,
    halo: tuple[int, int] = (2, 3),
) -> RoiPlan:
    """Token window and tiles needed to decode ``roi`` (x0,y0,x1,y1 px) over [t0, t1) s.

    Times are seconds from the start of the blob's chunk. ``halo`` is the decoder's
    (steps, tokens) context (``Codec.halo``): with it the ROI decode equals the full decode
    cropped (to float rounding).
    """
    from sightline.tokenblob import tiles_for_region

    h, w = header.frame_size
    x0, y0, x1, y1 = (
        (0, 0, w, h)
        if roi is None
        else (math.floor(roi[0]), math.floor(roi[1]), math.ceil(roi[2]), math.ceil(roi[3]))
    )
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x0 >= x1 or y0 >= y1:
        raise ValueError(f"roi {roi} is empty or outside the {w}x{h} frame")
    n = header.n_frames
    f0 = 0 if t0 is None else max(0, math.floor(t0 * header.fps + 1e-6))
    f1 = n if t1 is None else min(n, math.ceil(t1 * header.fps - 1e-6))
    if f0 >= f1:
        raise ValueError(f"time range [{t0}, {t1}) holds no frame of this {n}-frame chunk")
    ts, ss = header.time_stride, header.spatial_stride
    tt, ht, wt = header.dims
    hsteps, htok = halo
    steps = (max(0, f0 // ts - hsteps), min(tt, -(-f1 // ts) + hsteps))
    rows = (max(0, y0 // ss - htok), min(ht, -(-y1 // ss) + htok))
    cols = (max(0, x0 // ss - htok), min(wt, -(-x1 // ss) + htok))
    box = (x0, y0, x1, y1)
    tiles = tiles_for_region(header, steps, rows, cols) + background_tiles_for_box(header, box)
    return RoiPlan(box, (f0, f1), steps, rows, cols, tiles)


def _codec_for(
    header: TokenBlobHeader, codec: Codec | None, registry: CodebookRegistry | None
) -> Codec:
    """The decoder a blob names: the given codec, else its codebook_id from the registry."""
    if codec is None:
        codec = registry.load(header.codebook_id) if registry else load_codec(header.codebook_id)
    return codec


def decode_plan(
    index_or_header: BlobIndex | TokenBlobHeader,
    plan: RoiPlan,
    tiles: Mapping[TileKey, np.ndarray],
    codec: Codec | None = None,
    registry: CodebookRegistry | None = None,
) -> np.ndarray:
    """Decode a planned region from its decoded tiles (e.g. fetched by ranged GETs)."""
    header = index_or_header.header if isinstance(index_or_header, BlobIndex) else index_or_header
    codec = _codec_for(header, codec, registry)
    if codec.codebook_id != header.codebook_id:
        raise ValueError(f"blob needs codebook {header.codebook_id}, codec has {codec.codebook_id}")
    sub = assemble_region(header, tiles, plan.steps, plan.rows, plan.cols)
    reference = residual = None
    info = getattr(header, "background", None)
    if info is not None:
        reference = assemble_reference(header, tiles, plan.rows, plan.cols)
        words = {(k[1], k[2]): v for k, v in tiles.items() if k[0] == -2}
        try:
            coding = bglayer.decode_tiles(
                words,
                scales_b64=info.scales,
                q=info.q,
                tile_size=header.tile_shape,
                frame_size=header.frame_size,
            )
        except (bglayer.BackgroundDecodeError, ValueError) as exc:
            raise CorruptBlobError(f"background layer: {exc}") from exc
        residual = bglayer.residual_rgb(coding, plan.box)
    return codec.decode_region(
        sub,
        origin=(plan.steps[0], plan.rows[0], plan.cols[0]),
        grid_dims=header.dims,
        pixel_box=plan.box,
        frames=plan.frames,
        frame_size=header.frame_size,
        n_frames=header.n_frames,
        reference=reference,
        residual=residual,
    )


def decode_blob(
    blob: bytes,
    roi: Sequence[float] | None = None,
    t0: float | None = None,
    t1: float | None = None,
    *,
    expected_hash: str | None = None,
    codec: Codec | None = None,
    registry: CodebookRegistry | None = None,
) -> np.ndarray:
    """Decode a token blob (or only a region of it) to uint8 RGB ``[frames, h, w, 3]``.

    ``roi`` is ``(x0, y0, x1, y1)`` in pixels of the original frame; ``t0``/``t1`` are
    seconds from the chunk start (half-open). Only the tiles covering the region plus the
    decoder's halo are decompressed and decoded; the blob is verified first. The decoder is
    ``codec`` if given, else the one the blob's ``codebook_id`` names (``registry`` or the
    default registry).
    """
    index = read_index(blob)
    header = index.header
    codec = _codec_for(header, codec, registry)
    plan = plan_roi(header, roi, t0, t1, codec.halo)
    tiles = read_tiles(blob, plan.tiles, expected_hash)
    return decode_plan(index, plan, tiles, codec)
