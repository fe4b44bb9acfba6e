from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from sightline import keys
from sightline.adapters.local_blobs import LocalBlobStore
from sightline.adapters.local_index import LocalVectorIndex
from sightline.adapters.local_tables import SqliteTableStore
from sightline.models import Event, IndexDocument, ManifestRow, Video
from sightline.services.queries import SearchService
from sightline.services.reindex import chunk_index, reindex
from sightline.services.repository import Repository
from tests.support.fakes import HashEmbedder

TENANT = "org/a"
WALL = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
DESCRIPTIONS = {
    "vid1": ["a red car parks near the gate", "two people walk a dog", "empty parking lot"],
    "vid2": ["a delivery truck unloads boxes", "a cyclist passes the camera"],
}


class ShuffledHashEmbedder(HashEmbedder):
    """Another model: the same words land on other dimensions (incomparable vectors)."""

    model_id = "hash-64-shuffled"

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        perm = np.random.default_rng(42).permutation(self.dim)
        return [list(np.asarray(v)[perm]) for v in super().embed(texts)]


@pytest.fixture
def world(tmp_path: Path):
    blobs = LocalBlobStore(tmp_path / "blobs")
    repo = Repository(SqliteTableStore(tmp_path / "db.sqlite"))
    index = LocalVectorIndex(tmp_path / "index")
    old = HashEmbedder()
    for video_id, descriptions in DESCRIPTIONS.items():
        repo.put_video(Video(tenant_id=TENANT, video_id=video_id, chunks_total=len(descriptions)))
        for n, text in enumerate(descriptions):
            manifest_id = f"{video_id}-c{n:05d}"
            repo.put_manifest(
                ManifestRow(
                    manifest_id=manifest_id,
                    tenant_id=TENANT,
                    stream_id=f"cam-{video_id}",
                    video_id=video_id,
                    t0=n * 10.0,
                    t1=n * 10.0 + 10,
                    codebook_id="cb",
                    model_id="codec",
                    token_uri="x",
                    sideinfo_uri="y",
                    byte_size=1,
                    ratio=1.0,
                    hash="blake3:" + "0" * 64,
                )
            )
            analysis = {"description": text, "tags": ["outdoor"], "events": []}
            if "car" in text:
                analysis["events"] = [{"type": "vehicle", "bbox": [0.1, 0.2, 0.5, 0.6]}]
                repo.replace_chunk_events(
                    TENANT,
                    video_id,
                    n,
                    [
                        Event(
                            event_id=f"{manifest_id}-e000",
                            tenant_id=TENANT,
                            video_id=video_id,
                            camera_id="cam-7",
                            chunk=n,
                            manifest_id=manifest_id,
                            t0=n * 10.0 + 2,
                            t1=n * 10.0 + 4,
                            type="vehicle",
                            description="car",
                            confidence=0.9,
                            # a camera chunk starting at WALL: the event 2 s into it
                            wall_t0=WALL + timedelta(seconds=2),
                            wall_t1=WALL + timedelta(seconds=4),
                        )
                    ],
                )
            blobs.put_bytes(keys.analysis(TENANT, video_id, n), json.dumps(analysis).encode())
            latent = [float(n + 1), 1.0, 0.0, 0.0]
            blobs.put_bytes(
                keys.latent(TENANT, video_id, n),
                json.dumps({"embedding": latent, "codebook_id": "cb-1"}).encode(),
            )
            (vec,) = old.embed([text])
            index.upsert(
                IndexDocument(
                    manifest_id=manifest_id,
                    tenant_id=TENANT,
                    stream_id=f"cam-{video_id}",
                    video_id=video_id,
                    camera_id="cam-7" if "car" in text else None,
                    t0=n * 10.0,
                    t1=n * 10.0 + 10,
                    t_mid=n * 10.0 + 5,
                    description=text,
                    events=["vehicle"] if "car" in text else [],
                    tags=["outdoor"],
                    text_embedding=vec,
                    latent_embedding=latent,
                    embedding_model=old.model_id,
                )
            )
    return blobs, repo, index


