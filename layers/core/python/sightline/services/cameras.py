"""Live cameras: the camera records, their schedules, and the three steps of ``live_clip``.

A camera's ``watermark`` is the end of the last window committed. ``plan`` cuts the next
windows from it (contiguous, each ``clip_seconds`` long, only once they have ended and
settled); ``fetch`` stores a window's media as a chunk; ``commit`` moves the watermark from
the window's start to its end with a compare-and-set, so a window is committed once even
when an execution is re-driven or two executions race. A lease taken by ``plan`` keeps a
second execution of the same camera from planning while one runs.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sightline import keys
from sightline.config import Settings
from sightline.errors import Conflict, InvalidRequest, NotFound
from sightline.models import (
    Camera,
    CameraState,
    CameraWindow,
    ChunkRef,
    LiveCommitInput,
    LiveFetchOutput,
    LivePlan,
    LiveWindow,
    WindowStatus,
    utcnow,
)
from sightline.ports import BlobStore, ClipSource, EventBus, Fragment, Scheduler, TableStore
from sightline.services.pipeline import _reason as failure_reason

logger = logging.getLogger(__name__)

CAMERAS_TABLE = "cameras"
WINDOWS_TABLE = "camera_windows"


def new_camera_id() -> str:
    return f"cam_{secrets.token_hex(8)}"


def _seconds(delta: timedelta) -> float:
    return round(delta.total_seconds(), 3)


def _as_stored(camera: Camera, fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` validated as camera fields and in the JSON form the tables store."""
    dumped = Camera.model_validate({**camera.model_dump(), **fields}).model_dump(mode="json")
    return {k: dumped[k] for k in fields}


class CameraRepository:
    """Tenant-scoped camera and window records."""

    def __init__(self, tables: TableStore) -> None:
        self.cameras = tables.table(CAMERAS_TABLE)
        self.windows = tables.table(WINDOWS_TABLE)

    def put(self, camera: Camera) -> None:
        self.cameras.put(camera.tenant_id, camera.camera_id, camera.model_dump(mode="json"))

    def find(self, tenant_id: str, camera_id: str) -> Camera | None:
        item = self.cameras.get(tenant_id, camera_id)
        return Camera.model_validate(item) if item else None

    def get(self, tenant_id: str, camera_id: str) -> Camera:
        camera = self.find(tenant_id, camera_id)
        if camera is None:
            raise NotFound(f"camera {camera_id} not found")
        return camera

    def by_name(self, tenant_id: str, name: str) -> Camera | None:
        return next((c for c in self.list(tenant_id) if c.name == name), None)

    def list(self, tenant_id: str) -> list[Camera]:
        return [Camera.model_validate(i) for i in self.cameras.query(tenant_id)]

    def update(
        self, camera: Camera, changes: dict[str, Any], *, expect: dict[str, Any] | None = None
    ) -> Camera:
        changes = {**changes, "updated_at": utcnow()}
        item = self.cameras.update(
            camera.tenant_id,
            camera.camera_id,
            _as_stored(camera, changes),
            expect=_as_stored(camera, expect) if expect else None,
        )
        if item is None:
            raise NotFound(f"camera {camera.camera_id} not found")
        return Camera.model_validate(item)

    def delete(self, tenant_id: str, camera_id: str) -> None:
        self.cameras.delete(tenant_id, camera_id)

    # ----- windows ---------------------------------------------------------------

    @staticmethod
    def _windows_pk(tenant_id: str, camera_id: str) -> str:
        return f"{tenant_id}#{camera_id}"

    def put_window(self, window: CameraWindow) -> None:
        self.windows.put(
            self._windows_pk(window.tenant_id, window.camera_id),
            f"{window.index:08d}",
            window.model_dump(mode="json"),
        )

    def list_windows(self, tenant_id: str, camera_id: str) -> list[CameraWindow]:
        return [
            CameraWindow.model_validate(i)
            for i in self.windows.query(self._windows_pk(tenant_id, camera_id))
        ]

    def delete_windows(self, tenant_id: str, camera_id: str) -> int:
        rows = self.list_windows(tenant_id, camera_id)
        for w in rows:
            self.windows.delete(self._windows_pk(tenant_id, camera_id), f"{w.index:08d}")
        return len(rows)


