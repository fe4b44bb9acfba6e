"""Step `live_commit` of live_clip: move the camera's watermark past one window (once), or
release the camera's lease at the end of a run."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from sightline.handlers import live, logger, tracer
from sightline.models import CameraId, LiveCommitInput, TenantId


class ReleaseInput(BaseModel):
    release: bool
    tenant_id: TenantId
    camera_id: CameraId
    lease: str


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("release"):
        req = ReleaseInput.model_validate(event)
        live().release(req.tenant_id, req.camera_id, req.lease)
        return {"released": True}
    window = live().commit(LiveCommitInput.model_validate(event))
    return window.model_dump(mode="json")
