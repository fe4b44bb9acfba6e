"""The live path while ``sightline up`` runs: fire each camera's schedule on time, and keep
a recorder running for every camera that pulls a stream URL.

EventBridge Scheduler does the firing on AWS. Here a thread ticks every ``tick_s``: an
enabled schedule whose time has come starts ``live_clip`` unless that camera's previous run
is still going (the run takes every window due, so nothing is lost by skipping a tick).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from sightline import factory
from sightline.adapters.local_live import LocalScheduler, StreamRecorder, is_stream_url
from sightline.config import get_settings
from sightline.models import Camera, CameraState, LiveClipInput, utcnow
from sightline.services.cameras import CameraRepository

logger = logging.getLogger(__name__)


def pid_file() -> Path:
    return get_settings().home / "scheduler.pid"


def scheduler_alive() -> bool:
    """Whether a ``sightline up`` (its scheduler) runs over this SIGHTLINE_HOME now."""
    try:
        pid = int(pid_file().read_text())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return False
    return True


class ScheduleRunner:
    def __init__(self, *, tick_s: float = 0.5) -> None:
        self.tick_s = tick_s
        self.cameras = CameraRepository(factory.tables())
        self.scheduler = LocalScheduler(factory.tables())
        self.orchestrator = factory.orchestrator()
        self._running: dict[str, str] = {}  # camera_id -> execution arn
        self._next: dict[str, float] = {}
        self._last: dict[str, float] = {}
        self._recorders: dict[str, StreamRecorder] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.started: list[str] = []

    def start(self) -> ScheduleRunner:
        pid_file().parent.mkdir(parents=True, exist_ok=True)
        pid_file().write_text(str(os.getpid()))
        self.release_stale_leases()
        self._thread = threading.Thread(target=self._loop, name="sightline-scheduler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(FileNotFoundError):
            if pid_file().read_text() == str(os.getpid()):
                pid_file().unlink()
        if self._thread:
            self._thread.join(timeout=10)
        for rec in self._recorders.values():
            rec.stop()
        self._recorders.clear()

    def release_stale_leases(self) -> int:
        """Executions of an earlier process are gone with it: their camera leases are free.

        The watermark is untouched, so the next run resumes exactly where the last commit
        left off (a window that was mid-way is processed again; its steps are idempotent).
        """
        released = 0
        for sched in self.scheduler.all():
            camera = self.cameras.find(sched["tenant_id"], sched["camera_id"])
            if camera and camera.lease_owner:
                self.cameras.update(
                    camera,
                    {"lease_owner": None, "lease_until": None},
                    expect={"lease_owner": camera.lease_owner},
                )
                released += 1
        return released

    def tick(self, now: float | None = None) -> list[str]:
        """Fire what is due; returns the execution ids started (tests call this directly)."""
        now = time.monotonic() if now is None else now
        started = []
        settle = get_settings().live_settle_seconds
        wanted_recorders: set[str] = set()
        for sched in self.scheduler.all():
            cam_id = sched["camera_id"]
            camera = self.cameras.find(sched["tenant_id"], cam_id)
            if camera is None:
                continue
            if camera.state == CameraState.ACTIVE and is_stream_url(camera.source_url):
                wanted_recorders.add(cam_id)
                self._ensure_recorder(camera)
            if not sched.get("enabled") or camera.state != CameraState.ACTIVE:
                continue
            running = self._running.get(cam_id)
            if running and self.orchestrator.is_running(running):
                continue
            # Fire as soon as the next window has ended and settled (the schedule's period
            # is the longest wait), at most once a second while nothing comes due.
            due = camera.watermark + timedelta(seconds=camera.clip_seconds + settle)
            if now < self._next.get(cam_id, 0.0) or (
                utcnow() < due and now < self._last.get(cam_id, 0.0) + float(sched["every_s"])
            ):
                continue
            arn = self.orchestrator.start_live_clip(
                LiveClipInput(tenant_id=camera.tenant_id, camera_id=cam_id)
            )
            self._running[cam_id] = arn
            self._next[cam_id] = now + 1.0
            self._last[cam_id] = now
            started.append(arn)
        for cam_id in list(self._recorders):
            if cam_id not in wanted_recorders:
                self._recorders.pop(cam_id).stop()
        self.started.extend(started)
        return started

    def _ensure_recorder(self, camera: Camera) -> None:
        if camera.camera_id in self._recorders:
            return
        s = get_settings()
        self._recorders[camera.camera_id] = StreamRecorder(
            camera.source_url or "",
            factory.live_folder(camera),
            ffmpeg=s.ffmpeg,
            keep_s=min(s.live_retention_seconds, 6 * 3600.0),
        ).start()

    def recorder(self, camera_id: str) -> StreamRecorder | None:
        return self._recorders.get(camera_id)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # the scheduler must outlive any one camera's trouble
                logger.exception("scheduler tick failed")
            self._stop.wait(self.tick_s)

    def status(self) -> dict[str, Any]:
        return {"running": dict(self._running), "recorders": sorted(self._recorders)}
