"""``sightline reindex``: re-embed every stored chunk of a tenant with the configured embedder.

Switching the embedding model makes earlier text embeddings incomparable with new
queries (a query never mixes models). Reindexing re-embeds each chunk's stored
description (the analysis JSON written by the describe step; video is never decoded) and
re-upserts its document, keeping the latent embedding. A chunk whose document is missing
from the index (a new, empty index) is rebuilt from the tables and blobs: its manifest,
analysis, events and latent features.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sightline import keys
from sightline.models import Event, IndexDocument, ManifestRow
from sightline.ports import BlobStore, Embedder
from sightline.services.repository import Repository

logger = logging.getLogger(__name__)


@dataclass
class ReindexReport:
    tenant_id: str
    embedding_model: str
    videos: int = 0
    chunks: int = 0
    reindexed: int = 0
    rebuilt: int = 0  # documents that were missing from the index
    skipped: list[str] = field(default_factory=list)  # manifest ids without an analysis

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "embedding_model": self.embedding_model,
            "videos": self.videos,
            "chunks": self.chunks,
            "reindexed": self.reindexed,
            "rebuilt": self.rebuilt,
            "skipped": self.skipped,
        }


def chunk_index(row: ManifestRow) -> int:
    """The chunk number of a manifest (``{video_id}-c{index:05d}``)."""
    return row.chunk_index


def reindex(
    tenant_id: str,
    *,
    repo: Repository,
    blobs: BlobStore,
    index: Any,
    embedder: Embedder,
    video_ids: list[str] | None = None,
    batch_size: int = 64,
    progress: Callable[[int], None] | None = None,
) -> ReindexReport:
    """Re-embed the tenant's chunk documents (all videos, or ``video_ids``) in batches."""
    report = ReindexReport(tenant_id, embedder.model_id)
    pending: list[tuple[IndexDocument, str]] = []

    def flush() -> None:
        if not pending:
            return
        vectors = embedder.embed([text for _, text in pending])
        docs = [
            doc.model_copy(
                update={"text_embedding": list(vec), "embedding_model": embedder.model_id}
            )
            for (doc, _), vec in zip(pending, vectors, strict=True)
        ]
        upsert_many = getattr(index, "upsert_many", None)
        if upsert_many is not None:
            upsert_many(docs)
        else:
            for doc in docs:
                index.upsert(doc)
        report.reindexed += len(docs)
        pending.clear()
        if progress is not None:
            progress(report.reindexed)

    for doc in _documents(tenant_id, repo, blobs, index, video_ids, report):
        pending.append((doc, doc.description))
        if len(pending) >= batch_size:
            flush()
    flush()
    return report


def _documents(
    tenant_id: str,
    repo: Repository,
    blobs: BlobStore,
    index: Any,
    video_ids: list[str] | None,
    report: ReindexReport,
) -> Iterator[IndexDocument]:
    wanted = set(video_ids) if video_ids else None
    for video in repo.list_videos(tenant_id):
        if wanted is not None and video.video_id not in wanted:
            continue
        report.videos += 1
        events_by_chunk: dict[int, list[Event]] = {}
        for event in repo.list_events(tenant_id, video.video_id):
            events_by_chunk.setdefault(event.chunk, []).append(event)
        for row in repo.list_manifests(tenant_id, video.video_id):
            report.chunks += 1
            n = chunk_index(row)
            analysis_key = keys.analysis(tenant_id, video.video_id, n)
            if not blobs.exists(analysis_key):
                logger.warning("no analysis for %s; not reindexed", row.manifest_id)
                report.skipped.append(row.manifest_id)
                continue
            analysis = json.loads(blobs.get_bytes(analysis_key))
            description = str(analysis.get("description", ""))
            current = index.get(tenant_id, row.manifest_id)
            if current is not None:
                update: dict[str, Any] = {"description": description}
                if current.latent_embedding and current.latent_model is None:
                    # indexed before documents named their codebook: name it now
                    latent = _latent(row, n, blobs)
                    update["latent_model"] = latent.get("codebook_id") if latent else None
                yield current.model_copy(update=update)
                continue
            report.rebuilt += 1
            yield _rebuild(row, n, analysis, events_by_chunk.get(n, []), blobs)


def _rebuild(
    row: ManifestRow, n: int, analysis: dict[str, Any], events: list[Event], blobs: BlobStore
) -> IndexDocument:
    latent = _latent(row, n, blobs)
    boxes = [e["bbox"] for e in analysis.get("events", []) if e.get("bbox")]
    camera = next((e.camera_id for e in events if e.camera_id), None)
    # A camera chunk's wall-clock start, from any of its events (each event's wall time
    # is the chunk's plus its offset in the chunk); a chunk without events has none here.
    timed = next((e for e in events if e.wall_t0 is not None), None)
    wall_t0 = (
        timed.wall_t0 - timedelta(seconds=timed.t0 - row.t0)
        if timed is not None and timed.wall_t0 is not None
        else None
    )
    return IndexDocument(
        manifest_id=row.manifest_id,
        tenant_id=row.tenant_id,
        stream_id=row.stream_id,
        video_id=row.video_id,
        camera_id=camera,
        t0=row.t0,
        t1=row.t1,
        t_mid=round((row.t0 + row.t1) / 2, 3),
        description=str(analysis.get("description", "")),
        events=sorted({e.type for e in events}),
        tags=list(analysis.get("tags", [])),
        text_embedding=[0.0],  # replaced by the caller's fresh embedding
        latent_embedding=latent["embedding"] if latent else None,
        latent_model=latent.get("codebook_id") if latent else None,
        embedding_model="",
        roi_suggestion=_union(boxes) if boxes else None,
        wall_t0=wall_t0,
        wall_t1=wall_t0 + timedelta(seconds=row.t1 - row.t0) if wall_t0 is not None else None,
    )


def _latent(row: ManifestRow, n: int, blobs: BlobStore) -> dict[str, Any] | None:
    """The chunk's stored latent features (embedding, codebook id), if any."""
    key = keys.latent(row.tenant_id, row.video_id, n)
    return json.loads(blobs.get_bytes(key)) if blobs.exists(key) else None


def _union(boxes: list[Any]) -> tuple[float, float, float, float]:
    return (
        round(min(float(b[0]) for b in boxes), 4),
        round(min(float(b[1]) for b in boxes), 4),
        round(max(float(b[2]) for b in boxes), 4),
        round(max(float(b[3]) for b in boxes), 4),
    )
