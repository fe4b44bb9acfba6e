"""Token blob v1: the stored form of a chunk's codec tokens (and its side-info companion).

A token blob holds the discrete codebook indices of one encoded chunk, a ``uint16`` per
token on a ``[Tt, Ht, Wt]`` grid (token steps x token rows x token columns). The grid is
cut into 16x16-token spatial tiles x temporal windows of ``temporal_window`` token steps;
each (window, tile) is stored as its own payload with its own byte range, so a region of
interest can be decoded from a few ranged GETs without fetching the whole blob.

Byte layout (all integers little-endian; ``E = n_windows * tiles_y * tiles_x``)::

    offset       size    field
    0            4       magic b"SLTB"
    4            2       format version, u16 (= 1)
    6            4       header length N, u32
    10           N       header: compact UTF-8 JSON, a ``TokenBlobHeader``
    10+N         20*E    tile index, one entry per (window, tile_y, tile_x) in row-major
                         order of that triple:
                           +0  u64  payload offset, absolute (from byte 0 of the blob)
                           +8  u32  payload length in bytes
                           +12 8B   tile digest: first 8 bytes of BLAKE3(payload bytes)
    P-32         32      prefix digest: BLAKE3 of bytes [0, P-32), P = 10+N+20*E+32
    P            ...     tile payloads, in index order, contiguous, no gaps
    end-32       32      trailer: BLAKE3 of bytes [0, end-32)

A tile payload is the tile's tokens ``tokens[t0:t1, y0:y1, x0:x1]`` (edge tiles and the
last window may be smaller than 16x16 x temporal_window) as row-major ``uint16`` LE,
compressed on its own with zlib (level 9) when ``header.compression == "zlib"`` (per-tile
compression keeps every tile independently readable; zstd is not used so that the core
layer needs only the standard library).

Integrity, three levels:

* ``blob_hash(data)`` = ``"blake3:<hex>"`` of the *whole* blob, computed by the writer and
  kept outside (the manifest row's ``hash``); readers given ``expected_hash`` compare it.
* The trailer makes a blob self-verifying without any external hash: every full reader
  (``unpack_tokens``, ``read_tiles``, ``unpack_region``, ``verify_blob``) checks it, so one
  flipped byte anywhere, a truncation or a bad magic raises ``CorruptBlobError``.
* The prefix digest and the per-tile digests serve ranged readers: fetch the prefix
  (``required_prefix_length`` says how much), ``read_index`` verifies it, then each tile's
  bytes fetched by ``tile_byte_range`` are checked by ``decode_tile`` against the index.

The side-info companion (``pack_sideinfo`` / ``unpack_sideinfo``) uses the same framing
with magic ``b"SLSI"``: header JSON (``SideInfoHeader``), then a float32 LE array
``[n_fields, Tt, tiles_y, tiles_x]``, then a 32-byte BLAKE3 trailer. It carries per token
step and tile motion statistics so that analytics run without decoding any video.
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
    "MAGIC",
    "SIDEINFO_MAGIC",
    "TILE",
    "BlobIndex",
    "CorruptBlobError",
    "SideInfoHeader",
    "TileKey",
    "TokenBlobHeader",
    "assemble_region",
    "blob_hash",
    "decode_tile",
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
FORMAT_VERSION = 1
LAYOUT: Final = "tiles-16x16-tw"
TILE: Final = 16
DIGEST_LEN = 32
TILE_DIGEST_LEN = 8

_FIXED = struct.Struct("<4sHI")  # magic, version, header length
_ENTRY = np.dtype([("offset", "<u8"), ("length", "<u4"), ("digest", "V8")])
# Hard caps so a forged header cannot make a reader allocate without bound.
_MAX_HEADER = 64 * 1024
_MAX_TOKENS = 1 << 31

TileKey = tuple[int, int, int]  # (temporal window, tile row, tile column)
Range = tuple[int, int]  # half-open [start, stop)


class CorruptBlobError(CorruptData, ValueError):
    """A blob failed its integrity check or is malformed (bad magic, truncated, bad offsets)."""


def _digest(data: bytes | bytearray | memoryview) -> bytes:
    return blake3(data).digest()


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


PosInt = Annotated[int, Field(ge=1)]


class TokenBlobHeader(BaseModel):
    """The JSON header of a token blob (validated on write and on every read)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    codebook_id: Annotated[str, Field(min_length=1, max_length=128)]
    model_id: Annotated[str, Field(min_length=1, max_length=128)]
    layout: Literal["tiles-16x16-tw"] = "tiles-16x16-tw"
    dims: tuple[PosInt, PosInt, PosInt] = Field(description="token grid [Tt, Ht, Wt]")
    time_stride: PosInt = Field(description="frames per token step")
    spatial_stride: PosInt = Field(description="pixels per token, each axis")
    tile_size: tuple[Literal[16], Literal[16]] = (16, 16)
    tile_grid: tuple[PosInt, PosInt] = Field(description="[tiles_y, tiles_x]")
    temporal_window: PosInt = Field(description="token steps per stored window")
    n_windows: PosInt
    frame_size: tuple[PosInt, PosInt] = Field(description="original [H, W] in pixels")
    fps: Annotated[float, Field(gt=0, le=1000)]
    n_frames: PosInt
    dtype: Literal["uint16"] = "uint16"
    compression: Literal["zlib", "none"] = "zlib"
    codebook_size: Annotated[int, Field(ge=1, le=65536)] | None = None
    tile_digest: Literal["blake3-64"] = "blake3-64"

    @model_validator(mode="after")
    def _consistent(self) -> TokenBlobHeader:
        tt, ht, wt = self.dims
        if tt * ht * wt > _MAX_TOKENS:
            raise ValueError("token grid too large")
        if self.tile_grid != (_ceil_div(ht, TILE), _ceil_div(wt, TILE)):
            raise ValueError(f"tile_grid {self.tile_grid} does not cover dims {self.dims}")
        if self.n_windows != _ceil_div(tt, self.temporal_window):
            raise ValueError("n_windows does not match dims and temporal_window")
        h, w = self.frame_size
        s = self.spatial_stride
        if not ((ht - 1) * s < h <= ht * s and (wt - 1) * s < w <= wt * s):
            raise ValueError(f"frame_size {self.frame_size} does not match dims x stride")
        if not (tt - 1) * self.time_stride < self.n_frames <= tt * self.time_stride:
            raise ValueError("n_frames does not match Tt x time_stride")
        return self

    @property
    def n_tiles(self) -> int:
        """Number of (window, tile) payloads."""
        return self.n_windows * self.tile_grid[0] * self.tile_grid[1]

    def tile_slices(self, key: TileKey) -> tuple[Range, Range, Range]:
        """Token-grid ranges (steps, rows, cols) covered by tile ``key``."""
        tw, ty, tx = key
        if not (
            0 <= tw < self.n_windows and 0 <= ty < self.tile_grid[0] and 0 <= tx < self.tile_grid[1]
        ):
            raise KeyError(f"tile {key} outside grid {(self.n_windows, *self.tile_grid)}")
        tt, ht, wt = self.dims
        w = self.temporal_window
        return (
            (tw * w, min(tt, (tw + 1) * w)),
            (ty * TILE, min(ht, (ty + 1) * TILE)),
            (tx * TILE, min(wt, (tx + 1) * TILE)),
        )

    def entry_number(self, key: TileKey) -> int:
        """Position of tile ``key`` in the index (row-major over window, row, column)."""
        self.tile_slices(key)  # bounds check
        tw, ty, tx = key
        return (tw * self.tile_grid[0] + ty) * self.tile_grid[1] + tx


