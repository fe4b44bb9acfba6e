"""Repositories: tenant-scoped reads and writes of domain records over the Table port.

Every key starts with the tenant, so a lookup with another tenant's id finds nothing.
"""

from __future__ import annotations

from typing import Any

from sightline.errors import NotFound
from sightline.models import Event, ManifestRow, Video, utcnow
from sightline.ports import TableStore


class Repository:
    def __init__(self, tables: TableStore) -> None:
        self.videos = tables.table("videos")
        self.manifests = tables.table("manifests")
        self.events = tables.table("events")

    # ----- videos ----------------------------------------------------------------

    def put_video(self, video: Video) -> None:
        self.videos.put(video.tenant_id, video.video_id, video.model_dump(mode="json"))

    def find_video(self, tenant_id: str, video_id: str) -> Video | None:
        item = self.videos.get(tenant_id, video_id)
        return Video.model_validate(item) if item else None

    def get_video(self, tenant_id: str, video_id: str) -> Video:
        video = self.find_video(tenant_id, video_id)
        if video is None:
            raise NotFound(f"video {video_id} not found")
        return video

    def update_video(self, tenant_id: str, video_id: str, **changes: Any) -> Video:
        changes["updated_at"] = utcnow()
        item = self.videos.update(
            tenant_id, video_id, {k: _jsonable(v) for k, v in changes.items()}
        )
        if item is None:
            raise NotFound(f"video {video_id} not found")
        return Video.model_validate(item)

    def list_videos(self, tenant_id: str) -> list[Video]:
        return [Video.model_validate(i) for i in self.videos.query(tenant_id)]

    # ----- manifests -------------------------------------------------------------

    def put_manifest(self, row: ManifestRow) -> None:
        self.manifests.put(row.tenant_id, row.manifest_id, row.model_dump(mode="json"))

    def find_manifest(self, tenant_id: str, manifest_id: str) -> ManifestRow | None:
        item = self.manifests.get(tenant_id, manifest_id)
        return ManifestRow.model_validate(item) if item else None

    def list_manifests(self, tenant_id: str, video_id: str) -> list[ManifestRow]:
        return [
            ManifestRow.model_validate(i) for i in self.manifests.query(tenant_id, f"{video_id}-c")
        ]

    def delete_manifests(self, tenant_id: str, video_id: str) -> int:
        rows = self.list_manifests(tenant_id, video_id)
        for row in rows:
            self.manifests.delete(tenant_id, row.manifest_id)
        return len(rows)

    # ----- events ----------------------------------------------------------------

    @staticmethod
    def _events_pk(tenant_id: str, video_id: str) -> str:
        return f"{tenant_id}#{video_id}"

    def replace_chunk_events(
        self, tenant_id: str, video_id: str, chunk: int, events: list[Event]
    ) -> None:
        """Make the chunk's stored events exactly ``events`` (re-runs change nothing)."""
        pk = self._events_pk(tenant_id, video_id)
        prefix = f"{chunk:05d}#"
        wanted = {f"{prefix}{e.event_id}": e for e in events}
        for item in self.events.query(pk, prefix):
            sk = f"{prefix}{item['event_id']}"
            if sk not in wanted:
                self.events.delete(pk, sk)
        for sk, event in wanted.items():
            self.events.put(pk, sk, event.model_dump(mode="json"))

    def list_events(self, tenant_id: str, video_id: str) -> list[Event]:
        items = self.events.query(self._events_pk(tenant_id, video_id))
        return sorted((Event.model_validate(i) for i in items), key=lambda e: (e.t0, e.type))

    def delete_events(self, tenant_id: str, video_id: str) -> int:
        pk = self._events_pk(tenant_id, video_id)
        items = self.events.query(pk)
        for item in items:
            self.events.delete(pk, f"{item['chunk']:05d}#{item['event_id']}")
        return len(items)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "value") and isinstance(getattr(value, "value", None), str):
        return value.value
    return value
