"""Step `encode`: queue a chunk on the codec's async endpoint and return.

The Encode state is ``lambda:invoke.waitForTaskToken``: this Lambda records the task token
and calls InvokeEndpointAsync; ``functions/codec_callback`` completes the task when the
endpoint's success/error notice arrives. Nothing here waits for the codec.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from sightline.handlers import codec_jobs, logger, tracer
from sightline.services.codec_client import EncodeTask


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@event_parser(model=EncodeTask)
def lambda_handler(event: EncodeTask, context: LambdaContext) -> dict[str, Any]:
    return codec_jobs().start(event).model_dump(mode="json")
