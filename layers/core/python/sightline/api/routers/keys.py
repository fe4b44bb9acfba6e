"""/v1/keys: API keys for service accounts (admin)."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path as PathParam
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from sightline.api.context import api_context, principal_of
from sightline.api.idempotency import key_of, run_idempotent
from sightline.api.schemas import CreatedKey, CreateKey, KeyList
from sightline.api.security import Role
from sightline.errors import NotFound

router = APIGatewayRouter()


@router.post("/keys", summary="Create an API key scoped to the caller's tenant")
def create_key(body: CreateKey) -> tuple[CreatedKey, int]:
    ctx = api_context()
    who = principal_of(router.current_event)
    who.require(Role.ADMIN)

    def create() -> dict[str, Any]:
        key_id, secret = ctx.keys.create(who.tenant_id, body.role, body.name)
        ctx.audit.record(who, "create_key", key_id, {"role": body.role.value})
        return CreatedKey(key_id=key_id, api_key=secret, role=body.role).model_dump(mode="json")

    out = run_idempotent(
        tenant_id=who.tenant_id,
        route="POST /v1/keys",
        key=key_of(router.current_event.headers),
        lambda_context=router.lambda_context,
        body=body.model_dump(mode="json"),
        fn=create,
    )
    return CreatedKey.model_validate(out), 201


@router.get("/keys", summary="The tenant's API keys (never their secrets)")
def list_keys() -> KeyList:
    ctx = api_context()
    who = principal_of(router.current_event)
    who.require(Role.ADMIN)
    return KeyList(keys=ctx.keys.list(who.tenant_id))


@router.delete("/keys/<key_id>", summary="Revoke an API key")
def revoke_key(key_id: Annotated[str, PathParam(pattern=r"^[0-9a-f]{16}$")]) -> tuple[dict, int]:
    ctx = api_context()
    who = principal_of(router.current_event)
    who.require(Role.ADMIN)
    if not ctx.keys.revoke(who.tenant_id, key_id):
        raise NotFound(f"key {key_id} not found")
    ctx.audit.record(who, "revoke_key", key_id)
    return {"key_id": key_id, "revoked": True}, 200
