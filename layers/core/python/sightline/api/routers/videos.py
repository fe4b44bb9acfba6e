"""/v1/videos: register, upload, status and events of batch videos."""

from __future__ import annotations

import base64
import tempfile
from pathlib import Path
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path as PathParam
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from sightline import keys
from sightline.api.context import api_context, principal_of
from sightline.api.errors import PayloadTooLarge
from sightline.api.idempotency import key_of, run_idempotent
from sightline.api.schemas import CreatedVideo, CreateVideo, EventList, VideoList, VideoView
from sightline.api.security import Principal, Role
from sightline.errors import InvalidVideo, NotFound
from sightline.models import Video, VideoStatus
from sightline.services.ingest import new_video_id
from sightline.services.queries import merge_events

router = APIGatewayRouter()
VideoIdParam = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9_-]{4,64}$")]


def view(v: Video) -> VideoView:
    return VideoView(
        video_id=v.video_id,
        filename=v.filename,
        status=v.status.value,
        failure_reason=v.failure_reason,
        duration_s=v.duration_s,
        width=v.width,
        height=v.height,
        chunks_total=v.chunks_total,
        chunks_done=v.chunks_done,
        events_count=v.events_count,
        created_at=v.created_at.isoformat(),
        updated_at=v.updated_at.isoformat(),
    )


@router.post("/videos", summary="Register a video: an upload URL, or ingest from a source")
def create_video(body: CreateVideo) -> tuple[CreatedVideo, int]:
    who = principal_of(router.current_event)
    who.require(Role.EDITOR)
    base = _base_url()
    out = run_idempotent(
        tenant_id=who.tenant_id,
        route="POST /v1/videos",
        key=key_of(router.current_event.headers),
        lambda_context=router.lambda_context,
        body=body.model_dump(mode="json"),
        fn=lambda: _create_video(who, body, base),
    )
    return CreatedVideo.model_validate(out["video"]), out["status_code"]


def _create_video(who: Principal, body: CreateVideo, base_url: str) -> dict[str, Any]:
    ctx = api_context()
    if body.source is not None:
        path = ctx.ingest.resolve_source(body.source)
        sub = ctx.ingest.submit_file(who.tenant_id, path)
        ctx.audit.record(who, "ingest", sub.video.video_id, {"source": body.source})
        created = CreatedVideo(video_id=sub.video.video_id, status=sub.video.status.value)
        return {"video": created.model_dump(mode="json"), "status_code": 202}
    assert body.filename is not None
    video_id = new_video_id()
    video = Video(
        tenant_id=who.tenant_id,
        video_id=video_id,
        filename=body.filename,
        source_key=keys.source(who.tenant_id, video_id, body.filename),
        status=VideoStatus.PENDING,
    )
    ctx.repo.put_video(video)
    url = ctx.ingest.upload_url(video, base_url=base_url)
    ctx.audit.record(who, "register", video_id, {"filename": body.filename})
    created = CreatedVideo(
        video_id=video_id, status=video.status.value, upload_url=url, upload_method="PUT"
    )
    return {"video": created.model_dump(mode="json"), "status_code": 201}


def _base_url() -> str:
    headers = {k.lower(): v for k, v in (router.current_event.headers or {}).items()}
    proto = headers.get("x-forwarded-proto", "https")
    stage = (router.current_event.raw_event.get("requestContext") or {}).get("stage", "")
    prefix = f"/{stage}" if stage and stage != "$default" and proto == "https" else ""
    return f"{proto}://{headers.get('host', 'localhost')}{prefix}"


@router.put("/videos/<video_id>/upload", summary="Upload a registered video's bytes")
def upload_video(video_id: VideoIdParam) -> tuple[VideoView, int]:
    ctx = api_context()
    who = principal_of(router.current_event)
    who.require(Role.EDITOR)
    video = ctx.repo.get_video(who.tenant_id, video_id)
    if video.status != VideoStatus.PENDING:
        raise InvalidVideo(
            f"video {video_id} is {video.status.value}; upload once, to a pending video"
        )
    raw = router.current_event.raw_event
    staged = (raw.get("requestContext") or {}).get("sightlineStagedUpload")
    if staged:
        # The local server streamed a large body to a file; the request context (which a
        # client cannot set) names it.
        ctx.blobs.upload_file(Path(staged), video.source_key, "application/octet-stream")
    else:
        body = raw.get("body") or ""
        data = base64.b64decode(body) if raw.get("isBase64Encoded") else body.encode("latin-1")
        if not data:
            raise InvalidVideo("the upload is empty (0 bytes)")
        if len(data) > ctx.settings.max_video_bytes:
            raise PayloadTooLarge(f"uploads are limited to {ctx.settings.max_video_bytes} bytes")
        with tempfile.NamedTemporaryFile() as tmp:
            tmp.write(data)
            tmp.flush()
            ctx.blobs.upload_file(Path(tmp.name), video.source_key, "application/octet-stream")
    ctx.audit.record(who, "ingest", video_id, {"filename": video.filename})
    sub = ctx.ingest.on_object_created(video.source_key)
    return view(sub.video), 202


@router.get("/videos", summary="The caller's videos")
def list_videos() -> VideoList:
    ctx = api_context()
    who = principal_of(router.current_event)
    return VideoList(videos=[view(v) for v in ctx.repo.list_videos(who.tenant_id)])


@router.get("/videos/<video_id>", summary="A video's status and chunk progress")
def get_video(video_id: VideoIdParam) -> VideoView:
    ctx = api_context()
    who = principal_of(router.current_event)
    return view(ctx.repo.get_video(who.tenant_id, video_id))


@router.get("/videos/<video_id>/events", summary="A video's events, merged across chunks")
def video_events(video_id: VideoIdParam) -> EventList:
    ctx = api_context()
    who = principal_of(router.current_event)
    if ctx.repo.find_video(who.tenant_id, video_id) is None:
        raise NotFound(f"video {video_id} not found")
    return EventList(events=merge_events(ctx.repo.list_events(who.tenant_id, video_id)))
