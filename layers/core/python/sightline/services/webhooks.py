"""Signed webhooks: tenant-registered HTTPS endpoints that receive bus events.

Each delivery carries ``Sightline-Signature: t=<unix seconds>,v1=<hex>`` where ``v1`` is
HMAC-SHA256 over ``"<t>.<body>"`` with the webhook's secret, so a receiver can check both
origin and freshness. Failed deliveries are retried with exponential backoff.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sightline.models import utcnow
from sightline.ports import TableStore

logger = logging.getLogger(__name__)

EVENT_TYPES = ("VideoProcessed", "VideoFailed", "EventDetected")
SIGNATURE_HEADER = "Sightline-Signature"


def sign(secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(
    secret: str, body: bytes, header: str, *, tolerance_s: int = 300, now: float | None = None
) -> bool:
    """What a receiver does: check the signature and that it is recent."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        ts = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs((now or time.time()) - ts) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, body, ts), f"t={ts},v1={parts.get('v1', '')}")


def check_url(url: str, *, allow_loopback_http: bool) -> None:
    """Refuse URLs that would point the platform at itself or at private networks."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("webhook URLs must be absolute http(s) URLs")
    try:
        addresses = {ai[4][0] for ai in socket.getaddrinfo(parts.hostname, parts.port or 443)}
    except socket.gaierror as exc:
        raise ValueError(f"cannot resolve {parts.hostname}") from exc
    ips = [ipaddress.ip_address(a.split("%")[0]) for a in addresses]
    if allow_loopback_http and all(ip.is_loopback for ip in ips):
        return
    if parts.scheme != "https":
        raise ValueError("webhook URLs must use https")
    if any(ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved for ip in ips):
        raise ValueError("webhook URLs must not point at private or loopback addresses")


@dataclass
class Webhooks:
    tables: TableStore

    def __post_init__(self) -> None:
        self._t = self.tables.table("webhooks")

    def create(self, tenant_id: str, url: str, events: list[str]) -> dict[str, Any]:
        hook = {
            "webhook_id": secrets.token_hex(8),
            "tenant_id": tenant_id,
            "url": url,
            "events": events,
            "secret": "whsec_" + secrets.token_urlsafe(24),
            "created_at": utcnow().isoformat(),
        }
        self._t.put(tenant_id, hook["webhook_id"], hook)
        return hook

    def list(self, tenant_id: str) -> list[dict[str, Any]]:
        return [{k: v for k, v in h.items() if k != "secret"} for h in self._t.query(tenant_id)]

    def delete(self, tenant_id: str, webhook_id: str) -> bool:
        if self._t.get(tenant_id, webhook_id) is None:
            return False
        self._t.delete(tenant_id, webhook_id)
        return True

    def targets(self, tenant_id: str, detail_type: str) -> list[dict[str, Any]]:
        return [h for h in self._t.query(tenant_id) if detail_type in h["events"]]


def deliver(
    hook: dict[str, Any],
    detail_type: str,
    detail: dict[str, Any],
    *,
    attempts: int = 4,
    base_delay_s: float = 0.5,
    timeout_s: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """POST one event to one webhook, retrying 5xx/timeouts with exponential backoff."""
    body = json.dumps(
        {
            "type": detail_type,
            "id": secrets.token_hex(12),
            "time": utcnow().isoformat(),
            "data": detail,
        },
        default=str,
    ).encode()
    for attempt in range(attempts):
        req = urllib.request.Request(
            hook["url"],
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": "Sightline-Webhooks/1",
                SIGNATURE_HEADER: sign(hook["secret"], body, int(time.time())),
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:
                if 200 <= resp.status < 300:
                    return True
        except urllib.error.HTTPError as exc:
            if 400 <= exc.code < 500 and exc.code not in (408, 429):
                logger.warning(
                    "webhook %s refused %s: %s", hook["webhook_id"], detail_type, exc.code
                )
                return False
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            logger.info("webhook %s attempt %d failed: %s", hook["webhook_id"], attempt + 1, exc)
        if attempt + 1 < attempts:
            sleep(base_delay_s * 2**attempt)
    return False


def dispatch(webhooks: Webhooks, detail_type: str, detail: dict[str, Any], **kw: Any) -> int:
    """Deliver a bus event to every webhook of its tenant that asked for it."""
    tenant = detail.get("tenant_id")
    if detail_type not in EVENT_TYPES or not tenant:
        return 0
    return sum(
        deliver(hook, detail_type, detail, **kw) for hook in webhooks.targets(tenant, detail_type)
    )
