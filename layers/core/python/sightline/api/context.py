"""What the API routes need, built once per cold start from configuration."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from sightline import factory
from sightline.api.security import ApiKeys, AuthError, Principal
from sightline.config import Settings, get_settings
from sightline.models import utcnow
from sightline.ports import BlobStore, Table
from sightline.services.ingest import IngestService
from sightline.services.queries import SearchService
from sightline.services.repository import Repository


class AuditLog:
    """Append-only: who did what to which object, and when."""

    def __init__(self, table: Table) -> None:
        self._t = table

    def record(
        self, principal: Principal, action: str, target: str, detail: dict[str, Any] | None = None
    ) -> None:
        import uuid

        now = utcnow().isoformat()
        self._t.put(
            principal.tenant_id,
            f"{now}#{uuid.uuid4().hex[:12]}",
            {
                "time": now,
                "subject": principal.subject,
                "via": principal.via,
                "action": action,
                "target": target,
                "detail": detail or {},
            },
        )

    def list(self, tenant_id: str) -> list[dict[str, Any]]:
        return self._t.query(tenant_id)


@dataclass
class ApiContext:
    settings: Settings
    blobs: BlobStore
    repo: Repository
    ingest: IngestService
    keys: ApiKeys
    audit: AuditLog

    def search(self) -> SearchService:
        # Built on first search: the embedding model is the API's heaviest dependency.
        return SearchService(factory.embedder(), factory.index())


@cache
def api_context() -> ApiContext:
    s = get_settings()
    tables = factory.tables()
    repo = Repository(tables)
    ingest = IngestService(
        factory.blobs(),
        repo,
        factory.orchestrator(),
        source_roots=tuple(s.source_roots),
        upload_mode=s.upload_mode,
        bucket=s.bucket,
    )
    return ApiContext(
        settings=s,
        blobs=factory.blobs(),
        repo=repo,
        ingest=ingest,
        keys=ApiKeys(tables),
        audit=AuditLog(tables.table("audit")),
    )


def principal_of(event: Any) -> Principal:
    """The caller the authorizer verified (API Gateway puts it in the request context)."""
    ctx = (event.raw_event.get("requestContext") or {}).get("authorizer")
    if not ctx:
        raise AuthError("the request carries no verified principal")
    return Principal.from_context(ctx)
