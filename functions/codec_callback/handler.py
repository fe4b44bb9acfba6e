"""The codec endpoint's success/error SNS topics: store the result and resume the waiting
Encode state with SendTaskSuccess (the EncodeOutput) or SendTaskFailure (CodecError)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from sightline.handlers import codec_jobs, logger, tracer
from sightline.services.codec_client import notices_from_sns


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    jobs = codec_jobs()
    outcomes = {n.inference_id: jobs.complete(n) for n in notices_from_sns(event)}
    return {"outcomes": outcomes}
