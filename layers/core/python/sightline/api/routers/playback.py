"""/v1/videos/{id}/chunks: a video's stored chunks, and each chunk's MP4 for playback.

The web page plays the chunk that holds a search hit or an event from the right second.
A browser's ``<video>`` cannot send a bearer token, so the page fetches the bytes with its
token and plays them from memory; Range requests keep every answer small enough for a
Lambda proxy response (6 MB, base64 included) however long a chunk is.
"""

from __future__ import annotations

import re
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path as PathParam
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import BaseModel

from sightline import keys
from sightline.api.context import api_context, principal_of
from sightline.api.errors import BadRequest
from sightline.errors import NotFound

router = APIGatewayRouter()

VideoIdParam = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9_-]{4,64}$")]
ChunkParam = Annotated[int, PathParam(ge=0, le=99_999)]
# The most one answer carries: 4 MiB is 5.4 MB once base64-encoded, under Lambda's 6 MB.
MAX_RANGE_BYTES = 4 * 1024 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class ChunkView(BaseModel):
    index: int
    manifest_id: str
    t0: float
    t1: float
    media_path: str


class ChunkList(BaseModel):
    video_id: str
    chunks: list[ChunkView]


@router.get("/videos/<video_id>/chunks", summary="A video's stored chunks and their times")
def list_chunks(video_id: VideoIdParam) -> ChunkList:
    ctx = api_context()
    who = principal_of(router.current_event)
    if ctx.repo.find_video(who.tenant_id, video_id) is None:
        raise NotFound(f"video {video_id} not found")
    rows = sorted(ctx.repo.list_manifests(who.tenant_id, video_id), key=lambda r: r.t0)
    return ChunkList(
        video_id=video_id,
        chunks=[
            ChunkView(
                index=r.chunk_index,
                manifest_id=r.manifest_id,
                t0=r.t0,
                t1=r.t1,
                media_path=f"/v1/videos/{video_id}/chunks/{r.chunk_index}/media",
            )
            for r in rows
        ],
    )


@router.get(
    "/videos/<video_id>/chunks/<index>/media",
    summary="One chunk as H.264 MP4 (Range requests answered with 206)",
    responses={
        200: {"description": "the whole chunk", "content": {"video/mp4": {}}},
        206: {"description": "the requested byte range", "content": {"video/mp4": {}}},
        416: {"description": "the range lies outside the chunk"},
    },
)
def chunk_media(video_id: VideoIdParam, index: ChunkParam):
    ctx = api_context()
    who = principal_of(router.current_event)
    manifest_id = f"{video_id}-c{index:05d}"
    # The manifest row is the tenant check: another tenant's chunk is simply not found.
    if ctx.repo.find_manifest(who.tenant_id, manifest_id) is None:
        raise NotFound(f"chunk {index} of video {video_id} not found")
    key = keys.chunk(who.tenant_id, video_id, index)
    if not ctx.blobs.exists(key):
        raise NotFound(f"chunk {index} of video {video_id} has no stored media")
    size = ctx.blobs.size(key)
    headers = {
        "Accept-Ranges": "bytes",
        # A chunk never changes once stored; only its owner may cache it.
        "Cache-Control": "private, max-age=3600",
    }
    wanted = _header(router.current_event.headers or {}, "range")
    if wanted is None and size <= MAX_RANGE_BYTES:
        return Response(
            status_code=200,
            content_type="video/mp4",
            body=ctx.blobs.get_bytes(key),
            headers=headers,
        )
    span = _parse_range(wanted or "bytes=0-", size)
    if span is None:
        return Response(
            status_code=416,
            content_type="application/problem+json",
            body='{"type":"about:blank","title":"Range not satisfiable","status":416}',
            headers={**headers, "Content-Range": f"bytes */{size}"},
        )
    start, end = span
    end = min(end, start + MAX_RANGE_BYTES - 1)
    return Response(
        status_code=206,
        content_type="video/mp4",
        body=ctx.blobs.get_bytes(key, (start, end)),
        headers={**headers, "Content-Range": f"bytes {start}-{end}/{size}"},
    )


def _header(headers: dict[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _parse_range(value: str, size: int) -> tuple[int, int] | None:
    """One ``bytes=a-b`` / ``bytes=a-`` / ``bytes=-n`` range as inclusive offsets, or None
    when it lies outside the object. Multi-range requests are refused: players never ask."""
    m = _RANGE.match(value.strip())
    if m is None:
        raise BadRequest("Range must be one bytes=START-END range")
    first, last = m.group(1), m.group(2)
    if not first and not last:
        raise BadRequest("Range must name a start or a suffix length")
    if not first:  # the last n bytes
        n = int(last)
        if n == 0 or size == 0:
            return None
        return max(0, size - n), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if start >= size or end < start:
        return None
    return start, min(end, size - 1)
