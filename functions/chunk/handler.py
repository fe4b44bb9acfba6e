"""Step `chunk`: cut the video into MP4 chunks under the video's prefix."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from sightline.handlers import logger, pipeline, tracer
from sightline.models import ProbeOutput


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@event_parser(model=ProbeOutput)
def lambda_handler(event: ProbeOutput, context: LambdaContext) -> dict[str, Any]:
    return pipeline().chunk(event).model_dump(mode="json")
