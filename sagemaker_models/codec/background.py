"""Background layer: a fixed camera's background at high quality, once per chunk.

The tokens of a fixed camera spend most of their positions on a background that does not
move, and the VQ decoder reproduces it only to about 27 dB PSNR-Y. The background layer
adds, per chunk, a residual image that lifts the background to the quality the rate
allows, and lets the encoder mark every token whose block the background already
reproduces well as *background*:

* encoder: the background ``B`` is the per-pixel temporal median of the chunk; its tokens
  (``reference``, one per position) are the codec's encoding of ``B``; the *base* is the
  decoder's output for those tokens; the residual ``B - base`` (YCbCr, chroma 4:2:0) goes
  through an orthonormal 8x8 DCT and a uniform quantizer (step ``q_luma`` / ``q_chroma``).
  Each token block (``time_stride`` frames x 8 x 8 px) whose luma MSE against the coded
  background ``B^ = base + residual^`` is at most ``skip_mse`` takes the reference token.
* decoder: wherever a token equals its position's reference token, the pixels are ``B^``;
  elsewhere they are the VQ decoder's output.
* coding: the quantized coefficients of each blob tile (8x8 tokens = 64x64 px: 64 luma
  blocks, 16 + 16 chroma blocks), in zigzag order up to the tile's last non-zero one per
  plane, are one ANS stream (``constriction``) under a zero-mean quantized Laplace model
  whose scale is fixed per plane and frequency for the chunk (3 x 64 log-scales in the
  blob header), so every tile is its own byte range and a region decode reads the
  residual of the tiles it shows only.

The residual is per blob tile and the base is a decode of the reference tokens (with the
decoder's halo), so a region decode equals the full decode of the same region (to the
same float rounding as the token decode). Token-space analytics are unchanged: the layer
adds pixels, not tokens.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import numpy as np

CODING = "dct8-ycc420-laplace"
SYMBOL_MIN, SYMBOL_MAX = -1024, 1023
_SCALE_STEPS = 16  # log2 scale quantized in 1/16 steps, one byte each
_MIN_SCALE = 0.02

# BT.601 full-range (JPEG) RGB <-> YCbCr: the layer's colour space and the codec's loss
# (``model.ycbcr_error``) use this one matrix.
RGB2YCC = np.array(
    [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]],
    np.float32,
)
_YCC2RGB = np.linalg.inv(RGB2YCC).astype(np.float32)


@dataclass(frozen=True)
class BackgroundParams:
    """Encoder settings of the layer (the rate-distortion knobs)."""

    q_luma: float = 24.0
    q_chroma: float = 48.0
    skip_mse: float = 150.0  # luma MSE (0..255 scale) under which a block shows B^
    max_frames: int = 48  # frames sampled for the median

    def __post_init__(self) -> None:
        if not (1.0 <= self.q_luma <= 255.0 and 1.0 <= self.q_chroma <= 255.0):
            raise ValueError("quantizer steps must lie in [1, 255]")
        if self.skip_mse < 0:
            raise ValueError("skip_mse must be >= 0")


@dataclass
class BackgroundCoding:
    """The quantized residual of one chunk: DCT coefficients per 8x8 block."""

    luma: np.ndarray  # int16 [Hp/8, Wp/8, 64]
    cb: np.ndarray  # int16 [Hp/16, Wp/16, 64]
    cr: np.ndarray  # int16 [Hp/16, Wp/16, 64]
    q_luma: float
    q_chroma: float

    @property
    def padded_size(self) -> tuple[int, int]:
        """(Hp, Wp): the residual's size in pixels, multiples of 16."""
        return self.luma.shape[0] * 8, self.luma.shape[1] * 8

    def planes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.luma, self.cb, self.cr