@dataclass
class CameraService:
    """What the cameras API and CLI do: records plus their schedules."""

    settings: Settings
    cameras: CameraRepository
    scheduler: Scheduler

    def _check_clip(self, clip_seconds: float) -> float:
        s = self.settings
        if not s.live_min_clip_seconds <= clip_seconds <= s.live_max_clip_seconds:
            raise InvalidRequest(
                f"clip_seconds must be between {s.live_min_clip_seconds:g} and "
                f"{s.live_max_clip_seconds:g}"
            )
        return float(clip_seconds)

    def create(
        self,
        tenant_id: str,
        name: str,
        *,
        source_url: str | None = None,
        kvs_stream_arn: str | None = None,
        clip_seconds: float = 10.0,
        paused: bool = False,
    ) -> Camera:
        if bool(source_url) == bool(kvs_stream_arn):
            raise InvalidRequest("give exactly one of source_url and kvs_stream_arn")
        if self.cameras.by_name(tenant_id, name) is not None:
            raise InvalidRequest(f"a camera named {name!r} exists already")
        now = utcnow()
        camera = Camera(
            tenant_id=tenant_id,
            camera_id=new_camera_id(),
            name=name,
            source_url=source_url,
            kvs_stream_arn=kvs_stream_arn,
            clip_seconds=self._check_clip(clip_seconds),
            state=CameraState.PAUSED if paused else CameraState.ACTIVE,
            origin=now,
            watermark=now,
            created_at=now,
            updated_at=now,
        )
        self.cameras.put(camera)
        self.scheduler.put(tenant_id, camera.camera_id, camera.clip_seconds, enabled=not paused)
        return camera

    def resolve(self, tenant_id: str, id_or_name: str) -> Camera:
        camera = self.cameras.find(tenant_id, id_or_name) if id_or_name.startswith("cam_") else None
        camera = camera or self.cameras.by_name(tenant_id, id_or_name)
        if camera is None:
            raise NotFound(f"camera {id_or_name} not found")
        return camera

    def update(
        self,
        tenant_id: str,
        camera_id: str,
        *,
        state: CameraState | None = None,
        clip_seconds: float | None = None,
    ) -> Camera:
        camera = self.cameras.get(tenant_id, camera_id)
        changes: dict[str, Any] = {}
        if clip_seconds is not None:
            changes["clip_seconds"] = self._check_clip(clip_seconds)
        if state is not None and state != camera.state:
            changes["state"] = state
            if state == CameraState.ACTIVE:
                camera = self._skip_paused(camera)
                changes["last_error"] = None
        if changes:
            camera = self.cameras.update(camera, changes)
        self.scheduler.put(
            tenant_id,
            camera_id,
            camera.clip_seconds,
            enabled=camera.state == CameraState.ACTIVE,
        )
        return camera

    def _skip_paused(self, camera: Camera) -> Camera:
        """A camera resumes at the present: the whole windows of the paused stretch were
        not wanted, so they become one recorded gap instead of a backlog."""
        clip = timedelta(seconds=camera.clip_seconds)
        whole = int((utcnow() - camera.watermark) / clip)
        if whole <= 0:
            return camera
        end = camera.watermark + whole * clip
        self.cameras.put_window(
            CameraWindow(
                tenant_id=camera.tenant_id,
                camera_id=camera.camera_id,
                index=camera.next_index,
                t0=camera.watermark,
                t1=end,
                status=WindowStatus.GAP,
                reason="camera paused",
            )
        )
        return self.cameras.update(
            camera,
            {"watermark": end, "next_index": camera.next_index + 1, "gaps": camera.gaps + 1},
            expect={"watermark": camera.watermark},
        )

    def delete(self, tenant_id: str, camera_id: str) -> None:
        camera = self.cameras.get(tenant_id, camera_id)
        self.scheduler.delete(tenant_id, camera.camera_id)
        self.cameras.delete(tenant_id, camera.camera_id)


# ----- live_clip ---------------------------------------------------------------------


def split_by_fragments(
    t0: datetime, t1: datetime, fragments: list[Fragment], *, max_bytes: int, max_count: int
) -> list[tuple[datetime, datetime]]:
    """Cut [t0, t1) at fragment boundaries so no piece holds more than ``max_count``
    fragments or ``max_bytes`` (the limits of one KVS GetClip call)."""
    pieces: list[tuple[datetime, datetime]] = []
    start, count, size = t0, 0, 0
    for frag in fragments:
        if count and (count + 1 > max_count or size + frag.size_bytes > max_bytes):
            cut = max(frag.start, start)
            if cut > start:
                pieces.append((start, cut))
                start = cut
            count, size = 0, 0
        count += 1
        size += frag.size_bytes
    pieces.append((start, t1))
    return pieces


