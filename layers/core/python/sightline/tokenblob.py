"""Token blobs: the stored form of a chunk's codec tokens (and its side-info companion).

A token blob holds the discrete codebook indices of one encoded chunk, a ``uint16`` per
token on a ``[Tt, Ht, Wt]`` grid (token steps x token rows x token columns). The grid is
cut into spatial tiles x temporal windows of ``temporal_window`` token steps; each
(window, tile) is stored as its own payload with its own byte range, so a region of
interest can be decoded from a few ranged GETs without fetching the whole blob.

Three format versions exist; writers produce version 2 (version 3 when the codec's
background layer is on), readers accept all three (a blob written by an older model stays
readable, and its ``codebook_id`` still resolves through the codebook registry).

**Version 2** (``layout = "ref-tiles-v2"``, the default): small tiles and entropy coding.

    offset       size    field
    0            4       magic b"SLTB"
    4            2       format version, u16 (= 2)
    6            4       header length N, u32
    10           N       header: compact UTF-8 JSON, a ``TokenBlobHeaderV2``
    10+N         I       section table: zlib of LEB128 varints, two per section
                         (tile-table length, payload length); I = ``header.index_bytes``
    P-32         32      prefix digest: BLAKE3 of bytes [0, P-32), P = 10+N+I+32
    P            ...     sections, contiguous, no gaps; each is
                           4B   digest: first 4 bytes of BLAKE3 of the next field
                           ...  tile-table: zlib of one LEB128 varint (payload length)
                                per tile of the section, row-major
                           ...  the section's tile payloads, in that order
    end-32       32      trailer: BLAKE3 of bytes [0, end-32)

Section 0 is the *reference plane* (one tile per spatial position, key ``(-1, ty, tx)``);
section ``1 + w`` holds window ``w``'s tiles ``(w, ty, tx)``. Splitting the tile index by
section keeps the prefix small: a ranged reader fetches the prefix, then only the tile
tables of the sections it needs, then its tiles. Tiles default to 8x8 tokens (64 px at
stride 8) and windows to 2 token steps, so a quarter-frame region over one second touches
a small share of the bytes.

The reference plane holds, per token position, the token the chunk shows most often (its
mode: the static background of a fixed camera). A window tile codes each token as a class
``P`` (same as the previous step; at the window's first step, same as the reference), ``R``
(same as the reference) or ``L`` (a literal index), with static per-blob class
probabilities in 64 contexts (the classes of the left, upper and previous-step
neighbours; ``header.class_model`` holds 12-bit P and R frequencies per context), entropy
coded with rANS (32-bit state, 16-bit words); literals take ``ceil(log2 codebook_size)``
bits. A window tile whose tokens all equal the reference has an empty payload. A
non-empty payload is a 4-byte digest (the first 4 bytes of BLAKE3 of the rest) + ``u16``
words LE: two words of final rANS state, then the renormalisation words in decoding
order. Each tile decodes from its own bytes plus its reference tile; decoding also checks
that every word is consumed and the rANS state returns to its initial value.

**Version 3** is version 2 plus the codec's *background layer* (``header.background``:
coding ``"dct8-ycc420-laplace"``, quantizer steps ``q`` (luma, chroma) and ``scales``,
base64 of 3 x 64 log2 Laplace scales). The reference plane is then given by the encoder
(the tokens of the chunk's coded background) instead of being the mode, and one more
section follows the last window: one entry per spatial tile, key ``(-2, ty, tx)``, holding
the quantized 8x8 DCT coefficients of the tile's background residual (its luma blocks,
then Cb, then Cr, each in natural order) as a 4-byte digest + ``u32`` LE words of one ANS
stream under that Laplace model (empty: all zero). Readers here verify and return the
words; the codec (``sagemaker_models/codec/background.py``) decodes them. A region decode
reads the background tiles of the pixel box only (no halo).

**Version 1** (``layout = "tiles-16x16-tw"``): 16x16-token tiles, a fixed 20-byte index
entry per tile (u64 offset, u32 length, first 8 bytes of BLAKE3 of the payload), payload =
the tile's row-major ``uint16`` tokens, zlib-compressed (or raw) per tile. Same prefix
digest and trailer.

Integrity, three levels (both versions):

* ``blob_hash(data)`` = ``"blake3:<hex>"`` of the *whole* blob, computed by the writer and
  kept outside (the manifest row's ``hash``); readers given ``expected_hash`` compare it.
* The trailer makes a blob self-verifying without any external hash: every full reader
  (``unpack_tokens``, ``read_tiles``, ``unpack_region``, ``verify_blob``) checks it, so one
  flipped byte anywhere, a truncation or a bad magic raises ``CorruptBlobError``.
* The prefix digest and the per-tile digests serve ranged readers: fetch the prefix
  (``required_prefix_length`` says how much), ``read_index`` verifies it, then each tile's
  bytes fetched by ``tile_byte_range`` are checked by ``decode_tile``/``decode_tiles``
  (v1: against the index; v2: against the digest leading the payload, after the section's
  tile table was checked against its own digest by ``BlobIndex.load_section``). In v2 a
  decoded tile must also bring its rANS state back to the initial value with every word
  consumed, a second check that costs nothing.

The side-info companion (``pack_sideinfo`` / ``unpack_sideinfo``) uses the same framing
with magic ``b"SLSI"``: header JSON (``SideInfoHeader``), then a float32 LE array
``[n_fields, Tt, tiles_y, tiles_x]``, then a 32-byte BLAKE3 trailer. It carries per token
step and 16x16-token tile motion statistics so that analytics run without decoding video.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Final, Literal

import numpy as np
from blake3 import blake3
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sightline.errors import CorruptData

__all__ = [
    "FORMAT_VERSION",
    "LAYOUT",
    "LAYOUT_V2",
    "MAGIC",
    "SIDEINFO_MAGIC",
    "TILE",
    "BackgroundInfo",
    "BackgroundSection",
    "BlobIndex",
    "CorruptBlobError",
    "SideInfoHeader",
    "TileKey",
    "TokenBlobHeader",
    "TokenBlobHeaderV2",
    "assemble_reference",
    "assemble_region",
    "background_tiles_for_box",
    "blob_hash",
    "decode_tile",
    "decode_tiles",
    "pack_sideinfo",
    "pack_tokens",
    "read_header",
    "read_index",
    "read_tiles",
    "required_prefix_length",
    "tile_byte_range",
    "tiles_for_region",
    "unpack_region",
    "unpack_sideinfo",
    "unpack_tokens",
    "verify_blob",
]

MAGIC = b"SLTB"
SIDEINFO_MAGIC = b"SLSI"
FORMAT_VERSION = 2  # what pack_tokens writes by default
SUPPORTED_VERSIONS = (1, 2, 3)
LAYOUT: Final = "tiles-16x16-tw"  # version 1
LAYOUT_V2: Final = "ref-tiles-v2"
TILE: Final = 16  # version 1 tile side (and the side-info tile side)
DEFAULT_TILE_V2: Final = (8, 8)
DEFAULT_WINDOW_V2: Final = 2
DIGEST_LEN = 32
TILE_DIGEST_LEN = 8  # version 1, in the index
INLINE_DIGEST_LEN = 4  # version 2, leading each non-empty payload

_FIXED = struct.Struct("<4sHI")  # magic, version, header length
_ENTRY = np.dtype([("offset", "<u8"), ("length", "<u4"), ("digest", "V8")])
# Hard caps so a forged header cannot make a reader allocate without bound.
_MAX_HEADER = 64 * 1024
_MAX_TOKENS = 1 << 31
_MAX_TILES = 1 << 22

# rANS: 32-bit state in [2^16, 2^32), 16-bit renormalisation words, 12-bit class model.
_RANS_L = 1 << 16
_SCALE = 12
_M = 1 << _SCALE
_CLS_P, _CLS_R, _CLS_L, _NONE = 0, 1, 2, 3
_N_CTX = 64  # (previous-step class, left class, upper class), each of 4 values
_CLS_LEFT, _CLS_UP = 0, 1  # reference plane: same as the left / upper neighbour (else L)
_N_REF_CTX = 16  # reference plane: (left class, upper class)

TileKey = tuple[int, int, int]  # (temporal window, tile row, tile column); window -1 = reference
Range = tuple[int, int]  # half-open [start, stop)


class CorruptBlobError(CorruptData, ValueError):
    """A blob failed its integrity check or is malformed (bad magic, truncated, bad offsets)."""


def _digest(data: bytes | bytearray | memoryview) -> bytes:
    return blake3(data).digest()


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


PosInt = Annotated[int, Field(ge=1)]


class _HeaderBase(BaseModel):
    """Fields and checks both format versions share."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    codebook_id: Annotated[str, Field(min_length=1, max_length=128)]
    model_id: Annotated[str, Field(min_length=1, max_length=128)]
    dims: tuple[PosInt, PosInt, PosInt] = Field(description="token grid [Tt, Ht, Wt]")
    time_stride: PosInt = Field(description="frames per token step")
    spatial_stride: PosInt = Field(description="pixels per token, each axis")
    tile_grid: tuple[PosInt, PosInt] = Field(description="[tiles_y, tiles_x]")
    temporal_window: PosInt = Field(description="token steps per stored window")
    n_windows: PosInt
    frame_size: tuple[PosInt, PosInt] = Field(description="original [H, W] in pixels")
    fps: Annotated[float, Field(gt=0, le=1000)]
    n_frames: PosInt
    dtype: Literal["uint16"] = "uint16"

    @property
    def tile_shape(self) -> tuple[int, int]:
        """(rows, cols) of tokens per spatial tile."""
        raise NotImplementedError

    def _check_grid(self) -> None:
        tt, ht, wt = self.dims
        if tt * ht * wt > _MAX_TOKENS:
            raise ValueError("token grid too large")
        th, tw = self.tile_shape
        if self.tile_grid != (_ceil_div(ht, th), _ceil_div(wt, tw)):
            raise ValueError(f"tile_grid {self.tile_grid} does not cover dims {self.dims}")
        if self.n_windows != _ceil_div(tt, self.temporal_window):
            raise ValueError("n_windows does not match dims and temporal_window")
        h, w = self.frame_size
        s = self.spatial_stride
        if not ((ht - 1) * s < h <= ht * s and (wt - 1) * s < w <= wt * s):
            raise ValueError(f"frame_size {self.frame_size} does not match dims x stride")
        if not (tt - 1) * self.time_stride < self.n_frames <= tt * self.time_stride:
            raise ValueError("n_frames does not match Tt x time_stride")
        if self.n_tiles > _MAX_TILES:
            raise ValueError("too many tiles")

    @property
    def n_reference(self) -> int:
        """Number of reference-plane entries (0 in version 1)."""
        return 0

    @property
    def n_background(self) -> int:
        """Number of background-layer entries (version 3 only)."""
        return 0

    @property
    def n_tiles(self) -> int:
        """Number of payload entries (reference tiles, (window, tile) tiles, background)."""
        per = self.tile_grid[0] * self.tile_grid[1]
        return self.n_reference + self.n_windows * per + self.n_background

    def tile_slices(self, key: TileKey) -> tuple[Range, Range, Range]:
        """Token-grid ranges (steps, rows, cols) covered by tile ``key``.

        A reference tile (window -1) or background tile (window -2) covers no step: its
        step range is ``(0, 0)``.
        """
        tw, ty, tx = key
        lo = -2 if self.n_background else -1 if self.n_reference else 0
        if not (
            lo <= tw < self.n_windows
            and 0 <= ty < self.tile_grid[0]
            and 0 <= tx < self.tile_grid[1]
        ):
            raise KeyError(f"tile {key} outside grid {(self.n_windows, *self.tile_grid)}")
        tt, ht, wt = self.dims
        w = self.temporal_window
        th, tc = self.tile_shape
        steps = (0, 0) if tw < 0 else (tw * w, min(tt, (tw + 1) * w))
        return (
            steps,
            (ty * th, min(ht, (ty + 1) * th)),
            (tx * tc, min(wt, (tx + 1) * tc)),
        )

    def entry_number(self, key: TileKey) -> int:
        """Position of tile ``key`` in the index (reference plane first, then row-major
        over window, row, column, then the background layer)."""
        self.tile_slices(key)  # bounds check
        tw, ty, tx = key
        ny, nx = self.tile_grid
        if tw == -1:
            return ty * nx + tx
        if tw == -2:
            return self.n_reference + self.n_windows * ny * nx + ty * nx + tx
        return self.n_reference + (tw * ny + ty) * nx + tx

    def key_of(self, number: int) -> TileKey:
        """Inverse of ``entry_number``."""
        ny, nx = self.tile_grid
        if number < self.n_reference:
            return -1, number // nx, number % nx
        number -= self.n_reference
        if number >= self.n_windows * ny * nx:
            number -= self.n_windows * ny * nx
            return -2, number // nx, number % nx
        return number // (ny * nx), (number // nx) % ny, number % nx


