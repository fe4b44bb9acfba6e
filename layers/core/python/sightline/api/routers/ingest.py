"""/v1/ingest/chunk: one chunk of a stream, encoded now; answers its manifest row."""

from __future__ import annotations

import base64
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import BaseModel

from sightline import keys
from sightline.api.context import api_context, principal_of
from sightline.api.errors import PayloadTooLarge, UnsupportedMediaType
from sightline.api.security import Role
from sightline.errors import InvalidRequest
from sightline.handlers import pipeline
from sightline.models import ChunkRef, Video, VideoStatus

router = APIGatewayRouter()


class IngestedChunk(BaseModel):
    manifest_id: str
    ratio: float
    codebook_id: str
    byte_size: int
    psnr: float | None = None


@router.post(
    "/ingest/chunk",
    summary="Encode one binary chunk of a stream",
    description="The request body is the chunk itself, as video/* bytes (e.g. video/mp4).",
)
def ingest_chunk(
    stream_id: Annotated[str, Query(pattern=r"^[A-Za-z0-9_-]{4,64}$")],
    t0: Annotated[float, Query(ge=0)],
    t1: Annotated[float, Query(gt=0)],
) -> tuple[IngestedChunk, int]:
    ctx = api_context()
    who = principal_of(router.current_event)
    who.require(Role.EDITOR)
    if not t0 < t1 <= t0 + 600:
        raise InvalidRequest("need t0 < t1, at most 600 s apart")
    headers = {k.lower(): v for k, v in (router.current_event.headers or {}).items()}
    if not str(headers.get("content-type", "")).startswith("video/"):
        raise UnsupportedMediaType("send the chunk as video/* bytes")
    raw = router.current_event.raw_event
    body = raw.get("body") or ""
    data = base64.b64decode(body) if raw.get("isBase64Encoded") else body.encode("latin-1")
    if not data:
        raise InvalidRequest("the chunk is empty")
    if len(data) > ctx.settings.max_chunk_bytes:
        raise PayloadTooLarge(f"chunks are limited to {ctx.settings.max_chunk_bytes} bytes")
    if ctx.repo.find_video(who.tenant_id, stream_id) is None:
        # A stream's chunks live under one video record named after the stream.
        ctx.repo.put_video(
            Video(
                tenant_id=who.tenant_id,
                video_id=stream_id,
                filename=f"stream:{stream_id}",
                status=VideoStatus.COMPLETED,
            )
        )
    # Chunk numbers are milliseconds from the stream's start: the same t0 is the same chunk.
    index = round(t0 * 1000)
    chunk = ChunkRef(
        tenant_id=who.tenant_id,
        video_id=stream_id,
        index=index,
        t0=t0,
        t1=t1,
        key=keys.chunk(who.tenant_id, stream_id, index),
        stream_id=stream_id,
    )
    ctx.blobs.put_bytes(chunk.key, data, headers.get("content-type", "video/mp4"))
    out = pipeline().encode(chunk)
    ctx.audit.record(who, "ingest", out.manifest_id, {"stream_id": stream_id, "t0": t0})
    return IngestedChunk(
        manifest_id=out.manifest_id,
        ratio=round(out.ratio, 2),
        codebook_id=out.codebook_id,
        byte_size=out.byte_size,
        psnr=out.psnr,
    ), 201
