"""Step `fail`: record why a video failed and remove what it produced."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from sightline.handlers import logger, pipeline, tracer
from sightline.models import FailureInput


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@event_parser(model=FailureInput)
def lambda_handler(event: FailureInput, context: LambdaContext) -> dict[str, Any]:
    return pipeline().fail(event).model_dump(mode="json")
