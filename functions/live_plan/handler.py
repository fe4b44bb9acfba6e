"""Step `live_plan` of live_clip: take the camera's lease and list the windows now due."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from sightline.handlers import live, logger, tracer
from sightline.models import CameraId, TenantId


class PlanInput(BaseModel):
    tenant_id: TenantId
    camera_id: CameraId
    execution: str


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    req = PlanInput.model_validate(event)
    plan = live().plan(req.tenant_id, req.camera_id, owner=req.execution)
    logger.info("planned", extra={"camera": req.camera_id, "windows": len(plan.windows)})
    return plan.model_dump(mode="json")
