"""Step `live_fetch` of live_clip: store one window's media (KVS GetClip) as a chunk."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from sightline.handlers import live, logger, tracer
from sightline.models import LiveWindow


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@event_parser(model=LiveWindow)
def lambda_handler(event: LiveWindow, context: LambdaContext) -> dict[str, Any]:
    return live().fetch(event).model_dump(mode="json")