def rgb_to_ycc(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(rgb, np.float32) @ RGB2YCC.T


def ycc_to_rgb(ycc: np.ndarray) -> np.ndarray:
    return np.asarray(ycc, np.float32) @ _YCC2RGB.T


def padded_size(h: int, w: int) -> tuple[int, int]:
    """Residual size for an ``h x w`` frame: up to multiples of 16 px (4:2:0, 8x8 DCT)."""
    return -(-h // 16) * 16, -(-w // 16) * 16


def pad_to(img: np.ndarray, hp: int, wp: int) -> np.ndarray:
    """Edge-replicate an image ``[h, w, ...]`` (``h <= hp``, ``w <= wp``) to ``hp x wp``."""
    h, w = img.shape[:2]
    if (h, w) == (hp, wp):
        return img
    return np.pad(img, ((0, hp - h), (0, wp - w)) + ((0, 0),) * (img.ndim - 2), mode="edge")


def coded_background(base: np.ndarray, residual: np.ndarray) -> np.ndarray:
    """``B^``: the base picture plus the dequantized residual (RGB, same size), as uint8.
    The encoder's skip decision and every decoder compute it here, the same way."""
    return np.clip(np.rint(base + residual), 0, 255).astype(np.uint8)


def median_background(frames: np.ndarray, max_frames: int = 48) -> np.ndarray:
    """Per-pixel temporal median of uint8 RGB frames ``[T,H,W,3]`` (at most ``max_frames``
    evenly spaced frames are used) -> uint8 ``[H,W,3]``."""
    import torch

    n = len(frames)
    pick = np.unique(np.linspace(0, n - 1, min(n, max_frames)).round().astype(int))
    sample = torch.from_numpy(np.ascontiguousarray(frames[pick]))
    return sample.median(dim=0).values.numpy()


def _dct(plane: np.ndarray) -> np.ndarray:
    """Plane ``[H, W]`` -> orthonormal DCT of each 8x8 block, ``[H/8, W/8, 64]``."""
    from scipy import fft

    h, w = plane.shape
    blocks = plane.reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3)
    return fft.dctn(blocks, axes=(2, 3), norm="ortho").reshape(h // 8, w // 8, 64)


def _idct(coef: np.ndarray) -> np.ndarray:
    """Inverse of ``_dct``: ``[by, bx, 64]`` -> float32 plane ``[by*8, bx*8]``."""
    from scipy import fft

    by, bx, _ = coef.shape
    blocks = fft.idctn(coef.reshape(by, bx, 8, 8), axes=(2, 3), norm="ortho")
    return blocks.transpose(0, 2, 1, 3).reshape(by * 8, bx * 8).astype(np.float32)


def encode_residual(
    background: np.ndarray, base: np.ndarray, params: BackgroundParams
) -> BackgroundCoding:
    """Quantize ``background - base`` (uint8 / float RGB ``[H,W,3]``, same size)."""
    h, w = background.shape[:2]
    hp, wp = padded_size(h, w)
    diff = rgb_to_ycc(pad_to(background, hp, wp)) - rgb_to_ycc(pad_to(base, hp, wp))
    chroma = diff[..., 1:].reshape(hp // 2, 2, wp // 2, 2, 2).mean((1, 3))

    def quant(plane: np.ndarray, q: float) -> np.ndarray:
        return np.clip(np.rint(_dct(plane) / q), SYMBOL_MIN, SYMBOL_MAX).astype(np.int16)

    return BackgroundCoding(
        luma=quant(diff[..., 0], params.q_luma),
        cb=quant(chroma[..., 0], params.q_chroma),
        cr=quant(chroma[..., 1], params.q_chroma),
        q_luma=params.q_luma,
        q_chroma=params.q_chroma,
    )


def residual_rgb(
    coding: BackgroundCoding, box: tuple[int, int, int, int] | None = None
) -> np.ndarray:
    """The dequantized residual as RGB float32 for a pixel box ``(x0, y0, x1, y1)`` of the
    padded frame (default: all of it). Blocks outside the box are not transformed."""
    hp, wp = coding.padded_size
    x0, y0, x1, y1 = box or (0, 0, wp, hp)
    # Whole 16-px cells around the box (a chroma block's 2x2 upsampling stays inside).
    cy0, cx0, cy1, cx1 = y0 // 16, x0 // 16, -(-y1 // 16), -(-x1 // 16)
    luma = _idct(coding.luma[2 * cy0 : 2 * cy1, 2 * cx0 : 2 * cx1] * coding.q_luma)
    up = []
    for plane in (coding.cb, coding.cr):
        c = _idct(plane[cy0:cy1, cx0:cx1] * coding.q_chroma)
        up.append(np.repeat(np.repeat(c, 2, 0), 2, 1))
    rgb = ycc_to_rgb(np.stack([luma, *up], -1))
    oy, ox = y0 - cy0 * 16, x0 - cx0 * 16
    return rgb[oy : oy + (y1 - y0), ox : ox + (x1 - x0)]


# --------------------------------------------------------------------------- entropy coding


def _model() -> Any:
    import constriction

    return constriction.stream.model.QuantizedLaplace(SYMBOL_MIN, SYMBOL_MAX)


def fit_scales(coding: BackgroundCoding) -> np.ndarray:
    """Per plane and frequency: the Laplace scale (mean |symbol|) as a log2 byte ``[3, 64]``."""
    out = np.empty((3, 64), np.uint8)
    for i, plane in enumerate(coding.planes()):
        mean_abs = np.abs(plane.reshape(-1, 64).astype(np.float64)).mean(0)
        log = np.log2(np.maximum(mean_abs, _MIN_SCALE)) * _SCALE_STEPS + 128
        out[i] = np.clip(np.rint(log), 0, 255).astype(np.uint8)
    return out


def scales_from_bytes(raw: np.ndarray) -> np.ndarray:
    """float64 ``[3, 64]`` Laplace scales from their log2 bytes."""
    return np.exp2((raw.astype(np.float64) - 128) / _SCALE_STEPS)


def pack_scales(raw: np.ndarray) -> str:
    return base64.b64encode(np.asarray(raw, np.uint8).tobytes()).decode()


def unpack_scales(text: str) -> np.ndarray:
    raw = np.frombuffer(base64.b64decode(text, validate=True), np.uint8)
    if raw.size != 3 * 64:
        raise ValueError("background scales must be 3 x 64 bytes")
    return raw.reshape(3, 64)


def tile_blocks(
    tile: tuple[int, int], tile_size: tuple[int, int], padded: tuple[int, int]
) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int]]:
    """Luma and chroma block ranges ``(by0, by1, bx0, bx1)`` of blob tile ``(ty, tx)``.

    A tile of ``th x tw`` tokens at stride 8 covers ``th x tw`` luma blocks and half as
    many chroma blocks each way (tile sizes are even); the last row/column of tiles also
    takes the blocks of the padding to 16 px.
    """
    ty, tx = tile
    th, tw = tile_size
    hp, wp = padded
    ly, lx = hp // 8, wp // 8
    luma = (ty * th, min(ly, (ty + 1) * th), tx * tw, min(lx, (tx + 1) * tw))
    chroma = (
        ty * th // 2,
        min(ly // 2, (ty + 1) * th // 2),
        tx * tw // 2,
        min(lx // 2, (tx + 1) * tw // 2),
    )
    return luma, chroma


def _tile_symbols(
    coding: BackgroundCoding, luma: tuple[int, ...], chroma: tuple[int, ...]
) -> list[np.ndarray]:
    a, b, c, d = luma
    e, f, g, h = chroma
    return [coding.luma[a:b, c:d], coding.cb[e:f, g:h], coding.cr[e:f, g:h]]


def _zigzag() -> np.ndarray:
    """Natural (row-major) indices of an 8x8 block in JPEG zigzag order."""
    order = sorted(
        ((y, x) for y in range(8) for x in range(8)),
        key=lambda p: (p[0] + p[1], p[1] if (p[0] + p[1]) % 2 == 0 else p[0]),
    )
    return np.array([y * 8 + x for y, x in order])


ZIGZAG = _zigzag()


def _lengths(parts: list[np.ndarray]) -> list[int]:
    """Per plane of a tile: how many leading zigzag coefficients are coded (past the last
    non-zero one of any block, all are zero)."""
    out = []
    for p in parts:
        nz = np.flatnonzero(p.reshape(-1, 64)[:, ZIGZAG].any(0))
        out.append(int(nz[-1]) + 1 if len(nz) else 0)
    return out


def _scale_vector(scales: np.ndarray, parts: list[np.ndarray], lengths: list[int]) -> np.ndarray:
    return np.concatenate(
        [
            np.broadcast_to(scales[i][ZIGZAG][:k], (p.size // 64, k)).ravel()
            for i, (p, k) in enumerate(zip(parts, lengths, strict=True))
        ]
    )


def encode_tiles(
    coding: BackgroundCoding, tile_grid: tuple[int, int], tile_size: tuple[int, int]
) -> tuple[np.ndarray, list[np.ndarray]]:
    """(scale bytes ``[3, 64]``, one ``uint32`` word array per tile, row-major; empty for
    a tile whose coefficients are all zero).

    A tile's words: one word with the number of zigzag coefficients coded per block for
    luma, Cb and Cr (a byte each: past them every block of the tile is zero), then the
    ANS stream of those coefficients, block by block, plane by plane."""
    import constriction

    raw = fit_scales(coding)
    scales = scales_from_bytes(raw)
    model = _model()
    out = []
    for ty in range(tile_grid[0]):
        for tx in range(tile_grid[1]):
            parts = _tile_symbols(coding, *tile_blocks((ty, tx), tile_size, coding.padded_size))
            lengths = _lengths(parts)
            if not any(lengths):
                out.append(np.zeros(0, np.uint32))
                continue
            symbols = np.concatenate(
                [
                    p.reshape(-1, 64)[:, ZIGZAG][:, :k].ravel()
                    for p, k in zip(parts, lengths, strict=True)
                ]
            ).astype(np.int32)
            sc = _scale_vector(scales, parts, lengths)
            coder = constriction.stream.stack.AnsCoder()
            coder.encode_reverse(symbols, model, np.zeros_like(sc), sc)
            head = np.array([lengths[0] | lengths[1] << 8 | lengths[2] << 16], np.uint32)
            out.append(np.concatenate([head, coder.get_compressed().astype(np.uint32)]))
    return raw, out


class BackgroundDecodeError(ValueError):
    """A background tile's ANS stream does not decode to exactly its coefficients."""


def decode_tiles(
    tiles: dict[tuple[int, int], np.ndarray],
    *,
    scales_b64: str,
    q: tuple[float, float],
    tile_size: tuple[int, int],
    frame_size: tuple[int, int],
) -> BackgroundCoding:
    """Rebuild the coefficients of the given tiles (``(ty, tx)`` -> uint32 words; others
    stay zero) as a ``BackgroundCoding`` of the whole padded frame."""
    import constriction

    hp, wp = padded_size(*frame_size)
    coding = BackgroundCoding(
        luma=np.zeros((hp // 8, wp // 8, 64), np.int16),
        cb=np.zeros((hp // 16, wp // 16, 64), np.int16),
        cr=np.zeros((hp // 16, wp // 16, 64), np.int16),
        q_luma=float(q[0]),
        q_chroma=float(q[1]),
    )
    scales = scales_from_bytes(unpack_scales(scales_b64))
    model = _model()
    for (ty, tx), words in tiles.items():
        if not len(words):
            continue
        parts = _tile_symbols(coding, *tile_blocks((ty, tx), tile_size, (hp, wp)))
        head = int(words[0])
        lengths = [head & 0xFF, head >> 8 & 0xFF, head >> 16 & 0xFF]
        if head >> 24 or max(lengths) > 64 or not any(lengths):
            raise BackgroundDecodeError(f"background tile {(ty, tx)}: bad length word")
        sc = _scale_vector(scales, parts, lengths)
        try:
            coder = constriction.stream.stack.AnsCoder(np.ascontiguousarray(words[1:], np.uint32))
            symbols = coder.decode(model, np.zeros_like(sc), sc)
            done = coder.is_empty()
        except (ValueError, RuntimeError, AssertionError) as exc:
            raise BackgroundDecodeError(f"background tile {(ty, tx)}: {exc}") from exc
        if not done:
            raise BackgroundDecodeError(f"background tile {(ty, tx)}: words left over")
        i = 0
        for p, k in zip(parts, lengths, strict=True):
            n = p.size // 64 * k
            block = np.zeros((p.size // 64, 64), np.int16)
            if k:
                block[:, ZIGZAG[:k]] = symbols[i : i + n].reshape(-1, k)
            p[...] = block.reshape(p.shape)
            i += n
    return coding


def skip_mask(
    frames: np.ndarray,
    coded_background: np.ndarray,
    strides: tuple[int, int],
    params: BackgroundParams,
) -> np.ndarray:
    """bool ``[Tt, Ht, Wt]``: token blocks whose luma MSE against ``B^`` is <= ``skip_mse``.

    ``frames`` uint8 ``[T,H,W,3]`` already padded to the strides; ``coded_background``
    uint8 ``[H,W,3]`` (same size); ``strides`` = (frames, pixels) per token.
    """
    import torch

    time_stride, ss = strides
    t, h, w, _ = frames.shape
    coef = torch.from_numpy(RGB2YCC[0])  # full-range luma
    bg = torch.from_numpy(np.ascontiguousarray(coded_background)).float() @ coef
    out = []
    for s in range(0, t, time_stride):
        x = torch.from_numpy(np.ascontiguousarray(frames[s : s + time_stride])).float() @ coef
        err = (x - bg).square().mean(0)  # [H, W]
        out.append(err.reshape(h // ss, ss, w // ss, ss).mean((1, 3)) <= params.skip_mse)
    return torch.stack(out).numpy()