class TokenBlobHeader(_HeaderBase):
    """The JSON header of a version-1 token blob (validated on write and on every read)."""

    version: Literal[1] = 1
    layout: Literal["tiles-16x16-tw"] = "tiles-16x16-tw"
    tile_size: tuple[Literal[16], Literal[16]] = (16, 16)
    compression: Literal["zlib", "none"] = "zlib"
    codebook_size: Annotated[int, Field(ge=1, le=65536)] | None = None
    tile_digest: Literal["blake3-64"] = "blake3-64"

    @property
    def tile_shape(self) -> tuple[int, int]:
        return TILE, TILE

    @model_validator(mode="after")
    def _consistent(self) -> TokenBlobHeader:
        self._check_grid()
        return self


class BackgroundInfo(BaseModel):
    """Version 3: how the background layer's tiles are coded (see the codec's
    ``background.py``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    coding: Literal["dct8-ycc420-laplace"] = "dct8-ycc420-laplace"
    q: tuple[Annotated[float, Field(ge=1, le=255)], Annotated[float, Field(ge=1, le=255)]] = Field(
        description="quantizer steps (luma, chroma)"
    )
    scales: Annotated[str, Field(min_length=256, max_length=256)] = Field(
        description="base64 of 3 x 64 log2 Laplace scales (luma, Cb, Cr per DCT frequency)"
    )


@dataclass(frozen=True)
class BackgroundSection:
    """What ``pack_tokens`` writes as the background layer: its header info and one
    ``uint32`` ANS word array per spatial tile (row-major; empty = all-zero residual)."""

    coding: str
    q: tuple[float, float]
    scales: str
    tiles: Sequence[np.ndarray]


class TokenBlobHeaderV2(_HeaderBase):
    """The JSON header of a version-2 token blob (reference plane + rANS-coded tiles), or
    of a version-3 blob (the same plus the background layer)."""

    version: Literal[2, 3] = 2
    layout: Literal["ref-tiles-v2"] = "ref-tiles-v2"
    tile_size: tuple[Annotated[int, Field(ge=1, le=64)], Annotated[int, Field(ge=1, le=64)]] = (
        DEFAULT_TILE_V2
    )
    coding: Literal["rans-ref-ctx"] = "rans-ref-ctx"
    codebook_size: Annotated[int, Field(ge=2, le=65536)]
    class_model: Annotated[str, Field(max_length=4096)] = Field(
        description="base64 of 64 x 2 12-bit frequencies (of 4096): P and R per context"
    )
    ref_model: Annotated[str, Field(max_length=1024)] = Field(
        description="base64 of 16 x 2 12-bit frequencies: same-as-left and same-as-upper "
        "per reference-plane context"
    )
    index_bytes: Annotated[int, Field(ge=1, le=1 << 28)]
    tile_digest: Literal["blake3-32-inline"] = "blake3-32-inline"
    background: BackgroundInfo | None = None

    @property
    def tile_shape(self) -> tuple[int, int]:
        return self.tile_size

    @property
    def n_reference(self) -> int:
        return self.tile_grid[0] * self.tile_grid[1]

    @property
    def n_background(self) -> int:
        return self.n_reference if self.background is not None else 0

    @property
    def n_sections(self) -> int:
        """Reference plane, one per window, and the background layer (version 3)."""
        return self.n_windows + 1 + (1 if self.background is not None else 0)

    @property
    def literal_bits(self) -> int:
        """Bits per literal token index."""
        return max(1, (self.codebook_size - 1).bit_length())

    @model_validator(mode="after")
    def _consistent(self) -> TokenBlobHeaderV2:
        self._check_grid()
        if self.temporal_window > 64:
            raise ValueError("temporal_window must be at most 64 in version 2")
        if (self.version == 3) != (self.background is not None):
            raise ValueError("a version-3 blob, and only it, has a background layer")
        if self.background is not None and (self.tile_size[0] % 2 or self.tile_size[1] % 2):
            raise ValueError("the background layer needs an even tile size")
        _class_tables(self.class_model)  # decodes and checks the models
        _class_tables(self.ref_model, _N_REF_CTX)
        return self


AnyHeader = TokenBlobHeader | TokenBlobHeaderV2


@dataclass(frozen=True)
class BlobIndex:
    """A parsed and verified blob prefix: header plus tile index.

    Version 2 keeps its tile lengths in one table per *section* (section 0: the reference
    plane; section ``1 + w``: window ``w``). ``sections`` holds per section
    ``(offset, table_length, payload_length)``; a ranged reader fetches the tables of the
    sections it needs (``section_table_range``) and hands them to ``load_section`` before
    asking for tile byte ranges. ``read_index`` on a whole blob loads every section.
    """

    header: AnyHeader
    entries: np.ndarray  # structured array of _ENTRY, one row per tile
    prefix_length: int  # P: first byte after the prefix
    sections: np.ndarray | None = None  # v2: int64 [n_sections, 3]
    loaded: np.ndarray | None = None  # v2: bool per section, its tile table parsed

    def byte_range(self, key: TileKey) -> tuple[int, int]:
        """(offset, length) of tile ``key``'s payload inside the blob."""
        number = self.header.entry_number(key)
        if self.loaded is not None and not self.loaded[self.section_of(key)]:
            raise KeyError(f"tile {key}: load section {self.section_of(key)}'s table first")
        e = self.entries[number]
        return int(e["offset"]), int(e["length"])

    def section_of(self, key: TileKey) -> int:
        """Section holding tile ``key`` (version 2: 0 = reference plane, 1 + window;
        version 3: the background layer after the last window)."""
        if int(key[0]) == -2:
            return self.header.n_windows + 1
        return int(key[0]) + 1

    def sections_for(self, keys: Iterable[TileKey]) -> list[int]:
        """Sections whose tables a ranged reader needs for ``keys`` (none in version 1)."""
        if self.sections is None:
            return []
        return sorted({self.section_of(k) for k in keys})

    def section_table_range(self, section: int) -> tuple[int, int]:
        """(offset, length) of a version-2 section's tile length table."""
        if self.sections is None:
            raise ValueError("version-1 blobs keep their whole index in the prefix")
        off, table, _ = (int(v) for v in self.sections[section])
        return off, table

    def load_section(self, section: int, table: bytes | memoryview) -> None:
        """Verify a section's tile length table (its leading digest) and record the tiles'
        byte ranges. ``table`` is exactly the bytes at ``section_table_range(section)``."""
        assert self.sections is not None and self.loaded is not None
        header = self.header
        assert isinstance(header, TokenBlobHeaderV2)
        off, table_len, payload_len = (int(v) for v in self.sections[section])
        if len(table) != table_len:
            raise CorruptBlobError(
                f"section {section}: table of {len(table)} bytes, not {table_len}"
            )
        body = bytes(table[INLINE_DIGEST_LEN:])
        if _digest(body)[:INLINE_DIGEST_LEN] != bytes(table[:INLINE_DIGEST_LEN]):
            raise CorruptBlobError(f"section {section}: tile table digest mismatch")
        first, count = _section_entries(header, section)
        try:
            d = zlib.decompressobj()
            raw = d.decompress(body, 5 * count + 1)
        except zlib.error as exc:
            raise CorruptBlobError(f"section {section}: bad tile table: {exc}") from exc
        lengths = _parse_varints(raw, count)
        words = lengths - INLINE_DIGEST_LEN
        word = 4 if section == header.n_windows + 1 else 2  # background: u32 ANS words
        if ((lengths != 0) & ((words < 4) | (words % word != 0))).any():
            raise CorruptBlobError(f"section {section}: implausible tile payload length")
        if section == 0 and (lengths == 0).any():
            raise CorruptBlobError("empty reference tile")
        if int(lengths.sum()) != payload_len:
            raise CorruptBlobError(f"section {section}: tile lengths do not add up")
        start = off + table_len
        self.entries["length"][first : first + count] = lengths
        self.entries["offset"][first : first + count] = start + np.concatenate(
            ([0], np.cumsum(lengths)[:-1])
        )
        self.loaded[section] = True


