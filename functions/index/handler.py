"""Step `index`: embed the description and upsert the chunk's index document."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from sightline.handlers import logger, pipeline, tracer
from sightline.models import IndexInput


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@event_parser(model=IndexInput)
def lambda_handler(event: IndexInput, context: LambdaContext) -> dict[str, Any]:
    return pipeline().index_chunk(event, event.events).model_dump(mode="json")
