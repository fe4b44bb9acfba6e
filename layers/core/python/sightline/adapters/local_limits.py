"""Per-tenant concurrency slots on SQLite (the TenantLimiter port on one machine).

One row per live holder in ``tenant_slots``; every acquire runs in a ``BEGIN IMMEDIATE``
transaction, so counting and taking a slot is atomic across the threads of the local
runtime and the processes sharing the file (CLI and server). Expired leases are dropped
first: a holder that never released (a lost codec notice) stops counting once its lease
ends, as DynamoDB's conditional writes on ``expires_at`` do on AWS.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from sightline.adapters.local_tables import _Connections
from sightline.errors import TenantThrottled


class SqliteTenantLimiter:
    def __init__(self, path: Path, *, now: Callable[[], float] = time.time) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conns = _Connections(path)
        self._now = now
        self._conns.get().execute(
            "CREATE TABLE IF NOT EXISTS tenant_slots (scope TEXT NOT NULL, holder TEXT NOT NULL, "
            "expires_at REAL NOT NULL, PRIMARY KEY (scope, holder)) WITHOUT ROWID"
        )

    @staticmethod
    def _scope(tenant_id: str, step: str) -> str:
        return f"{tenant_id}#{step}"

    def acquire(
        self, tenant_id: str, step: str, holder: str, *, limit: int, lease_s: float
    ) -> None:
        if limit <= 0:
            return
        scope, now = self._scope(tenant_id, step), self._now()
        conn = self._conns.get()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "DELETE FROM tenant_slots WHERE scope = ? AND expires_at <= ?", (scope, now)
            )
            mine = conn.execute(
                "SELECT 1 FROM tenant_slots WHERE scope = ? AND holder = ?", (scope, holder)
            ).fetchone()
            if mine is None:
                (held,) = conn.execute(
                    "SELECT COUNT(*) FROM tenant_slots WHERE scope = ?", (scope,)
                ).fetchone()
                if held >= limit:
                    conn.execute("ROLLBACK")
                    raise TenantThrottled(
                        f"tenant {tenant_id} has {held} {step} steps running (limit {limit})"
                    )
            conn.execute(
                "INSERT OR REPLACE INTO tenant_slots (scope, holder, expires_at) VALUES (?, ?, ?)",
                (scope, holder, now + lease_s),
            )
            conn.execute("COMMIT")
        except TenantThrottled:
            raise
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def release(self, tenant_id: str, step: str, holder: str) -> None:
        self._conns.get().execute(
            "DELETE FROM tenant_slots WHERE scope = ? AND holder = ?",
            (self._scope(tenant_id, step), holder),
        )

    def holders(self, tenant_id: str, step: str) -> list[str]:
        rows = (
            self._conns.get()
            .execute(
                "SELECT holder FROM tenant_slots WHERE scope = ? AND expires_at > ? "
                "ORDER BY holder",
                (self._scope(tenant_id, step), self._now()),
            )
            .fetchall()
        )
        return [r[0] for r in rows]
