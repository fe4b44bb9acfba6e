"""Decode a region of a stored chunk by reading only the tiles that cover it.

The token blob's prefix (header + tile/section index, BLAKE3-verified) is fetched first;
for a version-2 blob then the tile tables of the sections (reference plane, time windows)
the region needs; then the tiles the region and the decoder's context (halo) need, one
ranged read per run of adjacent tiles. Every piece is checked against its digest before it
is decoded. Nothing else of the blob is read.
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
    requests: int = 0


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
    requests = 0
    need = tokenblob.required_prefix_length(prefix)
    while len(prefix) < need:
        prefix += blobs.get_bytes(key, (len(prefix), need - 1))
        requests += 1
        need = tokenblob.required_prefix_length(prefix)
    index = tokenblob.read_index(prefix)
    header = index.header
    codec = codec or load_codec(header.codebook_id)
    box = None if roi is None else (roi[0], roi[1], roi[0] + roi[2], roi[1] + roi[3])
    plan = plan_roi(header, box, t0, t1, halo=codec.halo)
    read = len(prefix)
    for section in index.sections_for(plan.tiles):
        offset, length = index.section_table_range(section)
        table = blobs.get_bytes(key, (offset, offset + length - 1))
        index.load_section(section, table)
        read += len(table)
        requests += 1
    ranges = sorted(
        (index.byte_range(tile), tile) for tile in plan.tiles if index.byte_range(tile)[1]
    )
    payloads: dict[tokenblob.TileKey, bytes] = {tile: b"" for tile in plan.tiles}
    i = 0
    while i < len(ranges):  # one GET per run of adjacent tiles
        (start, _), _ = ranges[i]
        j, end = i, start
        while j < len(ranges) and ranges[j][0][0] == end:
            end += ranges[j][0][1]
            j += 1
        data = blobs.get_bytes(key, (start, end - 1))
        read += len(data)
        requests += 1
        for (offset, length), tile in ranges[i:j]:
            payloads[tile] = data[offset - start : offset - start + length]
        i = j
    tiles = tokenblob.decode_tiles(index, payloads)
    frames = decode_plan(index, plan, tiles, codec)
    return RoiDecode(
        frames=frames,
        bytes_read=read,
        blob_bytes=blobs.size(key),
        tiles_read=len(plan.tiles),
        tiles_total=header.n_tiles,
        ms=1000 * (time.perf_counter() - started),
        requests=requests,
    )
