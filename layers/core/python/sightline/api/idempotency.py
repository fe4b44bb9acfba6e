"""Idempotency keys on POSTs (Powertools idempotency).

A client that repeats a POST with the same ``Idempotency-Key`` gets the first answer
back and nothing is created twice; the same key with a different body is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

from sightline.api.errors import BadRequest
from sightline.config import get_settings

HEADER = "idempotency-key"


def key_of(headers: dict[str, str] | None) -> str | None:
    for name, value in (headers or {}).items():
        if name.lower() == HEADER:
            return value
    return None


@cache
def persistence() -> BasePersistenceLayer:
    s = get_settings()
    if s.tables == "aws":
        from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

        return DynamoDBPersistenceLayer(
            table_name=f"{s.table_prefix}idempotency",
            key_attr="pk",
            sort_key_attr="sk",
            expiry_attr="expires_at",
        )
    from sightline.adapters.local_idempotency import SqliteIdempotencyLayer

    return SqliteIdempotencyLayer(s.home / "idempotency.db")


_CONFIG = IdempotencyConfig(
    event_key_jmespath="[tenant, route, key]",
    payload_validation_jmespath="body",
    expires_after_seconds=24 * 3600,
    raise_on_no_idempotency_key=True,
)


def run_idempotent(
    *,
    tenant_id: str,
    route: str,
    key: str | None,
    body: dict[str, Any],
    fn: Callable[[], dict[str, Any]],
    lambda_context: Any = None,
) -> dict[str, Any]:
    """``fn()`` once per (tenant, route, key); without a key, every call runs."""
    if not key:
        return fn()
    if len(key) > 128:
        raise BadRequest("Idempotency-Key is limited to 128 characters")
    if lambda_context is not None:
        # Lets an in-progress record expire with the invocation if Lambda times out.
        _CONFIG.register_lambda_context(lambda_context)

    @idempotent_function(
        data_keyword_argument="request", persistence_store=persistence(), config=_CONFIG
    )
    def _once(request: dict[str, Any]) -> dict[str, Any]:
        return fn()

    return _once(request={"tenant": tenant_id, "route": route, "key": key, "body": body})
