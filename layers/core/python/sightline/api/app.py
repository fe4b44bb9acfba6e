"""The public API (v1): one Powertools REST resolver, a router per area.

Every domain error maps to an HTTP answer here, in one place, as application/problem+json;
nothing else (no stack trace, no internal message) reaches a client.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.models import (
    APIKey,
    APIKeyIn,
    HTTPBearer,
    Server,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)

from sightline.api.errors import (
    BadRequest,
    PayloadTooLarge,
    TooManyRequests,
    UnsupportedMediaType,
)
from sightline.api.routers import (
    cameras,
    events,
    ingest,
    keys,
    media,
    playback,
    search,
    videos,
    webhooks,
)
from sightline.api.security import AuthError, Forbidden
from sightline.config import get_settings
from sightline.errors import (
    CodecError,
    CorruptData,
    InvalidRequest,
    InvalidVideo,
    NotFound,
    TransientError,
)

logger = logging.getLogger(__name__)

TITLE = "Sightline API"
VERSION = "1.0.0"
PUBLIC_PATHS = ("/health", "/v1/openapi.json", "/swagger")
SECURITY_SCHEMES = {
    "bearer": HTTPBearer(bearerFormat="JWT"),
    "apiKey": APIKey(name="X-Api-Key", **{"in": APIKeyIn.header}),
}
PROBLEM = "application/problem+json"


def _problem_body(
    status: int, title: str, detail: str | None = None, errors: list[dict[str, Any]] | None = None
) -> str:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    return json.dumps(body)


def problem(
    status: int, title: str, detail: str | None = None, errors: list[dict[str, Any]] | None = None
) -> Response:
    return Response(
        status_code=status, content_type=PROBLEM, body=_problem_body(status, title, detail, errors)
    )


def body_problem(event: dict[str, Any]) -> dict[str, Any] | None:
    """JSON routes take JSON only, and not much of it; the upload route takes bytes.

    Checked before routing, so a wrong type or an oversize body never reaches validation.
    """
    method = event.get("httpMethod", "")
    path = event.get("path", "")
    if method not in ("POST", "PATCH", "PUT") or (method == "PUT" and path.endswith("/upload")):
        return None
    if path.endswith("/v1/ingest/chunk"):  # binary video, checked by its route
        return None
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    ctype = str(headers.get("content-type", "")).split(";")[0].strip().lower()
    body = event.get("body") or ""
    limit = get_settings().max_json_bytes
    if len(body) > limit:
        return _raw(413, "Payload too large", f"JSON bodies are limited to {limit} bytes")
    if body and (ctype != "application/json" or event.get("isBase64Encoded")):
        return _raw(415, "Unsupported media type", "send application/json (UTF-8)")
    return None


def _raw(status: int, title: str, detail: str) -> dict[str, Any]:
    """A problem answer in API Gateway's proxy response shape."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": PROBLEM},
        "multiValueHeaders": {},
        "body": _problem_body(status, title, detail),
        "isBase64Encoded": False,
    }


class SightlineResolver(APIGatewayRestResolver):
    def resolve(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        early = body_problem(event)
        return early if early is not None else super().resolve(event, context)


def build_app() -> APIGatewayRestResolver:
    app = SightlineResolver(enable_validation=True)
    for module in (videos, ingest, events, search, media, keys, webhooks, playback, cameras):
        app.include_router(module.router, prefix="/v1")

    @app.get("/health", include_in_schema=True, summary="Liveness")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/openapi.json", include_in_schema=False)
    def openapi():
        return Response(status_code=200, content_type="application/json", body=openapi_json(app))

    app.enable_swagger(
        path="/swagger",
        title=TITLE,
        version=VERSION,
        security_schemes=SECURITY_SCHEMES,
        security=[{"bearer": []}, {"apiKey": []}],
    )

    @app.exception_handler(RequestValidationError)
    def _invalid(exc: RequestValidationError) -> Response:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", ""))} for e in exc.errors()
        ]
        return problem(
            422, "Unprocessable request", "the request does not match the schema", errors
        )

    @app.exception_handler(RequestUnsupportedContentType)
    def _unsupported(exc: RequestUnsupportedContentType) -> Response:
        return problem(415, "Unsupported media type", "send application/json")

    for exc_type, (status, title, fixed_detail) in ERROR_MAP.items():
        app.exception_handler(exc_type)(_mapped(status, title, fixed_detail))

    @app.exception_handler(CorruptData)
    def _corrupt(exc: CorruptData) -> Response:
        logger.error("corrupt data refused: %s", exc)
        return problem(500, "Stored data failed its integrity check", "it was not served")

    @app.exception_handler(CodecError)
    def _codec(exc: CodecError) -> Response:
        return problem(502, "Codec failed", str(exc))

    @app.exception_handler(Exception)
    def _internal(exc: Exception) -> Response:
        logger.exception("unhandled error")
        return problem(500, "Internal error")

    @app.not_found
    def _no_route(exc: Exception) -> Response:
        return problem(404, "Not found", "no such route")

    return app


# Domain and HTTP errors → (status, title, detail); detail None means the error's message,
# which these errors word for the client. Anything unlisted is a 500 without details.
ERROR_MAP: dict[type[Exception], tuple[int, str, str | None]] = {
    BadRequest: (400, "Bad request", None),
    AuthError: (401, "Unauthorized", None),
    Forbidden: (403, "Forbidden", None),
    NotFound: (404, "Not found", None),
    IdempotencyAlreadyInProgressError: (
        409,
        "In progress",
        "a request with this Idempotency-Key is running",
    ),
    PayloadTooLarge: (413, "Payload too large", None),
    UnsupportedMediaType: (415, "Unsupported media type", None),
    IdempotencyValidationError: (
        422,
        "Idempotency-Key reused",
        "this key was used with another body",
    ),
    InvalidVideo: (422, "Invalid video", None),
    InvalidRequest: (422, "Unprocessable request", None),
    TooManyRequests: (429, "Too many requests", None),
    CodecError: (502, "Codec failed", None),
    TransientError: (503, "Service unavailable", "try again shortly"),
}


def _mapped(status: int, title: str, fixed_detail: str | None) -> Any:
    def handler(exc: Exception) -> Response:
        return problem(status, title, fixed_detail if fixed_detail is not None else str(exc))

    return handler


def openapi_json(app: APIGatewayRestResolver) -> str:
    """The OpenAPI 3.1 document generated from the routes (committed as openapi.json)."""
    return app.get_openapi_json_schema(
        title=TITLE,
        version=VERSION,
        servers=[Server(url="/")],
        description="Video in; descriptions, events and search out. Every request is "
        "scoped to the caller's tenant (org/project).",
        security_schemes=SECURITY_SCHEMES,
        security=[{"bearer": []}, {"apiKey": []}],
    )
