"""Decode only a region of a stored chunk, through the codec endpoint's async contract."""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass

from sightline import keys, tokenblob
from sightline.errors import CodecError, InvalidRequest, NotFound
from sightline.ports import BlobStore, CodecEndpoint
from sightline.services.repository import Repository

DECODE_CONTENT_TYPE = "application/x-sightline-decode+json"


@dataclass(frozen=True)
class Decoded:
    media: bytes
    content_type: str
    frames: int
    width: int
    height: int


@dataclass
class DecodeService:
    blobs: BlobStore
    repo: Repository
    codec: CodecEndpoint
    timeout_s: float = 300.0

    def decode(
        self,
        tenant_id: str,
        manifest_id: str,
        *,
        roi: tuple[float, float, float, float] | None,
        t0: float | None,
        t1: float | None,
        fmt: str,
    ) -> Decoded:
        """``roi`` is (x, y, w, h) in source pixels; times are seconds from the start of the
        video and must fall inside the chunk."""
        row = self.repo.find_manifest(tenant_id, manifest_id)
        if row is None:
            raise NotFound(f"chunk {manifest_id} not found")
        blob = self.blobs.get_bytes(keys.tokens(tenant_id, row.video_id, row.chunk_index))
        header = tokenblob.read_header(blob)  # full verification happens in the decoder
        h, w = header.frame_size
        box = None if roi is None else (roi[0], roi[1], roi[0] + roi[2], roi[1] + roi[3])
        lo = row.t0 if t0 is None else t0
        hi = row.t1 if t1 is None else t1
        if not (row.t0 <= lo < hi <= row.t1 + 1e-6):
            raise InvalidRequest(f"the time range must lie within the chunk, {row.t0}-{row.t1} s")
        if box is not None and not (0 <= box[0] < box[2] <= w and 0 <= box[1] < box[3] <= h):
            raise InvalidRequest(f"the roi must lie within the {w}x{h} frame")
        rel0, rel1 = lo - row.t0, hi - row.t0
        request = json.dumps(
            {
                "token_blob_b64": base64.b64encode(blob).decode(),
                "expected_hash": row.hash,
                "roi": box,
                "t0": rel0,
                "t1": rel1,
                "format": fmt,
            }
        ).encode()
        inference_id = f"decode-{secrets.token_hex(8)}"
        input_key = f"codec/input/{inference_id}.json"
        self.blobs.put_bytes(input_key, request, DECODE_CONTENT_TYPE)
        try:
            inv = self.codec.invoke_async(
                input_key, inference_id=inference_id, content_type=DECODE_CONTENT_TYPE
            )
            out = json.loads(self.codec.wait(inv, self.timeout_s))
            self.blobs.delete_prefix(inv.output_key)
        finally:
            self.blobs.delete_prefix(input_key)
        try:
            return Decoded(
                media=base64.b64decode(out["media_b64"]),
                content_type=out["content_type"],
                frames=int(out["frames"]),
                width=int(out["width"]),
                height=int(out["height"]),
            )
        except (KeyError, ValueError) as exc:
            raise CodecError(f"malformed decode output: {exc}") from exc
