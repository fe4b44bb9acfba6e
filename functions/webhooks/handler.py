"""EventBridge rule target: deliver Sightline bus events to the tenant's signed webhooks."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from sightline import factory
from sightline.handlers import logger, tracer
from sightline.services.webhooks import Webhooks, dispatch


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    delivered = dispatch(Webhooks(factory.tables()), event.detail_type, dict(event.detail))
    return {"delivered": delivered}
