"""Starting ingests: register the video, store its source, start ``ingest_video``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import blake3

from sightline import keys
from sightline.models import IngestInput, Video, VideoStatus
from sightline.ports import BlobStore, Orchestrator
from sightline.services import media
from sightline.services.repository import Repository


def video_id_for(tenant_id: str, content_hash: str) -> str:
    """Same tenant and same bytes → same video: ingesting a file twice adds nothing."""
    return "v" + blake3.blake3(f"{tenant_id}|{content_hash}".encode()).hexdigest()[:20]


@dataclass
class Submission:
    video: Video
    execution_id: str | None
    reused: bool


@dataclass
class IngestService:
    blobs: BlobStore
    repo: Repository
    orchestrator: Orchestrator

    def submit_file(self, tenant_id: str, path: Path, *, filename: str | None = None) -> Submission:
        """Store a local file as a video's source and start its ingest.

        A video already completed (or in flight) for the same bytes is returned as is.
        """
        digest = media.file_hash(path)
        video_id = video_id_for(tenant_id, digest)
        existing = self.repo.find_video(tenant_id, video_id)
        if existing and existing.status != VideoStatus.FAILED:
            return Submission(existing, existing.execution_id, reused=True)
        name = filename or path.name
        source_key = keys.source(tenant_id, video_id, name)
        video = Video(
            tenant_id=tenant_id,
            video_id=video_id,
            filename=name,
            source_key=source_key,
            content_hash=digest,
            status=VideoStatus.PENDING,
        )
        self.repo.put_video(video)
        self.blobs.upload_file(path, source_key, "application/octet-stream")
        return self.start(video)

    def start(self, video: Video) -> Submission:
        # Queued before the start: the execution may reach "processing" before start returns.
        self.repo.update_video(
            video.tenant_id, video.video_id, status=VideoStatus.QUEUED, failure_reason=None
        )
        execution_id = self.orchestrator.start_ingest(
            IngestInput(
                tenant_id=video.tenant_id,
                video_id=video.video_id,
                source_key=video.source_key,
                filename=video.filename,
            )
        )
        video = self.repo.update_video(video.tenant_id, video.video_id, execution_id=execution_id)
        return Submission(video, execution_id, reused=False)