def _section_entries(header: TokenBlobHeaderV2, section: int) -> tuple[int, int]:
    """(first entry number, entry count) of a version-2 section."""
    per = header.tile_grid[0] * header.tile_grid[1]
    if not 0 <= section < header.n_sections:
        raise KeyError(f"section {section} outside 0..{header.n_sections - 1}")
    return section * per, per


# --------------------------------------------------------------------------- rANS


def _class_tables(model_b64: str, n_ctx: int = _N_CTX) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(freq [n,3], cum [n,3], slot->class lookup [n,4096]) from a packed class model."""
    import base64

    try:
        raw = base64.b64decode(model_b64, validate=True)
    except ValueError as exc:
        raise ValueError(f"class_model is not base64: {exc}") from exc
    if len(raw) != n_ctx * 3:
        raise ValueError(f"a class model must hold {n_ctx} x 2 12-bit frequencies")
    pr = _unpack12(raw).reshape(n_ctx, 2)
    rest = _M - pr.sum(1)
    if (pr < 1).any() or (rest < 1).any():
        raise ValueError("class_model frequencies must be >= 1 and leave room for literals")
    freq = np.concatenate([pr, rest[:, None]], axis=1)
    cum = np.concatenate([np.zeros((n_ctx, 1), np.int64), np.cumsum(freq, 1)[:, :2]], axis=1)
    lut = np.empty((n_ctx, _M), np.uint8)
    for c in range(n_ctx):
        lut[c] = np.repeat(np.arange(3, dtype=np.uint8), freq[c])
    return freq, cum, lut


def _pack12(values: np.ndarray) -> bytes:
    """Pairs of 12-bit values (even count) -> 3 bytes per pair."""
    v = values.astype(np.int64).reshape(-1, 2)
    out = np.stack([v[:, 0] & 0xFF, (v[:, 0] >> 8) | ((v[:, 1] & 0xF) << 4), v[:, 1] >> 4], 1)
    return out.astype(np.uint8).tobytes()


def _unpack12(raw: bytes) -> np.ndarray:
    b = np.frombuffer(raw, np.uint8).astype(np.int64).reshape(-1, 3)
    return np.stack([b[:, 0] | ((b[:, 1] & 0xF) << 8), (b[:, 1] >> 4) | (b[:, 2] << 4)], 1).ravel()


def _quantize_model(counts: np.ndarray) -> np.ndarray:
    """Class counts [n, 3] -> frequencies [n, 3] summing to 4096, each >= 1."""
    counts = counts.astype(np.float64)
    total = counts.sum(1, keepdims=True)
    p = np.where(total > 0, counts / np.maximum(total, 1), 1 / 3)
    freq = np.maximum(1, np.floor(p * (_M - 3)).astype(np.int64))
    for c in range(len(freq)):  # hand the rounding remainder to the likeliest class
        freq[c, int(np.argmax(freq[c]))] += _M - int(freq[c].sum())
    return freq


def _contexts(cls: np.ndarray) -> np.ndarray:
    """Context number ``[S, n]`` of every position of class grids ``[S, t, h, w]``:
    previous-step, left and upper neighbour classes (``_NONE`` outside the tile)."""
    prev = np.full_like(cls, _NONE)
    left = np.full_like(cls, _NONE)
    up = np.full_like(cls, _NONE)
    prev[:, 1:] = cls[:, :-1]
    left[:, :, :, 1:] = cls[:, :, :, :-1]
    up[:, :, 1:] = cls[:, :, :-1]
    return (prev * 16 + left * 4 + up).reshape(len(cls), -1)


def _rans_encode(freq: np.ndarray, cum: np.ndarray, bits: np.ndarray, active: np.ndarray) -> list:
    """Encode S streams in lock step; inputs are ``[S, n]`` (symbol i of stream s).

    Returns per stream its ``uint16`` words: final state (2 words), then the
    renormalisation words in the order the decoder consumes them.
    """
    s_count, n = freq.shape
    x = np.full(s_count, _RANS_L, np.uint64)
    ids: list[np.ndarray] = []
    words: list[np.ndarray] = []
    u16 = np.uint64(0xFFFF)
    for i in range(n - 1, -1, -1):
        a = active[:, i]
        if not a.any():
            continue
        f = freq[:, i].astype(np.uint64)
        b = bits[:, i].astype(np.uint64)
        xmax = f << (np.uint64(32) - b)
        emit = a & (x >= xmax)
        if emit.any():
            ids.append(np.flatnonzero(emit))
            words.append((x[emit] & u16).astype(np.uint16))
            x[emit] >>= np.uint64(16)
        xa, fa = x[a], f[a]
        x[a] = ((xa // fa) << b[a]) + (xa % fa) + cum[a, i].astype(np.uint64)
    all_ids = np.concatenate(ids) if ids else np.zeros(0, np.int64)
    all_words = np.concatenate(words) if words else np.zeros(0, np.uint16)
    order = np.argsort(all_ids, kind="stable")
    counts = np.bincount(all_ids, minlength=s_count)
    per_stream = np.split(all_words[order], np.cumsum(counts)[:-1])
    head = np.stack([(x & u16), (x >> np.uint64(16))], axis=1).astype(np.uint16)
    return [np.concatenate([head[s], per_stream[s][::-1]]) for s in range(s_count)]


class _Streams:
    """Lock-step rANS decoder over S streams held in one word array."""

    def __init__(self, streams: Sequence[np.ndarray]) -> None:
        lengths = np.array([len(w) for w in streams], np.int64)
        if (lengths < 2).any():
            raise CorruptBlobError("rANS stream shorter than its state")
        self.words = np.concatenate([*streams, np.zeros(1, np.uint16)]).astype(np.uint64)
        self.start = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        self.end = self.start + lengths
        self.x = self.words[self.start] | (self.words[self.start + 1] << np.uint64(16))
        self.ptr = self.start + 2
        self.overrun = False

    def _renorm(self, mask: np.ndarray) -> None:
        need = mask & (self.x < _RANS_L)
        if need.any():
            p = self.ptr[need]
            self.overrun |= bool((p >= self.end[need]).any())
            self.x[need] = (self.x[need] << np.uint64(16)) | self.words[
                np.minimum(p, len(self.words) - 1)
            ]
            self.ptr[need] = p + 1

    def classes(
        self, ctx: np.ndarray, freq: np.ndarray, cum: np.ndarray, lut: np.ndarray
    ) -> np.ndarray:
        """Decode one class symbol per stream given its context ``[S]``."""
        slot = (self.x & np.uint64(_M - 1)).astype(np.int64)
        cls = lut[ctx, slot]
        f = freq[ctx, cls].astype(np.uint64)
        self.x = (
            f * (self.x >> np.uint64(_SCALE))
            + slot.astype(np.uint64)
            - cum[ctx, cls].astype(np.uint64)
        )
        self._renorm(np.ones(len(ctx), bool))
        return cls

    def literals(self, active: np.ndarray, bits: int) -> np.ndarray:
        """Decode one ``bits``-bit literal for each active stream (0 elsewhere)."""
        mask = np.uint64((1 << bits) - 1)
        out = np.where(active, self.x & mask, 0).astype(np.int64)
        self.x = np.where(active, self.x >> np.uint64(bits), self.x)
        self._renorm(active)
        return out

    def check_done(self) -> None:
        if self.overrun or not np.array_equal(self.ptr, self.end) or (self.x != _RANS_L).any():
            raise CorruptBlobError("rANS stream does not decode to its end state")


def _tile_mode(tokens: np.ndarray) -> np.ndarray:
    """Most frequent token per position over axis 0 (ties: the smallest index)."""
    s = np.sort(tokens.reshape(len(tokens), -1), axis=0)
    t = len(s)
    idx = np.arange(t)[:, None]
    start = np.zeros(s.shape, np.int64)
    if t > 1:
        start[1:] = np.where(s[1:] != s[:-1], idx[1:], 0)
    start = np.maximum.accumulate(start, axis=0)
    run = idx - start + 1
    best = run.argmax(axis=0)  # first maximal run: the smallest value among ties
    return np.take_along_axis(s, best[None], axis=0)[0].reshape(tokens.shape[1:])


def _classes(tiles: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Classes ``[S, t, h, w]`` of window tiles given their reference tiles ``[S, h, w]``."""
    prev = np.concatenate([ref[:, None], tiles[:, :-1]], axis=1)
    return np.where(tiles == prev, _CLS_P, np.where(tiles == ref[:, None], _CLS_R, _CLS_L)).astype(
        np.int64
    )


