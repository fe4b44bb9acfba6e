"""/v1/cameras: live cameras and their schedules (which start ``live_clip``)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path as PathParam
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import BaseModel, ConfigDict, Field, model_validator

from sightline import handlers
from sightline.adapters.local_live import file_source_path, is_stream_url
from sightline.api.context import api_context, principal_of
from sightline.api.security import Role
from sightline.errors import InvalidRequest
from sightline.models import Camera, CameraState, CameraWindow

router = APIGatewayRouter()

CameraIdParam = Annotated[str, PathParam(pattern=r"^cam_[A-Za-z0-9_-]{1,60}$")]
KVS_ARN = re.compile(r"^arn:aws[a-z-]*:kinesisvideo:[a-z0-9-]+:\d{12}:stream/[A-Za-z0-9_.-]+/\d+$")
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "srt://", "udp://", "http://", "https://")


class CreateCamera(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[\w .:-]+$")]
    source_url: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=2048,
            description="local only: a video file under the allowed source roots (played in "
            "a loop) or an rtsp/http/udp/srt URL pulled by ffmpeg",
        ),
    ] = None
    kvs_stream_arn: Annotated[str | None, Field(max_length=2048)] = None
    clip_seconds: Annotated[float, Field(ge=1, le=600)] = 10.0
    state: CameraState = CameraState.ACTIVE

    @model_validator(mode="after")
    def _one_source(self) -> CreateCamera:
        if (self.source_url is None) == (self.kvs_stream_arn is None):
            raise ValueError("give exactly one of source_url and kvs_stream_arn")
        if self.kvs_stream_arn is not None and not KVS_ARN.match(self.kvs_stream_arn):
            raise ValueError("kvs_stream_arn is not a Kinesis Video Streams stream ARN")
        return self


class UpdateCamera(BaseModel):
    model_config = ConfigDict(extra="forbid")
    state: CameraState | None = None
    clip_seconds: Annotated[float | None, Field(ge=1, le=600)] = None


class CameraView(BaseModel):
    camera_id: str
    name: str
    source_url: str | None
    kvs_stream_arn: str | None
    clip_seconds: float
    state: str
    watermark: str
    created_at: str
    last_event_at: str | None
    windows_done: int
    gaps: int
    failed: int
    last_error: str | None

    @classmethod
    def of(cls, camera: Camera) -> CameraView:
        data = camera.model_dump(mode="json")
        return cls.model_validate({k: data.get(k) for k in cls.model_fields})


class CameraList(BaseModel):
    cameras: list[CameraView]


class WindowList(BaseModel):
    windows: list[dict[str, Any]]


def _source(body: CreateCamera) -> str | None:
    """A camera's source, checked: a file only under the allowed roots, a known scheme."""
    url = body.source_url
    if url is None:
        return None
    ctx = api_context()
    if ctx.settings.scheduler == "aws":
        raise InvalidRequest(
            "on AWS a camera streams to Kinesis Video Streams: give kvs_stream_arn"
        )
    if url.startswith(STREAM_SCHEMES):
        return url
    if is_stream_url(url):
        raise InvalidRequest(f"unsupported source scheme in {url.split('://')[0]}://")
    return str(ctx.ingest.resolve_source(str(file_source_path(url))))


@router.post("/cameras", summary="Add a live camera and its schedule")
def create_camera(body: CreateCamera) -> tuple[CameraView, int]:
    who = principal_of(router.current_event)
    who.require(Role.EDITOR)
    camera = handlers.cameras().create(
        who.tenant_id,
        body.name,
        source_url=_source(body),
        kvs_stream_arn=body.kvs_stream_arn,
        clip_seconds=body.clip_seconds,
        paused=body.state == CameraState.PAUSED,
    )
    api_context().audit.record(who, "create_camera", camera.camera_id, {"name": body.name})
    return CameraView.of(camera), 201


@router.get("/cameras", summary="The tenant's cameras, with state and last event")
def list_cameras() -> CameraList:
    who = principal_of(router.current_event)
    cams = handlers.cameras().cameras.list(who.tenant_id)
    return CameraList(cameras=[CameraView.of(c) for c in cams])


@router.get("/cameras/<camera_id>", summary="A camera")
def get_camera(camera_id: CameraIdParam) -> CameraView:
    who = principal_of(router.current_event)
    return CameraView.of(handlers.cameras().cameras.get(who.tenant_id, camera_id))


@router.patch("/cameras/<camera_id>", summary="Pause or resume a camera, or change its clip")
def update_camera(camera_id: CameraIdParam, body: UpdateCamera) -> CameraView:
    who = principal_of(router.current_event)
    who.require(Role.EDITOR)
    camera = handlers.cameras().update(
        who.tenant_id, camera_id, state=body.state, clip_seconds=body.clip_seconds
    )
    api_context().audit.record(
        who, "update_camera", camera_id, body.model_dump(mode="json", exclude_none=True)
    )
    return CameraView.of(camera)


@router.delete("/cameras/<camera_id>", summary="Remove a camera and its schedule")
def delete_camera(camera_id: CameraIdParam) -> tuple[dict[str, Any], int]:
    who = principal_of(router.current_event)
    who.require(Role.EDITOR)
    handlers.cameras().delete(who.tenant_id, camera_id)
    api_context().audit.record(who, "delete_camera", camera_id, {})
    return {"camera_id": camera_id, "deleted": True}, 200


@router.get("/cameras/<camera_id>/windows", summary="What became of each window: done or gap")
def list_windows(
    camera_id: CameraIdParam,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> WindowList:
    who = principal_of(router.current_event)
    repo = handlers.cameras().cameras
    repo.get(who.tenant_id, camera_id)  # 404 for another tenant's camera
    rows: list[CameraWindow] = repo.list_windows(who.tenant_id, camera_id)[-limit:]
    return WindowList(windows=[w.model_dump(mode="json") for w in rows])
