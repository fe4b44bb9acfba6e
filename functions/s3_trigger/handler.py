"""Trigger `s3_trigger`: an uploaded source object starts its video's ``ingest_video``.

EventBridge delivers the bucket's "Object Created" event for keys matching
``*/videos/*/source/*`` (the rule's pattern); replays of the same upload are no-ops.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from sightline import factory
from sightline.handlers import logger, tracer
from sightline.services.ingest import IngestService
from sightline.services.repository import Repository


@cache
def ingest_service() -> IngestService:
    """Built once per cold start from configuration (SIGHTLINE_* variables)."""
    return IngestService(factory.blobs(), Repository(factory.tables()), factory.orchestrator())


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@event_parser(model=S3EventNotificationEventBridgeModel)
def lambda_handler(
    event: S3EventNotificationEventBridgeModel, context: LambdaContext
) -> dict[str, Any]:
    submission = ingest_service().on_object_created(event.detail.object.key)
    return {
        "video_id": submission.video.video_id,
        "execution_id": submission.execution_id,
        "reused": submission.reused,
    }
