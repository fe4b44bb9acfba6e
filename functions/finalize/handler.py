"""Step `finalize`: mark the video completed with its counts."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from sightline.handlers import logger, pipeline, tracer
from sightline.models import FinalizeInput


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@event_parser(model=FinalizeInput)
def lambda_handler(event: FinalizeInput, context: LambdaContext) -> dict[str, Any]:
    return pipeline().finalize(event.tenant_id, event.video_id).model_dump(mode="json")
