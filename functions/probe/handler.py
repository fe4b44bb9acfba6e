"""Step `probe`: validate the uploaded source and read its metadata."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from sightline.handlers import logger, pipeline, tracer
from sightline.models import IngestInput


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@event_parser(model=IngestInput)
def lambda_handler(event: IngestInput, context: LambdaContext) -> dict[str, Any]:
    return pipeline().probe(event).model_dump(mode="json")
