"""Step `latent`: pool the chunk's tokens into a latent embedding."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from sightline.handlers import logger, pipeline, tracer
from sightline.models import ChunkWork


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@event_parser(model=ChunkWork)
def lambda_handler(event: ChunkWork, context: LambdaContext) -> dict[str, Any]:
    return pipeline().latent(event).model_dump(mode="json")