def _ref_classes(planes: np.ndarray) -> np.ndarray:
    """Reference-plane classes ``[S, h, w]``: same as the left neighbour, else the upper
    one, else literal (neighbours inside the tile only)."""
    left = np.full_like(planes, -1)
    up = np.full_like(planes, -1)
    left[:, :, 1:] = planes[:, :, :-1]
    up[:, 1:] = planes[:, :-1]
    return np.where(planes == left, _CLS_LEFT, np.where(planes == up, _CLS_UP, _CLS_L)).astype(
        np.int64
    )


def _ref_contexts(cls: np.ndarray) -> np.ndarray:
    """Context number ``[S, n]`` of reference-plane classes ``[S, h, w]``."""
    left = np.full_like(cls, _NONE)
    up = np.full_like(cls, _NONE)
    left[:, :, 1:] = cls[:, :, :-1]
    up[:, 1:] = cls[:, :-1]
    return (left * 4 + up).reshape(len(cls), -1)


def _symbols(
    cls: np.ndarray, values: np.ndarray, ctx: np.ndarray, freq: np.ndarray, bits: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """rANS inputs (freq, cum, bits, active) ``[S, n + max literals]``: the class symbols,
    then the literal values of the ``L`` positions in order."""
    cum = np.concatenate([np.zeros((len(freq), 1), np.int64), np.cumsum(freq, 1)[:, :2]], 1)
    s_count, n = cls.shape
    is_lit = cls == _CLS_L
    n_lit = is_lit.sum(1)
    width = n + int(n_lit.max(initial=0))
    f = np.ones((s_count, width), np.int64)
    c = np.zeros((s_count, width), np.int64)
    b = np.full((s_count, width), bits, np.int64)
    act = np.zeros((s_count, width), bool)
    f[:, :n], c[:, :n], b[:, :n], act[:, :n] = freq[ctx, cls], cum[ctx, cls], _SCALE, True
    order = np.argsort(~is_lit, axis=1, kind="stable")  # literal positions first, in order
    lit_vals = np.take_along_axis(values, order, axis=1)[:, : width - n]
    lit_act = np.arange(width - n)[None] < n_lit[:, None]
    c[:, n:] = np.where(lit_act, lit_vals, 0)
    act[:, n:] = lit_act
    return f, c, b, act


def _varints(values: np.ndarray) -> bytes:
    out = bytearray()
    for v in values.tolist():
        while v >= 0x80:
            out.append((v & 0x7F) | 0x80)
            v >>= 7
        out.append(v)
    return bytes(out)


def _parse_varints(data: bytes, n: int) -> np.ndarray:
    out = np.empty(n, np.int64)
    shift = v = k = 0
    for byte in data:
        v |= (byte & 0x7F) << shift
        if byte & 0x80:
            shift += 7
            if shift > 35:
                raise CorruptBlobError("tile length varint too long")
            continue
        if k >= n:
            raise CorruptBlobError("tile length table longer than the tile count")
        out[k] = v
        k += 1
        v = shift = 0
    if k != n or shift:
        raise CorruptBlobError(f"tile length table holds {k} entries, expected {n}")
    return out


# --------------------------------------------------------------------------- writing


def pack_tokens(
    tokens: np.ndarray,
    *,
    codebook_id: str,
    model_id: str,
    time_stride: int,
    spatial_stride: int,
    frame_size: Sequence[int],
    fps: float,
    n_frames: int,
    temporal_window: int | None = None,
    compression: Literal["zlib", "none"] = "zlib",
    codebook_size: int | None = None,
    version: int = FORMAT_VERSION,
    tile_size: Sequence[int] = DEFAULT_TILE_V2,
    reference: np.ndarray | None = None,
    background: BackgroundSection | None = None,
) -> bytes:
    """Serialize a ``uint16 [Tt, Ht, Wt]`` token grid as a token blob.

    ``frame_size`` is the original ``(H, W)`` in pixels and ``n_frames`` the original frame
    count (both before padding to the strides). ``version`` 2 (default) needs
    ``codebook_size`` and uses ``tile_size`` (token rows, cols) and ``temporal_window``
    (default 2 steps); version 1 uses 16x16 tiles, ``temporal_window`` (default 8) and
    ``compression``. Version 3 is version 2 plus a background layer: ``background`` (its
    coded tiles) and ``reference``, the ``[Ht, Wt]`` reference-token plane the layer was
    coded against (version 2 derives the plane from the tokens). Returns the blob bytes;
    its external hash is ``blob_hash(blob)``.
    """
    arr = np.asarray(tokens)
    if arr.ndim != 3:
        raise ValueError(f"tokens must be 3-D [Tt, Ht, Wt], got shape {arr.shape}")
    if arr.dtype != np.uint16:
        if not np.issubdtype(arr.dtype, np.integer) or (
            arr.size and (arr.min() < 0 or arr.max() > 0xFFFF)
        ):
            raise ValueError(f"tokens must be uint16 indices, got {arr.dtype}")
        arr = arr.astype(np.uint16)
    if codebook_size is not None and arr.size and int(arr.max()) >= codebook_size:
        raise ValueError("token index out of codebook range")
    tt, ht, wt = (int(d) for d in arr.shape)
    common = {
        "codebook_id": codebook_id,
        "model_id": model_id,
        "dims": (tt, ht, wt),
        "time_stride": time_stride,
        "spatial_stride": spatial_stride,
        "frame_size": (int(frame_size[0]), int(frame_size[1])),
        "fps": float(fps),
        "n_frames": int(n_frames),
    }
    if version == 1:
        return _pack_v1(arr, common, temporal_window or 8, compression, codebook_size)
    if version not in (2, 3):
        raise ValueError(f"cannot write token blob version {version}")
    if (version == 3) != (background is not None and reference is not None):
        raise ValueError("version 3, and only it, takes a background layer and reference")
    if codebook_size is None:
        raise ValueError("version 2 needs codebook_size")
    if reference is not None:
        reference = np.asarray(reference)
        if reference.shape != (ht, wt):
            raise ValueError(f"reference plane {reference.shape} is not [Ht, Wt] {(ht, wt)}")
        if int(reference.max(initial=0)) >= codebook_size or int(reference.min(initial=0)) < 0:
            raise ValueError("reference token out of codebook range")
    return _pack_v2(
        arr,
        common,
        temporal_window or DEFAULT_WINDOW_V2,
        (int(tile_size[0]), int(tile_size[1])),
        codebook_size,
        reference,
        background,
    )


def _frame(version: int, header_bytes: bytes, index: bytes, payloads: list[bytes]) -> bytes:
    if len(header_bytes) > _MAX_HEADER:
        raise ValueError("header too large")
    out = bytearray(_FIXED.pack(MAGIC, version, len(header_bytes)))
    out += header_bytes
    out += index
    out += _digest(out)
    for p in payloads:
        out += p
    out += _digest(out)
    return bytes(out)


def _pack_v1(
    arr: np.ndarray,
    common: dict,
    temporal_window: int,
    compression: Literal["zlib", "none"],
    codebook_size: int | None,
) -> bytes:
    tt, ht, wt = arr.shape
    header = TokenBlobHeader(
        **common,
        tile_grid=(_ceil_div(ht, TILE), _ceil_div(wt, TILE)),
        temporal_window=temporal_window,
        n_windows=_ceil_div(tt, temporal_window),
        compression=compression,
        codebook_size=codebook_size,
    )
    header_bytes = header.model_dump_json(exclude_none=True).encode()
    payloads: list[bytes] = []
    le = arr.astype("<u2", copy=False)
    for number in range(header.n_tiles):
        (t0, t1), (y0, y1), (x0, x1) = header.tile_slices(header.key_of(number))
        raw = np.ascontiguousarray(le[t0:t1, y0:y1, x0:x1]).tobytes()
        payloads.append(zlib.compress(raw, 9) if compression == "zlib" else raw)
    prefix_len = _FIXED.size + len(header_bytes) + _ENTRY.itemsize * header.n_tiles + DIGEST_LEN
    entries = np.zeros(header.n_tiles, dtype=_ENTRY)
    offset = prefix_len
    for i, p in enumerate(payloads):
        entries[i] = (offset, len(p), _digest(p)[:TILE_DIGEST_LEN])
        offset += len(p)
    return _frame(1, header_bytes, entries.tobytes(), payloads)


def _tile_groups(header: AnyHeader, keys: Iterable[TileKey]) -> dict[tuple, list[TileKey]]:
    """Keys grouped by tile shape (lock-step coding needs equal shapes)."""
    groups: dict[tuple, list[TileKey]] = {}
    for key in keys:
        (t0, t1), (y0, y1), (x0, x1) = header.tile_slices(key)
        groups.setdefault((t1 - t0, y1 - y0, x1 - x0), []).append(key)
    return groups


def _pack_v2(
    arr: np.ndarray,
    common: dict,
    window: int,
    tile: tuple[int, int],
    codebook_size: int,
    reference: np.ndarray | None = None,
    background: BackgroundSection | None = None,
) -> bytes:
    import base64

    tt, ht, wt = arr.shape
    th, tw = tile
    ny, nx = _ceil_div(ht, th), _ceil_div(wt, tw)
    n_windows = _ceil_div(tt, window)
    tok = arr.astype(np.int64)
    ref = _tile_mode(tok) if reference is None else reference.astype(np.int64)
    bg_info = None
    if background is not None:
        bg_info = BackgroundInfo(
            coding=background.coding,  # type: ignore[arg-type]
            q=background.q,
            scales=background.scales,
        )
        if len(background.tiles) != ny * nx:
            raise ValueError(f"background layer has {len(background.tiles)} tiles, not {ny * nx}")
    # Pass 1: classes and contexts of every window tile, grouped by shape.
    proto = TokenBlobHeaderV2(
        **common,
        tile_size=tile,
        tile_grid=(ny, nx),
        temporal_window=window,
        n_windows=n_windows,
        codebook_size=codebook_size,
        class_model=base64.b64encode(_pack12(np.full((_N_CTX, 2), 1365))).decode(),
        ref_model=base64.b64encode(_pack12(np.full((_N_REF_CTX, 2), 1365))).decode(),
        index_bytes=1,
        version=3 if bg_info else 2,
        background=bg_info,
    )
    window_keys = [
        proto.key_of(i) for i in range(proto.n_reference, proto.n_tiles - proto.n_background)
    ]
    groups = _tile_groups(proto, window_keys)
    counts = np.zeros((_N_CTX, 3), np.int64)
    staged = []
    for keys in groups.values():
        tiles = np.stack([_slice(tok, proto, k) for k in keys])
        refs = np.stack([_slice(ref, proto, k, spatial=True) for k in keys])
        cls = _classes(tiles, refs)
        ctx = _contexts(cls)
        flat = cls.reshape(len(keys), -1)
        np.add.at(counts, (ctx.ravel(), flat.ravel()), 1)
        staged.append((keys, tiles.reshape(len(keys), -1), flat, ctx))
    freq = _quantize_model(counts)
    model = base64.b64encode(_pack12(freq[:, :2])).decode()
    bits = max(1, (codebook_size - 1).bit_length())
    payloads: list[bytes] = [b""] * proto.n_tiles
    # Reference plane: same-as-left / same-as-upper / literal, its own class model.
    ref_keys = [proto.key_of(i) for i in range(proto.n_reference)]
    ref_counts = np.zeros((_N_REF_CTX, 3), np.int64)
    staged_ref = []
    for keys in _tile_groups(proto, ref_keys).values():
        planes = np.stack([_slice(ref, proto, k, spatial=True) for k in keys])
        cls = _ref_classes(planes)
        ctx = _ref_contexts(cls)
        flat = cls.reshape(len(keys), -1)
        np.add.at(ref_counts, (ctx.ravel(), flat.ravel()), 1)
        staged_ref.append((keys, planes.reshape(len(keys), -1), flat, ctx))
    ref_freq = _quantize_model(ref_counts)
    ref_model = base64.b64encode(_pack12(ref_freq[:, :2])).decode()
    for keys, planes, cls, ctx in staged_ref:
        streams = _rans_encode(*_symbols(cls, planes, ctx, ref_freq, bits))
        for k, words in zip(keys, streams, strict=True):
            payloads[proto.entry_number(k)] = _seal(words)
    # Window tiles: class symbols, then the literal indices of the L positions.
    for keys, tiles, cls, ctx in staged:
        static = (cls == _CLS_P).all(1)
        streams = _rans_encode(*_symbols(cls, tiles, ctx, freq, bits))
        for k, words, empty in zip(keys, streams, static, strict=True):
            payloads[proto.entry_number(k)] = b"" if empty else _seal(words)
    if background is not None:
        for i, words in enumerate(background.tiles):
            payloads[proto.entry_number((-2, i // nx, i % nx))] = (
                _seal(np.asarray(words), "<u4") if len(words) else b""
            )
    per = ny * nx
    body: list[bytes] = []
    table_rows = []
    for section in range(proto.n_sections):
        tiles_bytes = payloads[section * per : (section + 1) * per]
        lengths = np.array([len(p) for p in tiles_bytes], np.int64)
        packed = zlib.compress(_varints(lengths), 9)
        table = _digest(packed)[:INLINE_DIGEST_LEN] + packed
        body.append(table)
        body.extend(tiles_bytes)
        table_rows += [len(table), int(lengths.sum())]
    index = zlib.compress(_varints(np.array(table_rows, np.int64)), 9)
    header = proto.model_copy(
        update={"class_model": model, "ref_model": ref_model, "index_bytes": len(index)}
    )
    header = TokenBlobHeaderV2.model_validate(header.model_dump())
    return _frame(header.version, header.model_dump_json(exclude_none=True).encode(), index, body)


def _slice(grid: np.ndarray, header: AnyHeader, key: TileKey, spatial: bool = False) -> np.ndarray:
    (t0, t1), (y0, y1), (x0, x1) = header.tile_slices(key)
    return grid[y0:y1, x0:x1] if spatial else grid[t0:t1, y0:y1, x0:x1]


def _seal(words: np.ndarray, dtype: str = "<u2") -> bytes:
    """A non-empty version-2 payload: inline digest + the words (rANS: ``u16``; the
    background layer's ANS: ``u32``). ``_words`` reads them back."""
    body = words.astype(dtype).tobytes()
    return _digest(body)[:INLINE_DIGEST_LEN] + body


def blob_hash(data: bytes | memoryview) -> str:
    """The external content hash of a blob: ``"blake3:<64 hex>"`` over all its bytes."""
    return "blake3:" + blake3(data).hexdigest()


# --------------------------------------------------------------------------- reading


def required_prefix_length(data: bytes | memoryview) -> int:
    """How many leading bytes a ranged reader needs next to parse the prefix.

    Call with what has been fetched so far (possibly empty): returns 10 until the fixed
    part is there, then 10 + N until the header is there, then P (header + index +
    prefix digest). When ``len(data) >= `` the returned value equals P, ``read_index``
    can run.
    """
    view = memoryview(data)
    if len(view) < _FIXED.size:
        return _FIXED.size
    magic, version, hlen = _FIXED.unpack_from(view, 0)
    _check_fixed(magic, version, hlen)
    if len(view) < _FIXED.size + hlen:
        return _FIXED.size + hlen
    header = _parse_header(view[_FIXED.size : _FIXED.size + hlen], version)
    return _FIXED.size + hlen + _index_length(header) + DIGEST_LEN


def _index_length(header: AnyHeader) -> int:
    if isinstance(header, TokenBlobHeaderV2):
        return header.index_bytes
    return _ENTRY.itemsize * header.n_tiles


def _check_fixed(magic: bytes, version: int, hlen: int) -> None:
    if magic != MAGIC:
        raise CorruptBlobError(f"bad magic {magic!r}, not a token blob")
    if version not in SUPPORTED_VERSIONS:
        raise CorruptBlobError(f"unsupported token blob version {version}")
    if not 0 < hlen <= _MAX_HEADER:
        raise CorruptBlobError(f"implausible header length {hlen}")


def _parse_header(raw: bytes | memoryview, version: int) -> AnyHeader:
    model = TokenBlobHeader if version == 1 else TokenBlobHeaderV2
    try:
        header = model.model_validate(json.loads(bytes(raw).decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError, ValidationError) as exc:
        raise CorruptBlobError(f"malformed token blob header: {exc}") from exc
    if header.version != version:
        raise CorruptBlobError(f"header says version {header.version}, frame {version}")
    return header


def read_index(data: bytes | memoryview) -> BlobIndex:
    """Parse and verify the prefix (header + tile index) from the blob or its first P bytes.

    Checks the magic, version, header schema, the prefix digest and that every index entry
    lies after the prefix, in order and without overlap. Does not read any payload.
    """
    view = memoryview(data)
    # With at least 10 + N bytes present this is P; any shorter input is a truncation.
    need = required_prefix_length(view)
    if len(view) < need:
        raise CorruptBlobError(f"truncated prefix: {len(view)} of {need} bytes")
    if _digest(view[: need - DIGEST_LEN]) != bytes(view[need - DIGEST_LEN : need]):
        raise CorruptBlobError("prefix digest mismatch (header or tile index corrupt)")
    _, version, hlen = _FIXED.unpack_from(view, 0)
    header = _parse_header(view[_FIXED.size : _FIXED.size + hlen], version)
    start = _FIXED.size + hlen
    raw_index = view[start : start + _index_length(header)]
    if isinstance(header, TokenBlobHeaderV2):
        n_sections = header.n_sections
        try:
            d = zlib.decompressobj()
            table = d.decompress(bytes(raw_index), 10 * n_sections + 1)
        except zlib.error as exc:
            raise CorruptBlobError(f"bad section table: {exc}") from exc
        rows = _parse_varints(table, 2 * n_sections).reshape(n_sections, 2)
        if (rows[:, 0] < INLINE_DIGEST_LEN + 1).any():
            raise CorruptBlobError("implausible section table length")
        sizes = rows.sum(1)
        offsets = need + np.concatenate(([0], np.cumsum(sizes)[:-1]))
        index = BlobIndex(
            header=header,
            entries=np.zeros(header.n_tiles, dtype=_ENTRY),
            prefix_length=need,
            sections=np.stack([offsets, rows[:, 0], rows[:, 1]], axis=1),
            loaded=np.zeros(n_sections, bool),
        )
        end = int(offsets[-1] + sizes[-1])
        if len(view) >= end:  # the whole blob (or at least all sections): load every table
            for s in range(n_sections):
                off, length = index.section_table_range(s)
                index.load_section(s, view[off : off + length])
        return index
    entries = np.frombuffer(raw_index, dtype=_ENTRY)
    offsets = entries["offset"].astype(np.int64)
    lengths = entries["length"].astype(np.int64)
    expected = need + np.concatenate(([0], np.cumsum(lengths)[:-1]))
    if (entries["offset"] > np.uint64(1 << 62)).any() or not np.array_equal(offsets, expected):
        raise CorruptBlobError("tile index offsets are not contiguous after the prefix")
    return BlobIndex(header=header, entries=entries, prefix_length=need)


def read_header(data: bytes | memoryview) -> AnyHeader:
    """The verified header of a blob (or of its prefix: the prefix digest is checked)."""
    return read_index(data).header


def verify_blob(data: bytes | memoryview, expected_hash: str | None = None) -> BlobIndex:
    """Verify a whole blob: external hash (if given), trailer, prefix and payload bounds."""
    view = memoryview(data)
    if expected_hash is not None:
        if not (expected_hash.startswith("blake3:") and len(expected_hash) == 71):
            raise ValueError(f"expected_hash must be 'blake3:<64 hex>', got {expected_hash!r}")
        if blob_hash(view) != expected_hash.lower():
            raise CorruptBlobError("blob hash mismatch")
    if len(view) < _FIXED.size + DIGEST_LEN:
        raise CorruptBlobError(f"truncated blob ({len(view)} bytes)")
    if bytes(view[:4]) != MAGIC:
        raise CorruptBlobError(f"bad magic {bytes(view[:4])!r}, not a token blob")
    if _digest(view[:-DIGEST_LEN]) != bytes(view[-DIGEST_LEN:]):
        raise CorruptBlobError("trailer digest mismatch (blob corrupt or truncated)")
    index = read_index(view)
    if index.sections is not None:
        end = index.prefix_length + int(index.sections[:, 1:].sum())
        if index.loaded is None or not index.loaded.all():
            raise CorruptBlobError("payload section does not end at the trailer")
    else:
        end = index.prefix_length + int(index.entries["length"].astype(np.int64).sum())
    if end != len(view) - DIGEST_LEN:
        raise CorruptBlobError("payload section does not end at the trailer")
    return index


def tile_byte_range(
    source: bytes | memoryview | BlobIndex, t_window: int, ty: int, tx: int
) -> tuple[int, int]:
    """(offset, length) of one tile payload: fetch ``bytes[offset : offset + length]``.

    ``source`` is a ``BlobIndex`` or the blob (or its verified prefix) as bytes.
    """
    index = source if isinstance(source, BlobIndex) else read_index(source)
    return index.byte_range((t_window, ty, tx))


def _check_payload(index: BlobIndex, key: TileKey, payload: bytes | memoryview) -> None:
    entry = index.entries[index.header.entry_number(key)]
    if len(payload) != int(entry["length"]):
        raise CorruptBlobError(
            f"tile {key}: got {len(payload)} bytes, index says {int(entry['length'])}"
        )
    if isinstance(index.header, TokenBlobHeaderV2):
        if len(payload) and _digest(payload[INLINE_DIGEST_LEN:])[:INLINE_DIGEST_LEN] != bytes(
            payload[:INLINE_DIGEST_LEN]
        ):
            raise CorruptBlobError(f"tile {key}: digest mismatch")
    elif _digest(payload)[:TILE_DIGEST_LEN] != bytes(entry["digest"]):
        raise CorruptBlobError(f"tile {key}: digest mismatch")


def decode_tile(
    index: BlobIndex,
    key: TileKey,
    payload: bytes | memoryview,
    reference: bytes | memoryview | None = None,
) -> np.ndarray:
    """Check one tile payload against its digest and return its ``uint16`` tokens.

    This is the ranged-read path: ``payload`` is exactly the bytes at
    ``tile_byte_range(index, *key)``. In version 2 a window tile also needs its reference
    tile's payload (``reference``, the bytes of key ``(-1, ty, tx)``); a reference tile
    decodes to its ``[rows, cols]`` plane. ``decode_tiles`` does many tiles at once.
    """
    payloads = {key: payload}
    if isinstance(index.header, TokenBlobHeaderV2) and key[0] >= 0:
        if reference is None:
            raise ValueError("a version-2 window tile needs its reference tile's payload")
        payloads[(-1, key[1], key[2])] = reference
    return decode_tiles(index, payloads)[key]


def decode_tiles(
    index: BlobIndex, payloads: Mapping[TileKey, bytes | memoryview]
) -> dict[TileKey, np.ndarray]:
    """Check and decode many tile payloads (each exactly its ``tile_byte_range`` bytes).

    Version 2 window tiles need the reference tile ``(-1, ty, tx)`` of their position in
    ``payloads`` too; tiles of equal shape decode in lock step (fast in numpy).
    """
    header = index.header
    keys = [(int(k[0]), int(k[1]), int(k[2])) for k in payloads]
    for key, payload in zip(keys, payloads.values(), strict=True):
        _check_payload(index, key, payload)
    data = dict(zip(keys, payloads.values(), strict=True))
    if isinstance(header, TokenBlobHeaderV2):
        return _decode_v2(header, data)
    out = {}
    for key in keys:
        out[key] = _decode_v1(header, key, data[key])
    return out


def _decode_v1(header: TokenBlobHeader, key: TileKey, payload: bytes | memoryview) -> np.ndarray:
    (t0, t1), (y0, y1), (x0, x1) = header.tile_slices(key)
    shape = (t1 - t0, y1 - y0, x1 - x0)
    n_bytes = 2 * math.prod(shape)
    raw: bytes | memoryview = payload
    if header.compression == "zlib":
        try:
            d = zlib.decompressobj()
            raw = d.decompress(bytes(payload), n_bytes + 1)
        except zlib.error as exc:
            raise CorruptBlobError(f"tile {key}: bad zlib stream: {exc}") from exc
    if len(raw) != n_bytes:
        raise CorruptBlobError(f"tile {key}: {len(raw)} token bytes, expected {n_bytes}")
    tokens = np.frombuffer(raw, dtype="<u2").reshape(shape).astype(np.uint16)
    if (
        header.codebook_size is not None
        and tokens.size
        and int(tokens.max()) >= header.codebook_size
    ):
        raise CorruptBlobError(f"tile {key}: token index out of codebook range")
    return tokens


def _words(payload: bytes | memoryview, dtype: str = "<u2") -> np.ndarray:
    return np.frombuffer(bytes(payload[INLINE_DIGEST_LEN:]), dtype)


def _decode_v2(
    header: TokenBlobHeaderV2, data: Mapping[TileKey, bytes | memoryview]
) -> dict[TileKey, np.ndarray]:
    out: dict[TileKey, np.ndarray] = {}
    bits = header.literal_bits
    for k in data:
        if k[0] == -2:  # background layer: the ANS words, decoded by the codec
            out[k] = _words(data[k], "<u4").astype(np.uint32)
    ref_keys = [k for k in data if k[0] == -1]
    if ref_keys:
        rfreq, rcum, rlut = _class_tables(header.ref_model, _N_REF_CTX)
    for shape, keys in _tile_groups(header, ref_keys).items():
        planes = _decode_reference_tiles(
            [_words(data[k]) for k in keys], shape[1:], bits, rfreq, rcum, rlut
        )
        for i, k in enumerate(keys):
            out[k] = planes[i]
    window_keys = [k for k in data if k[0] >= 0]
    missing = {(-1, k[1], k[2]) for k in window_keys} - set(out)
    if missing:
        raise KeyError(f"reference tiles {sorted(missing)} are needed but were not given")
    if window_keys:
        freq, cum, lut = _class_tables(header.class_model)
    for shape, keys in _tile_groups(header, window_keys).items():
        t, h, w = shape
        refs = np.stack([out[(-1, k[1], k[2])] for k in keys])
        nonempty = np.array([len(data[k]) > 0 for k in keys])
        tiles = np.broadcast_to(refs[:, None], (len(keys), t, h, w)).copy()
        sel = np.flatnonzero(nonempty)
        if len(sel):
            tiles[sel] = _decode_window_tiles(
                [_words(data[keys[i]]) for i in sel], refs[sel], shape, bits, freq, cum, lut
            )
        for i, k in enumerate(keys):
            out[k] = tiles[i]
    for k, v in out.items():
        if k[0] == -2:
            continue
        if v.size and int(v.max()) >= header.codebook_size:
            raise CorruptBlobError(f"tile {k}: token index out of codebook range")
        out[k] = v.astype(np.uint16)
    return out


def _decode_literals(streams: _Streams, cls: np.ndarray, bits: int) -> np.ndarray:
    """Literal values placed at the ``L`` positions of class rows ``[S, n]`` (0 elsewhere)."""
    s_count = len(cls)
    is_lit = cls == _CLS_L
    n_lit = is_lit.sum(1)
    lit = np.zeros((s_count, max(1, int(n_lit.max(initial=0)))), np.int64)
    for j in range(int(n_lit.max(initial=0))):
        lit[:, j] = streams.literals(j < n_lit, bits)
    streams.check_done()
    values = np.zeros_like(cls)
    rank = np.cumsum(is_lit, axis=1) - 1
    values[is_lit] = lit[np.nonzero(is_lit)[0], rank[is_lit]]
    return values


def _decode_reference_tiles(
    streams_words: list[np.ndarray],
    shape: tuple[int, int],
    bits: int,
    freq: np.ndarray,
    cum: np.ndarray,
    lut: np.ndarray,
) -> np.ndarray:
    h, w = shape
    s_count = len(streams_words)
    streams = _Streams(streams_words)
    cls = np.full((s_count, h, w), _NONE, np.int64)
    for y in range(h):
        for x in range(w):
            left = cls[:, y, x - 1] if x else _NONE
            up = cls[:, y - 1, x] if y else _NONE
            ctx = np.broadcast_to(left * 4 + up, (s_count,))
            cls[:, y, x] = streams.classes(ctx, freq, cum, lut)
    if (cls[:, :, 0] == _CLS_LEFT).any() or (cls[:, 0, :] == _CLS_UP).any():
        raise CorruptBlobError("reference tile refers to a neighbour outside the tile")
    values = _decode_literals(streams, cls.reshape(s_count, -1), bits).reshape(s_count, h, w)
    planes = np.zeros((s_count, h, w), np.int64)
    for y in range(h):
        for x in range(w):
            c = cls[:, y, x]
            left = planes[:, y, x - 1] if x else 0
            up = planes[:, y - 1, x] if y else 0
            planes[:, y, x] = np.where(
                c == _CLS_LEFT, left, np.where(c == _CLS_UP, up, values[:, y, x])
            )
    return planes


def _decode_window_tiles(
    streams_words: list[np.ndarray],
    refs: np.ndarray,
    shape: tuple[int, int, int],
    bits: int,
    freq: np.ndarray,
    cum: np.ndarray,
    lut: np.ndarray,
) -> np.ndarray:
    t, h, w = shape
    s_count = len(streams_words)
    streams = _Streams(streams_words)
    cls = np.full((s_count, t, h, w), _NONE, np.int64)
    for i in range(t):
        for y in range(h):
            for x in range(w):
                prev = cls[:, i - 1, y, x] if i else _NONE
                left = cls[:, i, y, x - 1] if x else _NONE
                up = cls[:, i, y - 1, x] if y else _NONE
                ctx = np.broadcast_to(prev * 16 + left * 4 + up, (s_count,))
                cls[:, i, y, x] = streams.classes(ctx, freq, cum, lut)
    values = _decode_literals(streams, cls.reshape(s_count, -1), bits).reshape(s_count, t, h, w)
    tiles = np.empty((s_count, t, h, w), np.int64)
    prev_tok = refs.astype(np.int64)
    for i in range(t):
        c = cls[:, i]
        tiles[:, i] = np.where(c == _CLS_P, prev_tok, np.where(c == _CLS_R, refs, values[:, i]))
        prev_tok = tiles[:, i]
    return tiles


def read_tiles(
    data: bytes | memoryview, tiles: Iterable[TileKey], expected_hash: str | None = None
) -> dict[TileKey, np.ndarray]:
    """Verify the blob, then decode only the listed ``(t_window, tile_y, tile_x)`` tiles.

    In version 2 the reference tiles of the listed positions are read too (they are part
    of what ``tiles_for_region`` lists); the result holds exactly the listed keys.
    """
    view = memoryview(data)
    index = verify_blob(view, expected_hash)
    wanted = [(int(k[0]), int(k[1]), int(k[2])) for k in tiles]
    needed = set(wanted)
    if isinstance(index.header, TokenBlobHeaderV2):
        needed |= {(-1, k[1], k[2]) for k in wanted if k[0] >= 0}
    payloads = {}
    for key in sorted(needed):
        off, length = index.byte_range(key)
        payloads[key] = view[off : off + length]
    decoded = decode_tiles(index, payloads)
    return {k: decoded[k] for k in wanted}


def unpack_tokens(
    data: bytes | memoryview, expected_hash: str | None = None
) -> tuple[AnyHeader, np.ndarray]:
    """Verify and decode a whole blob: returns ``(header, tokens uint16 [Tt, Ht, Wt])``."""
    view = memoryview(data)
    index = verify_blob(view, expected_hash)
    header = index.header
    tokens = np.empty(header.dims, dtype=np.uint16)
    payloads = {}
    for number in range(header.n_tiles):
        key = header.key_of(number)
        off, length = index.byte_range(key)
        payloads[key] = view[off : off + length]
    for key, tile in decode_tiles(index, payloads).items():
        if key[0] < 0:
            continue
        (t0, t1), (y0, y1), (x0, x1) = header.tile_slices(key)
        tokens[t0:t1, y0:y1, x0:x1] = tile
    return header, tokens


def _clip_range(r: Range | None, n: int, what: str) -> Range:
    if r is None:
        return 0, n
    a, b = max(0, int(r[0])), min(n, int(r[1]))
    if a >= b:
        raise ValueError(f"empty or out-of-grid {what} range {r} (grid size {n})")
    return a, b


def tiles_for_region(
    header: AnyHeader,
    steps: Range | None = None,
    rows: Range | None = None,
    cols: Range | None = None,
) -> list[TileKey]:
    """Tiles covering a token-grid region (half-open ranges; ``None`` = whole axis).

    In version 2 the list starts with the reference tiles ``(-1, ty, tx)`` of the region's
    positions, which the window tiles need to decode.
    """
    t0, t1 = _clip_range(steps, header.dims[0], "steps")
    y0, y1 = _clip_range(rows, header.dims[1], "rows")
    x0, x1 = _clip_range(cols, header.dims[2], "cols")
    w = header.temporal_window
    th, tc = header.tile_shape
    spatial = [
        (ty, tx)
        for ty in range(y0 // th, (y1 - 1) // th + 1)
        for tx in range(x0 // tc, (x1 - 1) // tc + 1)
    ]
    ref = [(-1, ty, tx) for ty, tx in spatial] if header.n_reference else []
    return ref + [(tw, ty, tx) for tw in range(t0 // w, (t1 - 1) // w + 1) for ty, tx in spatial]


def assemble_region(
    header: AnyHeader,
    tiles: Mapping[TileKey, np.ndarray],
    steps: Range | None = None,
    rows: Range | None = None,
    cols: Range | None = None,
) -> np.ndarray:
    """Build the ``uint16`` token sub-grid ``[steps, rows, cols]`` from decoded tiles.

    ``tiles`` must hold every window key of ``tiles_for_region`` for that region
    (reference tiles, if present, are not needed here).
    """
    t0, t1 = _clip_range(steps, header.dims[0], "steps")
    y0, y1 = _clip_range(rows, header.dims[1], "rows")
    x0, x1 = _clip_range(cols, header.dims[2], "cols")
    out = np.empty((t1 - t0, y1 - y0, x1 - x0), dtype=np.uint16)
    for key in tiles_for_region(header, (t0, t1), (y0, y1), (x0, x1)):
        if key[0] < 0:
            continue
        if key not in tiles:
            raise KeyError(f"tile {key} is needed for the region but was not given")
        (a0, a1), (b0, b1), (c0, c1) = header.tile_slices(key)
        ta, tb = max(a0, t0), min(a1, t1)
        ya, yb = max(b0, y0), min(b1, y1)
        xa, xb = max(c0, x0), min(c1, x1)
        out[ta - t0 : tb - t0, ya - y0 : yb - y0, xa - x0 : xb - x0] = tiles[key][
            ta - a0 : tb - a0, ya - b0 : yb - b0, xa - c0 : xb - c0
        ]
    return out


def assemble_reference(
    header: AnyHeader,
    tiles: Mapping[TileKey, np.ndarray],
    rows: Range | None = None,
    cols: Range | None = None,
) -> np.ndarray:
    """The ``uint16`` reference-token plane ``[rows, cols]`` from decoded reference tiles
    ``(-1, ty, tx)`` (version 2 and 3)."""
    if not header.n_reference:
        raise ValueError("a version-1 blob has no reference plane")
    y0, y1 = _clip_range(rows, header.dims[1], "rows")
    x0, x1 = _clip_range(cols, header.dims[2], "cols")
    th, tc = header.tile_shape
    out = np.empty((y1 - y0, x1 - x0), dtype=np.uint16)
    for ty in range(y0 // th, (y1 - 1) // th + 1):
        for tx in range(x0 // tc, (x1 - 1) // tc + 1):
            key = (-1, ty, tx)
            if key not in tiles:
                raise KeyError(f"reference tile {key} is needed but was not given")
            _, (b0, b1), (c0, c1) = header.tile_slices(key)
            ya, yb = max(b0, y0), min(b1, y1)
            xa, xb = max(c0, x0), min(c1, x1)
            out[ya - y0 : yb - y0, xa - x0 : xb - x0] = tiles[key][
                ya - b0 : yb - b0, xa - c0 : xb - c0
            ]
    return out


def background_tiles_for_box(header: AnyHeader, box: Sequence[int]) -> list[TileKey]:
    """Background-layer tiles ``(-2, ty, tx)`` covering a pixel box ``(x0, y0, x1, y1)``
    (none for a blob without the layer)."""
    if not header.n_background:
        return []
    x0, y0, x1, y1 = (int(v) for v in box)
    th, tc = header.tile_shape
    ss = header.spatial_stride
    ny, nx = header.tile_grid
    return [
        (-2, ty, tx)
        for ty in range(y0 // (th * ss), min(ny - 1, (y1 - 1) // (th * ss)) + 1)
        for tx in range(x0 // (tc * ss), min(nx - 1, (x1 - 1) // (tc * ss)) + 1)
    ]


def unpack_region(
    data: bytes | memoryview,
    steps: Range | None = None,
    rows: Range | None = None,
    cols: Range | None = None,
    expected_hash: str | None = None,
) -> tuple[AnyHeader, np.ndarray]:
    """Verify a blob and decode only the tiles covering a token region; returns the sub-grid."""
    header = read_index(data).header
    keys = tiles_for_region(header, steps, rows, cols)
    tiles = read_tiles(data, keys, expected_hash)
    return header, assemble_region(header, tiles, steps, rows, cols)


# --------------------------------------------------------------------------- side info


class SideInfoHeader(BaseModel):
    """Header of a side-info blob: per (token step, tile) float32 statistics."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    fields: tuple[str, ...] = Field(min_length=1, description="names, first array axis")
    shape: tuple[PosInt, PosInt, PosInt] = Field(description="[Tt, tiles_y, tiles_x]")
    tile_size: tuple[PosInt, PosInt] = (TILE, TILE)
    time_stride: PosInt
    spatial_stride: PosInt
    fps: Annotated[float, Field(gt=0)]
    dtype: Literal["float32"] = "float32"
    token_hash: str | None = Field(default=None, description="blob_hash of the token blob")
    descriptions: dict[str, str] = Field(default_factory=dict)


def pack_sideinfo(
    values: Mapping[str, np.ndarray],
    *,
    time_stride: int,
    spatial_stride: int,
    fps: float,
    token_hash: str | None = None,
    descriptions: Mapping[str, str] | None = None,
) -> bytes:
    """Serialize per-(step, tile) statistics, each a ``[Tt, tiles_y, tiles_x]`` array."""
    names = list(values)
    if not names:
        raise ValueError("no side-info fields")
    arrays = [np.asarray(values[n], dtype=np.float32) for n in names]
    shape = arrays[0].shape
    if len(shape) != 3 or any(a.shape != shape for a in arrays):
        raise ValueError("every side-info field must have the same [Tt, tiles_y, tiles_x] shape")
    header = SideInfoHeader(
        fields=tuple(names),
        shape=shape,
        time_stride=time_stride,
        spatial_stride=spatial_stride,
        fps=fps,
        token_hash=token_hash,
        descriptions=dict(descriptions or {}),
    )
    hb = header.model_dump_json(exclude_none=True).encode()
    out = bytearray(_FIXED.pack(SIDEINFO_MAGIC, FORMAT_VERSION, len(hb)))
    out += hb
    out += np.stack(arrays).astype("<f4").tobytes()
    out += _digest(out)
    return bytes(out)


def unpack_sideinfo(data: bytes | memoryview) -> tuple[SideInfoHeader, dict[str, np.ndarray]]:
    """Verify and parse a side-info blob: ``(header, {field: float32 [Tt, ty, tx]})``."""
    view = memoryview(data)
    if len(view) < _FIXED.size + DIGEST_LEN:
        raise CorruptBlobError("truncated side info")
    magic, version, hlen = _FIXED.unpack_from(view, 0)
    if magic != SIDEINFO_MAGIC:
        raise CorruptBlobError(f"bad magic {magic!r}, not side info")
    if _digest(view[:-DIGEST_LEN]) != bytes(view[-DIGEST_LEN:]):
        raise CorruptBlobError("side info digest mismatch")
    if version != FORMAT_VERSION or not 0 < hlen <= _MAX_HEADER:
        raise CorruptBlobError("unsupported side info version or header length")
    try:
        header = SideInfoHeader.model_validate_json(bytes(view[_FIXED.size : _FIXED.size + hlen]))
    except ValidationError as exc:
        raise CorruptBlobError(f"malformed side info header: {exc}") from exc
    body = view[_FIXED.size + hlen : -DIGEST_LEN]
    n = len(header.fields) * math.prod(header.shape)
    if len(body) != 4 * n:
        raise CorruptBlobError("side info body size does not match its header")
    arr = np.frombuffer(body, dtype="<f4").reshape(len(header.fields), *header.shape)
    return header, {name: arr[i].astype(np.float32) for i, name in enumerate(header.fields)}
