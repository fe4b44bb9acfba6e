"""Decode a region of a stored chunk by reading only the tiles that cover it.

The token blob's prefix (header + tile index, BLAKE3-verified) is fetched first, then one
ranged read per tile the region and the decoder's context (halo) need; each tile is
checked against its digest in the index. Nothing else of the blob is read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from sightline import tokenblob
from sightline.ports import BlobStore


@dataclass(frozen=True)
class RoiDecode:
    frames: np.ndarray  # uint8 [T, h, w, 3]
    bytes_read: int
    blob_bytes: int
    tiles_read: int
    tiles_total: int
    ms: float


def decode_region(
    blobs: BlobStore,
    key: str,
    *,
    roi: tuple[float, float, float, float] | None,
    t0: float | None,
    t1: float | None,
    codec: Any = None,
) -> RoiDecode:
    """``roi`` is (x, y, w, h) in source pixels; ``t0``/``t1`` are seconds of the chunk."""
    from sagemaker_models.codec.inference import decode_plan, plan_roi
    from sagemaker_models.codec.registry import load_codec

    started = time.perf_counter()
    prefix = b""
    need = tokenblob.required_prefix_length(prefix)
    while len(prefix) < need:
        prefix += blobs.get_bytes(key, (len(prefix), need - 1))
        need = tokenblob.required_prefix_length(prefix)
    index = tokenblob.read_index(prefix)
    header = index.header
    codec = codec or load_codec(header.codebook_id)
    box = None if roi is None else (roi[0], roi[1], roi[0] + roi[2], roi[1] + roi[3])
    plan = plan_roi(header, box, t0, t1, halo=codec.halo)
    read = len(prefix)
    tiles = {}
    for tile in plan.tiles:
        offset, length = index.byte_range(tile)
        payload = blobs.get_bytes(key, (offset, offset + length - 1))
        read += len(payload)
        tiles[tile] = tokenblob.decode_tile(index, tile, payload)
    frames = decode_plan(index, plan, tiles, codec)
    return RoiDecode(
        frames=frames,
        bytes_read=read,
        blob_bytes=blobs.size(key),
        tiles_read=len(plan.tiles),
        tiles_total=header.n_tiles,
        ms=1000 * (time.perf_counter() - started),
    )