def test_switching_the_embedding_model_then_reindexing_gives_correct_answers(world) -> None:
    blobs, repo, index = world
    new = ShuffledHashEmbedder()
    search = SearchService(new, index)
    assert search.search_text(TENANT, "red car at the gate") == []  # never mixes models

    report = reindex(TENANT, repo=repo, blobs=blobs, index=index, embedder=new, batch_size=2)
    assert report.as_dict() | {"skipped": []} == {
        "tenant_id": TENANT,
        "embedding_model": "hash-64-shuffled",
        "videos": 2,
        "chunks": 5,
        "reindexed": 5,
        "rebuilt": 0,
        "skipped": [],
    }
    assert index.count(TENANT) == 5  # replaced, never duplicated
    hits = search.search_text(TENANT, "red car at the gate", k=3)
    assert hits[0].manifest_id == "vid1-c00000"
    assert search.search_text(TENANT, "delivery truck boxes", k=1)[0].manifest_id == "vid2-c00000"
    doc = index.get(TENANT, "vid1-c00000")
    assert doc.embedding_model == new.model_id
    assert doc.latent_embedding == pytest.approx(list(np.array([1, 1, 0, 0]) / np.sqrt(2)))
    assert doc.events == ["vehicle"] and doc.camera_id == "cam-7"
    assert doc.latent_model == "cb-1"  # indexed without its codebook: named on reindex
    assert SearchService(HashEmbedder(), index).search_text(TENANT, "red car") == []


def test_reindex_rebuilds_missing_documents_from_tables_and_blobs(world, tmp_path) -> None:
    blobs, repo, _ = world
    fresh = LocalVectorIndex(tmp_path / "fresh-index")  # e.g. a new OpenSearch index
    new = ShuffledHashEmbedder()
    report = reindex(TENANT, repo=repo, blobs=blobs, index=fresh, embedder=new, video_ids=["vid1"])
    assert (report.videos, report.reindexed, report.rebuilt) == (1, 3, 3)
    assert fresh.count(TENANT) == 3
    doc = fresh.get(TENANT, "vid1-c00000")
    assert doc.stream_id == "cam-vid1" and doc.camera_id == "cam-7"
    assert doc.events == ["vehicle"] and doc.tags == ["outdoor"]
    assert doc.roi_suggestion == (0.1, 0.2, 0.5, 0.6)
    assert doc.latent_embedding is not None and doc.latent_model == "cb-1"
    # the camera chunk's wall-clock span, recovered from its event
    assert (doc.wall_t0, doc.wall_t1) == (WALL, WALL + timedelta(seconds=10))
    assert fresh.get(TENANT, "vid1-c00001").wall_t0 is None  # no events: not known
    hits = SearchService(new, fresh).search_text(TENANT, "people walking a dog", k=1)
    assert hits[0].manifest_id == "vid1-c00001"


def test_chunks_without_analysis_are_reported_and_other_tenants_untouched(world) -> None:
    blobs, repo, index = world
    blobs.delete_prefix(keys.analysis(TENANT, "vid2", 1))
    report = reindex(TENANT, repo=repo, blobs=blobs, index=index, embedder=ShuffledHashEmbedder())
    assert report.skipped == ["vid2-c00001"] and report.reindexed == 4
    other = reindex("org/b", repo=repo, blobs=blobs, index=index, embedder=HashEmbedder())
    assert (other.videos, other.reindexed) == (0, 0)


def test_chunk_index_parses_manifest_ids() -> None:
    row = ManifestRow.model_construct(manifest_id="vid9-c00012", video_id="vid9")
    assert chunk_index(row) == 12
    with pytest.raises(ValueError):
        chunk_index(ManifestRow.model_construct(manifest_id="other-c00001", video_id="vid9"))
