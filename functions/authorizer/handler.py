"""API Gateway REQUEST authorizer: a verified JWT or API key becomes the principal that
the API function reads from the request context; anything else is denied."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from sightline.api.security import AuthError
from sightline.handlers import logger, tracer
from sightline.services.auth import authenticator


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        principal = authenticator().authenticate(event.get("headers") or {})
    except AuthError as exc:
        logger.info("denied: %s", exc)
        # API Gateway answers 401 for this exact message.
        raise Exception("Unauthorized") from exc
    arn = event["methodArn"]
    # Allow every method of this stage for the principal; the API function enforces roles.
    api_arn = "/".join(arn.split("/")[:2]) + "/*"
    return {
        "principalId": principal.subject,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": api_arn}],
        },
        "context": principal.to_context(),
    }
