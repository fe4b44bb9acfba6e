"""Live lag: from a thing happening in front of a camera to its event being searchable.

A camera plays a real clip as a live source (looping file) with the real local models and
the scheduler of ``sightline up`` running in this process. For every event the run
produces, lag = (the moment its chunk's index document appeared) − (the event's wall-clock
start). Part of that lag is structural: a window is processed once it has ended and
settled, so an event near the start of a window waits for the rest of it; the rest is
processing (encode, describe, index).
"""

from __future__ import annotations

import statistics
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sightline import factory, handlers
from sightline.config import get_settings
from sightline.models import CameraState, WindowStatus
from sightline.services.repository import Repository


def run(
    source: Path,
    *,
    clip_seconds: float = 5.0,
    windows: int = 4,
    timeout_s: float = 900.0,
    tenant: str | None = None,
) -> dict[str, Any]:
    from sightline_local.live import ScheduleRunner

    s = get_settings()
    tenant = tenant or s.default_tenant
    camera = handlers.cameras().create(
        tenant, f"bench-{uuid.uuid4().hex[:6]}", source_url=str(source), clip_seconds=clip_seconds
    )
    repo = Repository(factory.tables())
    cams = handlers.cameras().cameras
    index = factory.index()
    searchable: dict[str, datetime] = {}
    from sightline_local.runtime import STEP_TIMES

    STEP_TIMES.reset()
    runner = ScheduleRunner(tick_s=0.2).start()
    started = time.monotonic()
    committed: list[Any] = []
    try:
        while time.monotonic() - started < timeout_s:
            now = datetime.now(UTC)
            for e in repo.list_events(tenant, camera.camera_id):
                if e.event_id not in searchable and index.get(tenant, e.manifest_id):
                    searchable[e.event_id] = now
            committed = cams.list_windows(tenant, camera.camera_id)
            if len(committed) >= windows:
                break
            time.sleep(0.2)
    finally:
        runner.stop()
        # The camera stays in the store for inspection, paused.
        handlers.cameras().update(tenant, camera.camera_id, state=CameraState.PAUSED)
    events = {e.event_id: e for e in repo.list_events(tenant, camera.camera_id)}
    lags = [
        (seen - events[eid].wall_t0).total_seconds()
        for eid, seen in searchable.items()
        if eid in events and events[eid].wall_t0
    ]
    # Per window: from the window's end to its commit (settle + queueing + processing).
    after_end = [(w.committed_at - w.t1).total_seconds() for w in committed]
    return {
        "source": source.name,
        "clip_seconds": clip_seconds,
        "settle_seconds": s.live_settle_seconds,
        "windows": len(committed),
        "windows_done": sum(w.status == WindowStatus.DONE for w in committed),
        "gaps": sum(w.status == WindowStatus.GAP for w in committed),
        "events": len(lags),
        "lag_p50_s": round(statistics.median(lags), 2) if lags else None,
        "lag_max_s": round(max(lags), 2) if lags else None,
        "lag_min_s": round(min(lags), 2) if lags else None,
        "window_end_to_commit_s": [round(x, 2) for x in after_end],
        "keeps_up": bool(after_end) and after_end[-1] <= after_end[0] + clip_seconds,
        # Mean seconds per call of each step's handler (encode includes the codec worker).
        "step_mean_s": {
            step: round(statistics.fmean(times), 2) for step, times in STEP_TIMES.snapshot().items()
        },
        "camera_id": camera.camera_id,
    }