@dataclass
class LiveService:
    """The steps of ``live_clip``: plan, fetch, commit, release."""

    settings: Settings
    cameras: CameraRepository
    blobs: BlobStore
    bus: EventBus
    sources: Callable[[Camera], ClipSource]

    def plan(
        self, tenant_id: str, camera_id: str, owner: str, now: datetime | None = None
    ) -> LivePlan:
        """Take the lease and list the windows due, oldest first, at most ``live_max_windows``."""
        s = self.settings
        now = now or utcnow()
        camera = self.cameras.find(tenant_id, camera_id)
        empty = LivePlan(tenant_id=tenant_id, camera_id=camera_id)
        if camera is None:
            return empty
        if (
            camera.lease_owner
            and camera.lease_owner != owner
            and camera.lease_until
            and (camera.lease_until > now)
        ):
            logger.info("camera %s is leased by %s", camera_id, camera.lease_owner)
            return empty
        try:
            camera = self.cameras.update(
                camera,
                {
                    "lease_owner": owner,
                    "lease_until": now + timedelta(seconds=s.live_lease_seconds),
                },
                expect={"lease_owner": camera.lease_owner},
            )
        except Conflict:
            return empty
        plan = LivePlan(tenant_id=tenant_id, camera_id=camera_id, lease=owner)
        clip = timedelta(seconds=camera.clip_seconds)
        due = now - timedelta(seconds=s.live_settle_seconds)
        start, index = camera.watermark, camera.next_index
        if camera.state == CameraState.PAUSED or start + clip > due:
            return plan
        # Media older than the retention is gone: one gap up to the oldest window kept.
        horizon = due - timedelta(seconds=s.live_retention_seconds)
        if start < horizon:
            skip = horizon - ((horizon - start) % clip) if clip else horizon
            skip = max(skip, start + clip)
            plan.windows.append(
                LiveWindow(
                    tenant_id=tenant_id,
                    camera_id=camera_id,
                    index=index,
                    t0=start,
                    t1=skip,
                    skip_reason="media older than the stream's retention",
                )
            )
            start, index = skip, index + 1
        source = self.sources(camera)
        while start + clip <= due and len(plan.windows) < s.live_max_windows:
            end = start + clip
            pieces = split_by_fragments(
                start,
                end,
                source.fragments(start, end),
                max_bytes=s.live_max_clip_bytes,
                max_count=s.live_max_clip_fragments,
            )
            for a, b in pieces:
                plan.windows.append(
                    LiveWindow(tenant_id=tenant_id, camera_id=camera_id, index=index, t0=a, t1=b)
                )
                index += 1
            start = end
        return plan

    def fetch(self, window: LiveWindow) -> LiveFetchOutput:
        """Store the window's media as the camera's chunk ``index``; no media is a gap."""
        if window.skip_reason:
            return LiveFetchOutput(has_media=False, reason=window.skip_reason)
        camera = self.cameras.get(window.tenant_id, window.camera_id)
        key = keys.chunk(window.tenant_id, window.camera_id, window.index)
        if not self.blobs.exists(key):
            with tempfile.TemporaryDirectory(prefix="sl-live-") as tmp:
                out = Path(tmp) / "clip.mp4"
                if not self.sources(camera).clip(window.t0, window.t1, out):
                    return LiveFetchOutput(has_media=False, reason="no media in the window")
                self.blobs.upload_file(out, key, "video/mp4")
        return LiveFetchOutput(
            has_media=True,
            chunk=ChunkRef(
                tenant_id=window.tenant_id,
                video_id=window.camera_id,
                index=window.index,
                t0=_seconds(window.t0 - camera.origin),
                t1=_seconds(window.t1 - camera.origin),
                key=key,
                camera_id=window.camera_id,
                stream_id=window.camera_id,
                wall_t0=window.t0,
            ),
        )

    def commit(self, payload: LiveCommitInput) -> CameraWindow:
        """Move the watermark past the window (once) and record what became of it."""
        w = payload.window
        camera = self.cameras.get(w.tenant_id, w.camera_id)
        if camera.watermark >= w.t1:
            # Committed already (a re-driven execution): nothing changes.
            done = {x.index: x for x in self.cameras.list_windows(w.tenant_id, w.camera_id)}
            if w.index in done:
                return done[w.index]
        if camera.watermark != w.t0:
            raise Conflict(
                f"camera {w.camera_id}: window {w.t0.isoformat()} does not start at the "
                f"watermark {camera.watermark.isoformat()}"
            )
        if payload.error:
            status, reason = WindowStatus.FAILED, failure_reason(payload.error)
        elif payload.fetch is None or not payload.fetch.has_media:
            status = WindowStatus.GAP
            reason = payload.fetch.reason if payload.fetch else "no media"
        else:
            status, reason = WindowStatus.DONE, None
        result = payload.result or {}
        events = int(result.get("events", 0))
        window = CameraWindow(
            tenant_id=w.tenant_id,
            camera_id=w.camera_id,
            index=w.index,
            t0=w.t0,
            t1=w.t1,
            status=status,
            reason=reason,
            manifest_id=result.get("manifest_id"),
            events=events,
        )
        self.cameras.put_window(window)
        changes: dict[str, Any] = {
            "watermark": w.t1,
            "next_index": w.index + 1,
            "windows_done": camera.windows_done + (status == WindowStatus.DONE),
            "gaps": camera.gaps + (status == WindowStatus.GAP),
            "failed": camera.failed + (status == WindowStatus.FAILED),
            "last_error": reason if status == WindowStatus.FAILED else camera.last_error,
        }
        if events:
            changes["last_event_at"] = w.t1
        self.cameras.update(camera, changes, expect={"watermark": w.t0})
        self.bus.publish("CameraWindowCommitted", window.model_dump(mode="json"))
        return window

    def release(self, tenant_id: str, camera_id: str, owner: str) -> None:
        camera = self.cameras.find(tenant_id, camera_id)
        if camera is None or camera.lease_owner != owner:
            return
        with contextlib.suppress(Conflict):  # taken over after expiry: not ours to release
            self.cameras.update(
                camera, {"lease_owner": None, "lease_until": None}, expect={"lease_owner": owner}
            )
