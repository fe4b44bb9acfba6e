"""Model token usage per call and per tenant, kept in the ``usage`` table.

Key: pk = tenant, sk = ``<YYYY-MM-DD>#<model id>#<call id>``. One item per call, keyed
by what the call was for (``<chunk id>#describe``), so a re-run of a step overwrites its
own record instead of counting twice, and concurrent chunks never contend for one
counter. Totals per tenant, day and model are a prefix query (``<date>#<model>``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sightline.ports import Table

USAGE_TABLE = "usage"


@dataclass(frozen=True)
class TokenUsage:
    input_tokens: int = 0
    output_tokens: int = 0

    @classmethod
    def from_converse(cls, usage: dict[str, Any] | None) -> TokenUsage:
        """From a Converse response's ``usage`` ({inputTokens, outputTokens, totalTokens})."""
        u = usage or {}
        return cls(int(u.get("inputTokens", 0) or 0), int(u.get("outputTokens", 0) or 0))

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens
        )


class UsageRecorder:
    def __init__(self, table: Table) -> None:
        self.table = table

    @staticmethod
    def sort_key(day: date, model_id: str, call_id: str = "") -> str:
        base = f"{day.isoformat()}#{model_id}"
        return f"{base}#{call_id}" if call_id else base

    def record(
        self,
        tenant_id: str,
        model_id: str,
        usage: TokenUsage,
        *,
        call_id: str,
        day: date | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        if not call_id:
            raise ValueError("call_id is required (it makes re-runs idempotent)")
        day = day or datetime.now(UTC).date()
        self.table.put(
            tenant_id,
            self.sort_key(day, model_id, call_id),
            {
                "tenant_id": tenant_id,
                "date": day.isoformat(),
                "model_id": model_id,
                "call_id": call_id,
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "recorded_at": datetime.now(UTC).isoformat(),
                **(extra or {}),
            },
        )

    def totals(self, tenant_id: str, prefix: str = "") -> dict[tuple[str, str], TokenUsage]:
        """Tokens per (date, model id) for a tenant; ``prefix`` narrows by sk ("2026-11")."""
        out: dict[tuple[str, str], TokenUsage] = defaultdict(TokenUsage)
        for item in self.table.query(tenant_id, prefix):
            k = (str(item["date"]), str(item["model_id"]))
            out[k] = out[k] + TokenUsage(
                int(item.get("input_tokens", 0)), int(item.get("output_tokens", 0))
            )
        return dict(out)
