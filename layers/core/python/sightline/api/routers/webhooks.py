"""/v1/webhooks: signed event deliveries to the tenant's endpoints (admin)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler.openapi.params import Path as PathParam
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import BaseModel, ConfigDict, Field

from sightline import factory
from sightline.api.context import api_context, principal_of
from sightline.api.errors import BadRequest
from sightline.api.security import Role
from sightline.errors import NotFound
from sightline.services.webhooks import Webhooks, check_url

router = APIGatewayRouter()
EventName = Literal["VideoProcessed", "VideoFailed", "EventDetected"]


class CreateWebhook(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: Annotated[str, Field(min_length=8, max_length=2048)]
    events: Annotated[list[EventName], Field(min_length=1, max_length=3)]


class CreatedWebhook(BaseModel):
    webhook_id: str
    url: str
    events: list[str]
    secret: str = Field(description="HMAC-SHA256 key for Sightline-Signature; shown once")


@router.post("/webhooks", summary="Register a webhook for the tenant's events")
def create_webhook(body: CreateWebhook) -> tuple[CreatedWebhook, int]:
    ctx = api_context()
    who = principal_of(router.current_event)
    who.require(Role.ADMIN)
    try:
        check_url(body.url, allow_loopback_http=ctx.settings.webhook_allow_loopback)
    except ValueError as exc:
        raise BadRequest(str(exc)) from exc
    hook = Webhooks(factory.tables()).create(who.tenant_id, body.url, list(body.events))
    ctx.audit.record(who, "create_webhook", hook["webhook_id"], {"url": body.url})
    return CreatedWebhook.model_validate(hook), 201


@router.get("/webhooks", summary="The tenant's webhooks (never their secrets)")
def list_webhooks() -> dict[str, Any]:
    who = principal_of(router.current_event)
    who.require(Role.ADMIN)
    return {"webhooks": Webhooks(factory.tables()).list(who.tenant_id)}


@router.delete("/webhooks/<webhook_id>", summary="Remove a webhook")
def delete_webhook(
    webhook_id: Annotated[str, PathParam(pattern=r"^[0-9a-f]{16}$")],
) -> dict[str, Any]:
    who = principal_of(router.current_event)
    who.require(Role.ADMIN)
    if not Webhooks(factory.tables()).delete(who.tenant_id, webhook_id):
        raise NotFound(f"webhook {webhook_id} not found")
    api_context().audit.record(who, "delete_webhook", webhook_id)
    return {"webhook_id": webhook_id, "deleted": True}
