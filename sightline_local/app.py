"""The embedded default assembled: the same services the Lambda handlers use, over the
local adapters, plus what a person at a terminal needs (waiting, progress, summaries)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sightline import factory, handlers
from sightline.config import Settings, get_settings
from sightline.models import VideoStatus
from sightline.ports import SearchFilters
from sightline.services.ingest import IngestService
from sightline.services.queries import SearchService, merge_events
from sightline.services.repository import Repository

TERMINAL = {VideoStatus.COMPLETED, VideoStatus.FAILED}


@dataclass
class LocalApp:
    settings: Settings
    repo: Repository
    ingest: IngestService

    @classmethod
    def create(cls) -> LocalApp:
        s = get_settings()
        repo = Repository(factory.tables())
        return cls(
            settings=s,
            repo=repo,
            ingest=IngestService(factory.blobs(), repo, factory.orchestrator()),
        )

    def tenant(self, tenant_id: str | None) -> str:
        return tenant_id or self.settings.default_tenant

    def ingest_and_wait(
        self,
        path: Path,
        *,
        tenant_id: str | None = None,
        timeout_s: float = 3600.0,
        progress: bool = False,
    ) -> dict[str, Any]:
        """Ingest one file through ``ingest_video`` and wait for its outcome."""
        tenant = self.tenant(tenant_id)
        sub = self.ingest.submit_file(tenant, path)
        video = sub.video
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(desc=path.name, unit="chunk", total=None, leave=False)
        deadline = time.monotonic() + timeout_s
        while video.status not in TERMINAL and time.monotonic() < deadline:
            time.sleep(0.25)
            video = self.repo.get_video(tenant, video.video_id)
            if bar is not None and video.chunks_total:
                bar.total = video.chunks_total
                bar.n = video.chunks_done
                bar.refresh()
        if bar is not None:
            bar.close()
        if video.status not in TERMINAL:
            return self._summary(video.video_id, tenant, reason=f"timed out after {timeout_s}s")
        return self._summary(video.video_id, tenant)

    def _summary(self, video_id: str, tenant: str, reason: str | None = None) -> dict[str, Any]:
        video = self.repo.get_video(tenant, video_id)
        events = merge_events(self.repo.list_events(tenant, video_id))
        return {
            "video_id": video.video_id,
            "status": video.status.value,
            "chunks": video.chunks_done,
            "duration_s": video.duration_s,
            "events": [
                {k: e[k] for k in ("type", "start_s", "end_s", "confidence", "description")}
                for e in events
            ],
            **(
                {"reason": reason or video.failure_reason}
                if (reason or video.failure_reason)
                else {}
            ),
        }

    def search(
        self, text: str, *, tenant_id: str | None = None, k: int = 10, video_id: str | None = None
    ) -> list[dict[str, Any]]:
        service = SearchService(factory.embedder(), factory.index())
        filters = SearchFilters(video_ids=(video_id,) if video_id else ())
        hits = service.search_text(self.tenant(tenant_id), text, k=k, filters=filters)
        return [
            {
                "video_id": h.video_id,
                "manifest_id": h.manifest_id,
                "start_s": h.t0,
                "end_s": h.t1,
                "score": round(h.score, 4),
                "description": h.description,
                **(
                    {
                        "camera_id": h.camera_id,
                        "start": _iso(getattr(h, "wall_t0", None)),
                        "end": _iso(getattr(h, "wall_t1", None)),
                    }
                    if h.camera_id
                    else {}
                ),
            }
            for h in hits
        ]

    def events(
        self,
        *,
        tenant_id: str | None = None,
        video_id: str | None = None,
        event_type: str | None = None,
        camera: str | None = None,
    ) -> list[dict[str, Any]]:
        """Events merged across chunks; ``camera`` (a name or id) gives that camera's, with
        wall-clock ``start``/``end``."""
        tenant = self.tenant(tenant_id)
        if camera:
            videos = [handlers.cameras().resolve(tenant, camera).camera_id]
        elif video_id:
            videos = [video_id]
        else:
            videos = [v.video_id for v in self.repo.list_videos(tenant)]
        out: list[dict[str, Any]] = []
        for vid in videos:
            out.extend(
                e
                for e in merge_events(self.repo.list_events(tenant, vid))
                if event_type is None or e["type"] == event_type
            )
        return out

    def videos(self, *, tenant_id: str | None = None) -> list[dict[str, Any]]:
        return [v.model_dump(mode="json") for v in self.repo.list_videos(self.tenant(tenant_id))]


def _iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None
