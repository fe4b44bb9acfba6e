"""Starting ingests: register the video, store its source, start ``ingest_video``."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

import blake3

from sightline import keys
from sightline.errors import InvalidVideo, NotFound
from sightline.models import IngestInput, Video, VideoStatus
from sightline.ports import BlobStore, Orchestrator
from sightline.services import media
from sightline.services.repository import Repository


def video_id_for(tenant_id: str, content_hash: str) -> str:
    """Same tenant and same bytes → same video: ingesting a file twice adds nothing."""
    return "v" + blake3.blake3(f"{tenant_id}|{content_hash}".encode()).hexdigest()[:20]


def text_name(name: str) -> str:
    """A file name as valid text: bytes that are not UTF-8 (a Latin-1 name on Linux reaches
    Python as surrogate escapes) become U+FFFD, so the name can be stored and sent as JSON."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def new_video_id() -> str:
    """An id for an upload whose bytes are not known yet."""
    return "v" + secrets.token_hex(10)


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
    source_roots: tuple[Path, ...] = field(default_factory=tuple)
    upload_mode: str = "api"
    bucket: str = ""

    def resolve_source(self, source: str) -> Path:
        """A local path under one of the allowed roots (the API never reads other files)."""
        if source.startswith("s3://"):
            raise InvalidVideo(
                "s3:// sources are ingested by the S3 upload trigger; upload "
                "to the URL from POST /v1/videos {filename}"
            )
        path = Path(source).expanduser().resolve()
        if not any(path.is_relative_to(root.resolve()) for root in self.source_roots):
            # Same answer as a missing file: the caller learns nothing about the disk.
            raise NotFound(f"source {source} not found")
        if not path.is_file():
            raise NotFound(f"source {source} not found")
        return path

    def upload_url(self, video: Video, *, base_url: str) -> str:
        if self.upload_mode == "presigned":
            presign = self.blobs.presign_put
            return str(presign(video.source_key, expires_s=3600))
        return f"{base_url}/v1/videos/{video.video_id}/upload"

    def on_object_created(self, key: str) -> Submission:
        """A source object arrived (S3 "Object Created", or the local upload route)."""
        parts = key.split("/")
        if len(parts) < 5 or parts[2] != "videos" or parts[4] != "source":
            raise InvalidVideo(f"{key} is not a video source key")
        tenant_id, video_id = f"{parts[0]}/{parts[1]}", parts[3]
        video = self.repo.get_video(tenant_id, video_id)
        if video.status not in (VideoStatus.PENDING, VideoStatus.FAILED):
            # A replayed notification: the ingest already started.
            return Submission(video, video.execution_id, reused=True)
        return self.start(video)

    def submit_file(self, tenant_id: str, path: Path, *, filename: str | None = None) -> Submission:
        """Store a local file as a video's source and start its ingest.

        A video already completed (or in flight) for the same bytes is returned as is.
        """
        digest = media.file_hash(path)
        video_id = video_id_for(tenant_id, digest)
        existing = self.repo.find_video(tenant_id, video_id)
        if existing and existing.status != VideoStatus.FAILED:
            return Submission(existing, existing.execution_id, reused=True)
        name = text_name(filename or path.name)
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
