"""/v1/decode and analytics on stored tokens (no video decode for analytics)."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import BaseModel, ConfigDict, Field

from sightline import factory, keys
from sightline.api.context import api_context, principal_of
from sightline.api.security import Role
from sightline.errors import NotFound
from sightline.services.decode import DecodeService

router = APIGatewayRouter()


class Roi(BaseModel):
    """A region in source pixels: left, top, width, height."""

    model_config = ConfigDict(extra="forbid")
    x: Annotated[float, Field(ge=0)]
    y: Annotated[float, Field(ge=0)]
    w: Annotated[float, Field(gt=0)]
    h: Annotated[float, Field(gt=0)]


class DecodeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    manifest_id: Annotated[str, Field(min_length=4, max_length=128)]
    roi: Roi | None = Field(default=None, description="the region; the whole frame if absent")
    t0: float | None = Field(default=None, description="seconds from the start of the video")
    t1: float | None = None
    format: Literal["png", "mp4"] = "png"


@router.post(
    "/decode",
    summary="Decode only a region of a chunk, as a PNG still or an MP4",
    responses={
        200: {
            "description": "image/png or video/mp4 bytes",
            "content": {"image/png": {}, "video/mp4": {}},
        }
    },
)
def decode(body: DecodeBody):
    ctx = api_context()
    who = principal_of(router.current_event)
    who.require(Role.EDITOR)
    out = DecodeService(ctx.blobs, ctx.repo, factory.codec()).decode(
        who.tenant_id,
        body.manifest_id,
        roi=(body.roi.x, body.roi.y, body.roi.w, body.roi.h) if body.roi else None,
        t0=body.t0,
        t1=body.t1,
        fmt=body.format,
    )
    ctx.audit.record(
        who,
        "decode",
        body.manifest_id,
        {"roi": body.roi.model_dump() if body.roi else None, "format": body.format},
    )
    return Response(
        status_code=200,
        content_type=out.content_type,
        body=out.media,
        headers={
            "X-Frames": str(out.frames),
            "X-Width": str(out.width),
            "X-Height": str(out.height),
        },
    )


class AnomalyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stream_id: Annotated[
        str, Field(min_length=4, max_length=128, description="a video id (or a camera's stream)")
    ]
    t_range: tuple[float, float] | None = None
    bucket: Annotated[float, Field(gt=0, le=3600)] = 1.0


class AnomalyPoint(BaseModel):
    t: float
    score: float


class AnomalyResponse(BaseModel):
    points: list[AnomalyPoint]


@router.post("/aggregate/anomaly", summary="Activity over time from the tokens, no decode")
def aggregate_anomaly(body: AnomalyBody) -> AnomalyResponse:
    ctx = api_context()
    who = principal_of(router.current_event)
    rows = ctx.repo.list_manifests(who.tenant_id, body.stream_id)
    if not rows and ctx.repo.find_video(who.tenant_id, body.stream_id) is None:
        raise NotFound(f"stream {body.stream_id} not found")
    buckets: dict[int, float] = {}
    for row in rows:
        key = keys.latent(who.tenant_id, row.video_id, row.chunk_index)
        latent = json.loads(ctx.blobs.get_bytes(key))
        step = float(latent["step_seconds"])
        for i, activity in enumerate(latent["activity"]):
            t = row.t0 + i * step
            if body.t_range and not (body.t_range[0] <= t <= body.t_range[1]):
                continue
            b = int(t // body.bucket)
            buckets[b] = max(buckets.get(b, 0.0), float(activity))
    return AnomalyResponse(
        points=[
            AnomalyPoint(t=round(b * body.bucket, 3), score=round(s, 4))
            for b, s in sorted(buckets.items())
        ]
    )


class RdPoint(BaseModel):
    manifest_id: str
    t0: float
    t1: float
    bpp: float | None
    ratio: float
    psnr: float | None
    ms_ssim: float | None
    codebook_id: str


@router.get("/stats/rd_curve", summary="Rate–distortion samples of a stream's chunks")
def rd_curve(stream_id: Annotated[str, Query(min_length=4, max_length=128)]) -> dict:
    ctx = api_context()
    who = principal_of(router.current_event)
    rows = ctx.repo.list_manifests(who.tenant_id, stream_id)
    if not rows and ctx.repo.find_video(who.tenant_id, stream_id) is None:
        raise NotFound(f"stream {stream_id} not found")
    return {
        "samples": [
            RdPoint(
                manifest_id=r.manifest_id,
                t0=r.t0,
                t1=r.t1,
                bpp=r.bpp,
                ratio=r.ratio,
                psnr=r.quality_stats.psnr,
                ms_ssim=r.quality_stats.ms_ssim,
                codebook_id=r.codebook_id,
            ).model_dump()
            for r in rows
        ]
    }
