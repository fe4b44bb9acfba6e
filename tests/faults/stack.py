"""The embedded default over one data folder with the heavy models faked, and a
fingerprint of everything a video stored, to compare a recovered run with a clean one."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import blake3
import pytest

from sightline import factory, handlers, keys
from sightline.config import reset_settings
from sightline.services.ingest import IngestService, video_id_for
from sightline.services.media import file_hash
from sightline.services.repository import Repository
from tests.support.fakes import FakeCodec, FakeDescriber, HashEmbedder
from tests.support.media import synth_video

TENANT = "acme/plaza"
CHUNK_SECONDS = "1.5"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
ENV = {"SIGHTLINE_CHUNK_SECONDS": CHUNK_SECONDS}


def short_clip(dest_dir: Path) -> Path:
    """carphone_pristine.mp4 (real footage, 176x144, 4 s: three 1.5-s chunks), or a
    synthetic clip of the same shape where ../shared/data is absent."""
    for base in (os.environ.get("SIGHTLINE_SHARED_DATA"), SHARED):
        if base and (Path(base) / "carphone_pristine.mp4").is_file():
            return Path(base) / "carphone_pristine.mp4"
    dest_dir.mkdir(parents=True, exist_ok=True)
    return synth_video(dest_dir / "synthetic.mp4", seconds=4.0, size="176x144")


@contextmanager
def fake_stack(home: Path) -> Iterator[IngestService]:
    """Point every adapter at ``home`` with FakeCodec, FakeDescriber and HashEmbedder."""
    saved = {k: os.environ.get(k) for k in ("SIGHTLINE_HOME", *ENV)}
    mp = pytest.MonkeyPatch()
    os.environ["SIGHTLINE_HOME"] = str(home)
    os.environ.update(ENV)
    reset_settings()
    codec, describer, embedder = FakeCodec(factory.blobs()), FakeDescriber(), HashEmbedder()
    mp.setattr(factory, "codec", lambda: codec)
    mp.setattr(factory, "describer", lambda: describer)
    mp.setattr(factory, "embedder", lambda: embedder)
    handlers.pipeline.cache_clear()
    try:
        yield IngestService(factory.blobs(), Repository(factory.tables()), factory.orchestrator())
    finally:
        mp.undo()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        reset_settings()


def video_id_of(path: Path) -> str:
    return video_id_for(TENANT, file_hash(path))


def fingerprint(video_id: str) -> dict[str, Any]:
    """Everything one video stored, by id and content hash (raw row counts included, so a
    duplicate under another key would show)."""
    s = factory.blobs()
    repo = Repository(factory.tables())
    index = factory.index()
    video = repo.get_video(TENANT, video_id)
    derived = {
        k.rsplit("/derived/", 1)[1]: blake3.blake3(s.get_bytes(k)).hexdigest()[:16]
        for k in s.list_keys(keys.derived_prefix(TENANT, video_id))
    }
    manifests = repo.list_manifests(TENANT, video_id)
    events = repo.list_events(TENANT, video_id)
    docs = {}
    for m in manifests:
        doc = index.get(TENANT, m.manifest_id)
        docs[m.manifest_id] = None if doc is None else (doc.description, doc.events, doc.t0, doc.t1)
    home = Path(os.environ["SIGHTLINE_HOME"])
    with sqlite3.connect(home / "index" / "documents.db") as db:
        live_docs = db.execute(
            "SELECT count(*) FROM docs WHERE deleted = 0 AND video_id = ?", (video_id,)
        ).fetchone()[0]
    with sqlite3.connect(home / "sightline.db") as db:
        manifest_rows = db.execute(
            "SELECT count(*) FROM t_manifests WHERE sk LIKE ?", (f"{video_id}-c%",)
        ).fetchone()[0]
        event_rows = db.execute(
            "SELECT count(*) FROM t_events WHERE pk = ?", (f"{TENANT}#{video_id}",)
        ).fetchone()[0]
    return {
        "status": video.status.value,
        "chunks_total": video.chunks_total,
        "chunks_done": video.chunks_done,
        "events_count": video.events_count,
        "derived": derived,
        "manifests": sorted((m.manifest_id, m.hash, m.t0, m.t1) for m in manifests),
        "events": sorted((e.event_id, e.type, e.t0, e.t1, e.chunk) for e in events),
        "docs": docs,
        "rows": {"manifests": manifest_rows, "events": event_rows, "docs": live_docs},
    }


def lost(reference: dict[str, Any], got: dict[str, Any]) -> int:
    """How many stored items of a clean run are missing or differ after recovery, plus any
    extra ones (duplicates)."""
    n = 0
    for key in ("derived", "docs"):
        ref, have = reference[key], got[key]
        n += sum(1 for k in ref if have.get(k) != ref[k]) + len(set(have) - set(ref))
    for key in ("manifests", "events"):
        n += len(set(reference[key]) ^ set(got[key]))
    for key in ("manifests", "events", "docs"):
        n += abs(reference["rows"][key] - got["rows"][key])
    return n