@dataclass(frozen=True)
class BlobIndex:
    """A parsed and verified blob prefix: header plus tile index."""

    header: TokenBlobHeader
    entries: np.ndarray  # structured array of _ENTRY, one row per tile
    prefix_length: int  # P: first payload byte

    def byte_range(self, key: TileKey) -> tuple[int, int]:
        """(offset, length) of tile ``key``'s payload inside the blob."""
        e = self.entries[self.header.entry_number(key)]
        return int(e["offset"]), int(e["length"])


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
    temporal_window: int = 8,
    compression: Literal["zlib", "none"] = "zlib",
    codebook_size: int | None = None,
) -> bytes:
    """Serialize a ``uint16 [Tt, Ht, Wt]`` token grid as a v1 token blob.

    ``frame_size`` is the original ``(H, W)`` in pixels and ``n_frames`` the original frame
    count (both before padding to the strides). Returns the blob bytes; its external hash
    is ``blob_hash(blob)``.
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
    header = TokenBlobHeader(
        codebook_id=codebook_id,
        model_id=model_id,
        dims=(tt, ht, wt),
        time_stride=time_stride,
        spatial_stride=spatial_stride,
        tile_grid=(_ceil_div(ht, TILE), _ceil_div(wt, TILE)),
        temporal_window=temporal_window,
        n_windows=_ceil_div(tt, temporal_window),
        frame_size=(int(frame_size[0]), int(frame_size[1])),
        fps=float(fps),
        n_frames=int(n_frames),
        compression=compression,
        codebook_size=codebook_size,
    )
    header_bytes = header.model_dump_json(exclude_none=True).encode()
    if len(header_bytes) > _MAX_HEADER:
        raise ValueError("header too large")

    payloads: list[bytes] = []
    le = arr.astype("<u2", copy=False)
    for number in range(header.n_tiles):
        (t0, t1), (y0, y1), (x0, x1) = header.tile_slices(_key_of(header, number))
        raw = np.ascontiguousarray(le[t0:t1, y0:y1, x0:x1]).tobytes()
        payloads.append(zlib.compress(raw, 9) if compression == "zlib" else raw)

    prefix_len = _FIXED.size + len(header_bytes) + _ENTRY.itemsize * header.n_tiles + DIGEST_LEN
    entries = np.zeros(header.n_tiles, dtype=_ENTRY)
    offset = prefix_len
    for i, p in enumerate(payloads):
        entries[i] = (offset, len(p), _digest(p)[:TILE_DIGEST_LEN])
        offset += len(p)

    out = bytearray(_FIXED.pack(MAGIC, FORMAT_VERSION, len(header_bytes)))
    out += header_bytes
    out += entries.tobytes()
    out += _digest(out)
    for p in payloads:
        out += p
    out += _digest(out)
    return bytes(out)


def _key_of(header: TokenBlobHeader, number: int) -> TileKey:
    ny, nx = header.tile_grid
    return number // (ny * nx), (number // nx) % ny, number % nx


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
    header = _parse_header(view[_FIXED.size : _FIXED.size + hlen])
    return _FIXED.size + hlen + _ENTRY.itemsize * header.n_tiles + DIGEST_LEN


def _check_fixed(magic: bytes, version: int, hlen: int) -> None:
    if magic != MAGIC:
        raise CorruptBlobError(f"bad magic {magic!r}, not a token blob")
    if version != FORMAT_VERSION:
        raise CorruptBlobError(f"unsupported token blob version {version}")
    if not 0 < hlen <= _MAX_HEADER:
        raise CorruptBlobError(f"implausible header length {hlen}")


def _parse_header(raw: bytes | memoryview) -> TokenBlobHeader:
    try:
        return TokenBlobHeader.model_validate(json.loads(bytes(raw).decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError, ValidationError) as exc:
        raise CorruptBlobError(f"malformed token blob header: {exc}") from exc


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
    hlen = _FIXED.unpack_from(view, 0)[2]
    header = _parse_header(view[_FIXED.size : _FIXED.size + hlen])
    start = _FIXED.size + hlen
    entries = np.frombuffer(view[start : start + _ENTRY.itemsize * header.n_tiles], dtype=_ENTRY)
    offsets = entries["offset"].astype(np.int64)
    lengths = entries["length"].astype(np.int64)
    expected = need + np.concatenate(([0], np.cumsum(lengths)[:-1]))
    if (entries["offset"] > np.uint64(1 << 62)).any() or not np.array_equal(offsets, expected):
        raise CorruptBlobError("tile index offsets are not contiguous after the prefix")
    return BlobIndex(header=header, entries=entries, prefix_length=need)


def read_header(data: bytes | memoryview) -> TokenBlobHeader:
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


def decode_tile(index: BlobIndex, key: TileKey, payload: bytes | memoryview) -> np.ndarray:
    """Check one tile payload against its index digest and return its ``uint16`` tokens.

    This is the ranged-read path: ``payload`` is exactly the bytes at
    ``tile_byte_range(index, *key)``.
    """
    header = index.header
    entry = index.entries[header.entry_number(key)]
    if len(payload) != int(entry["length"]):
        raise CorruptBlobError(
            f"tile {key}: got {len(payload)} bytes, index says {int(entry['length'])}"
        )
    if _digest(payload)[:TILE_DIGEST_LEN] != bytes(entry["digest"]):
        raise CorruptBlobError(f"tile {key}: digest mismatch")
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


def read_tiles(
    data: bytes | memoryview, tiles: Iterable[TileKey], expected_hash: str | None = None
) -> dict[TileKey, np.ndarray]:
    """Verify the blob, then decode only the listed ``(t_window, tile_y, tile_x)`` tiles."""
    view = memoryview(data)
    index = verify_blob(view, expected_hash)
    out: dict[TileKey, np.ndarray] = {}
    for key in tiles:
        key = (int(key[0]), int(key[1]), int(key[2]))
        off, length = index.byte_range(key)
        out[key] = decode_tile(index, key, view[off : off + length])
    return out


def unpack_tokens(
    data: bytes | memoryview, expected_hash: str | None = None
) -> tuple[TokenBlobHeader, np.ndarray]:
    """Verify and decode a whole blob: returns ``(header, tokens uint16 [Tt, Ht, Wt])``."""
    view = memoryview(data)
    index = verify_blob(view, expected_hash)
    header = index.header
    tokens = np.empty(header.dims, dtype=np.uint16)
    for number in range(header.n_tiles):
        key = _key_of(header, number)
        off, length = index.byte_range(key)
        (t0, t1), (y0, y1), (x0, x1) = header.tile_slices(key)
        tokens[t0:t1, y0:y1, x0:x1] = decode_tile(index, key, view[off : off + length])
    return header, tokens


def _clip_range(r: Range | None, n: int, what: str) -> Range:
    if r is None:
        return 0, n
    a, b = max(0, int(r[0])), min(n, int(r[1]))
    if a >= b:
        raise ValueError(f"empty or out-of-grid {what} range {r} (grid size {n})")
    return a, b


def tiles_for_region(
    header: TokenBlobHeader,
    steps: Range | None = None,
    rows: Range | None = None,
    cols: Range | None = None,
) -> list[TileKey]:
    """Tiles covering a token-grid region (half-open ranges; ``None`` = whole axis)."""
    t0, t1 = _clip_range(steps, header.dims[0], "steps")
    y0, y1 = _clip_range(rows, header.dims[1], "rows")
    x0, x1 = _clip_range(cols, header.dims[2], "cols")
    w = header.temporal_window
    return [
        (tw, ty, tx)
        for tw in range(t0 // w, (t1 - 1) // w + 1)
        for ty in range(y0 // TILE, (y1 - 1) // TILE + 1)
        for tx in range(x0 // TILE, (x1 - 1) // TILE + 1)
    ]


def assemble_region(
    header: TokenBlobHeader,
    tiles: Mapping[TileKey, np.ndarray],
    steps: Range | None = None,
    rows: Range | None = None,
    cols: Range | None = None,
) -> np.ndarray:
    """Build the ``uint16`` token sub-grid ``[steps, rows, cols]`` from decoded tiles.

    ``tiles`` must hold every key of ``tiles_for_region`` for that region.
    """
    t0, t1 = _clip_range(steps, header.dims[0], "steps")
    y0, y1 = _clip_range(rows, header.dims[1], "rows")
    x0, x1 = _clip_range(cols, header.dims[2], "cols")
    out = np.empty((t1 - t0, y1 - y0, x1 - x0), dtype=np.uint16)
    for key in tiles_for_region(header, (t0, t1), (y0, y1), (x0, x1)):
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


def unpack_region(
    data: bytes | memoryview,
    steps: Range | None = None,
    rows: Range | None = None,
    cols: Range | None = None,
    expected_hash: str | None = None,
) -> tuple[TokenBlobHeader, np.ndarray]:
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
