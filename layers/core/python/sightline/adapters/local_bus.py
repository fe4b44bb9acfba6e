"""Event bus on one machine: an append-only log table plus in-process subscribers."""

from __future__ import annotations

import logging
import threading
import uuid
from typing import Any

from sightline.models import utcnow
from sightline.ports import Subscriber, TableStore

logger = logging.getLogger(__name__)


class LocalEventBus:
    source = "sightline"

    def __init__(self, tables: TableStore) -> None:
        self._log = tables.table("bus")
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, fn: Subscriber) -> None:
        with self._lock:
            self._subscribers.append(fn)

    def unsubscribe(self, fn: Subscriber) -> None:
        with self._lock:
            if fn in self._subscribers:
                self._subscribers.remove(fn)

    def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        now = utcnow().isoformat()
        self._log.put(
            detail_type,
            f"{now}#{uuid.uuid4().hex[:8]}",
            {"detail_type": detail_type, "time": now, "detail": detail},
        )
        with self._lock:
            subscribers = list(self._subscribers)
        for fn in subscribers:
            try:
                fn(detail_type, detail)
            except Exception:  # a subscriber's bug must not fail the publisher
                logger.exception("bus subscriber failed for %s", detail_type)

    def history(self, detail_type: str) -> list[dict[str, Any]]:
        return self._log.query(detail_type)
