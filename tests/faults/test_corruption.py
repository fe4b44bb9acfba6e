"""Flipped bytes in a stored chunk, a token blob, its side info, the analysis and latent
JSON, and the local index files: reads refuse them (never serve them), ``sightline
doctor`` reports them, and ``--repair`` rebuilds them from the source of truth until the
store again equals a clean run's."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sightline import factory, keys
from sightline.config import reset_settings
from sightline.errors import CorruptData
from sightline.services.ingest import IngestService
from sightline.services.repository import Repository
from sightline_local import doctor
from sightline_local.cli import main
from tests.faults.conftest import settle
from tests.faults.stack import TENANT, fingerprint, lost


@pytest.fixture
def ingested(stack: IngestService, clip: Path) -> Iterator[str]:
    sub = stack.submit_file(TENANT, clip)
    assert sub.execution_id
    assert stack.orchestrator.wait(sub.execution_id, 120)["status"] == "SUCCEEDED"
    settle()
    yield sub.video.video_id


@pytest.fixture
def home_path(stack: IngestService) -> Path:
    from sightline.config import get_settings

    return Path(get_settings().home)


def flip(path: Path, offset: int | None = None) -> int:
    """Invert one byte (the middle one by default) in place; returns its offset."""
    data = bytearray(path.read_bytes())
    i = len(data) // 2 if offset is None else offset
    data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    return i


def blob_path(key: str) -> Path:
    return Path(factory.blobs().root) / key


def _reads_refused(key: str, tmp_path: Path) -> tuple[int, int]:
    """(refused, served) over the two full-read paths of the blob store."""
    store = factory.blobs()
    refused = served = 0
    try:
        store.get_bytes(key)
        served += 1
    except CorruptData:
        refused += 1
    dest = tmp_path / "download"
    try:
        store.download_file(key, dest)
        served += 1
    except CorruptData:
        refused += 1
        assert not dest.exists()  # nothing half-written is left behind either
    return refused, served


BLOBS = {
    "chunk": keys.chunk,
    "tokens": keys.tokens,
    "sideinfo": keys.sideinfo,
    "analysis": keys.analysis,
    "latent": keys.latent,
}


# One flipped byte in each kind of derived blob, spread over the three chunks.
DAMAGE = (("chunk", 0), ("tokens", 1), ("sideinfo", 2), ("analysis", 0), ("latent", 1))


def test_corrupt_blobs_are_refused_reported_and_rebuilt(
    ingested: str,
    tmp_path: Path,
    reference: dict[str, Any],
    fault_summary: dict[str, int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    damaged = [BLOBS[what](TENANT, ingested, n) for what, n in DAMAGE]
    # Given one flipped byte in each
    for key in damaged:
        flip(blob_path(key))
    fault_summary["corruptions_injected"] += len(damaged)
    # When they are read, each is refused, never returned
    for key in damaged:
        refused, served = _reads_refused(key, tmp_path)
        fault_summary["corrupt_reads_served"] += served
        assert (refused, served) == (2, 0), key
    # And the doctor reports exactly them
    report = doctor.run()
    assert sorted(report.corrupt) == sorted(f"blobs/{k}" for k in damaged), report.as_dict()
    fault_summary["corruptions_detected"] += len(report.corrupt)
    # And --repair rebuilds each from its source of truth (the chunk from the source
    # video, tokens and side info from the chunk, the analysis from the chunk, latent
    # features from the tokens): the store then equals a clean run's
    assert main(["doctor", "--repair", "--json"]) == 0  # the command line, as a user runs it
    repaired = json.loads(capsys.readouterr().out)
    assert sorted(repaired["repaired"]) == sorted(report.corrupt), repaired
    assert repaired["unrepaired"] == []
    assert doctor.run().corrupt == []
    got = fingerprint(ingested)
    fault_summary["data_lost"] += lost(reference, got)
    assert got == reference


def test_a_token_blob_without_a_digest_file_is_still_refused_by_its_own_hashes(
    ingested: str, fault_summary: dict[str, int]
) -> None:
    """Blobs stored before the store kept digests: the token blob's BLAKE3 trailer and the
    manifest's hash still catch a flipped byte, in the pipeline and in the doctor."""
    from sightline.services import latent

    key = keys.tokens(TENANT, ingested, 0)
    (Path(factory.blobs().root) / ".digests" / f"{key}.b3").unlink()
    flip(blob_path(key))
    fault_summary["corruptions_injected"] += 1
    data = factory.blobs().get_bytes(key)  # unverifiable by the store now
    row = Repository(factory.tables()).find_manifest(TENANT, f"{ingested}-c00000")
    assert row is not None
    with pytest.raises(CorruptData):
        latent.from_blob(data, expected_hash=row.hash)
    report = doctor.run()
    assert report.corrupt == [f"blobs/{key}"] and report.unverified == 1
    fault_summary["corruptions_detected"] += 1


def _search(text: str = "people walking") -> list[tuple[str, float, str]]:
    hits = factory.index().search(TENANT, factory.embedder().embed([text])[0], k=3)
    # Sorted: the three chunks have the same (fake) description, so their scores tie.
    return sorted((h.manifest_id, round(h.score, 4), h.description) for h in hits)


def _checkpoint(db: Path) -> None:
    """Move the WAL into the database file, so that flipping the file's bytes hits data."""
    conn = sqlite3.connect(db)
    try:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0
    finally:
        conn.close()


def test_a_corrupt_index_graph_file_is_never_served_and_is_rebuilt(
    ingested: str, home_path: Path, fault_summary: dict[str, int]
) -> None:
    import faiss
    import numpy as np

    # Given the tenant's graph on disk, and one vector's exponent bytes flipped in it
    factory.index().prepare(factory.embedder().dim)
    before = _search()
    (graph,) = (home_path / "index").glob("text_embedding-*.faiss")
    index = faiss.read_index(str(graph))
    flat = faiss.downcast_index(faiss.downcast_index(index.index).storage)
    first = faiss.rev_swig_ptr(flat.get_xb(), flat.d).copy().astype(np.float32).tobytes()
    data = bytearray(graph.read_bytes())
    at = bytes(data).find(first)
    assert at > 0
    for i in range(at + 3, at + len(first), 4):
        data[i] ^= 0x40
    graph.write_bytes(bytes(data))
    fault_summary["corruptions_injected"] += 1
    # Then the doctor reports it
    assert doctor.run().corrupt == [graph.relative_to(home_path).as_posix()]
    fault_summary["corruptions_detected"] += 1
    # And a fresh process's search refuses the file and answers from a rebuilt graph
    factory.index.cache_clear()
    after = _search()
    fault_summary["corrupt_reads_served"] += int(after != before)
    assert after == before
    assert doctor.run().corrupt == []  # the rebuilt graph was saved in its place


def test_a_malformed_index_database_is_refused_and_rebuilt(
    ingested: str, home_path: Path, reference: dict[str, Any], fault_summary: dict[str, int]
) -> None:
    db = home_path / "index" / "documents.db"
    before = _search()
    _checkpoint(db)
    # Given a damaged b-tree page (page 2's type byte)
    flip(db, 4096)
    fault_summary["corruptions_injected"] += 1
    factory.index.cache_clear()
    # Then reads fail rather than answer from it
    with pytest.raises(sqlite3.DatabaseError):
        _search()
    # And the doctor reports it and rebuilds the index from the stored descriptions
    report = doctor.run()
    assert report.corrupt == ["index/documents.db"], report.as_dict()
    fault_summary["corruptions_detected"] += 1
    repaired = doctor.run(repair=True)
    assert repaired.repaired == ["index/documents.db"] and repaired.unrepaired == []
    factory.index.cache_clear()
    assert _search() == before
    got = fingerprint(ingested)
    fault_summary["data_lost"] += lost(reference, got)
    assert got == reference
    assert list((home_path / "index").glob("documents.db.corrupt-*"))  # kept for inspection


def _flip_descriptions(db: Path, description: str) -> int:
    """Change one letter of every stored copy of ``description`` (SQLite keeps no page
    checksums: a flip inside a record is invisible to it)."""
    _checkpoint(db)
    data = bytes(db.read_bytes())
    needle = description.encode()
    damaged = needle.replace(b"walking", b"talking")
    count = data.count(needle)
    db.write_bytes(data.replace(needle, damaged))
    return count


def test_a_flipped_description_in_the_index_is_found_and_repaired_by_the_doctor(
    ingested: str, home_path: Path, reference: dict[str, Any], fault_summary: dict[str, int]
) -> None:
    description = _search()[0][2]
    assert _flip_descriptions(home_path / "index" / "documents.db", description) >= 3
    fault_summary["corruptions_injected"] += 1
    factory.index.cache_clear()
    report = doctor.run()
    assert len(report.corrupt) == 3
    assert all(c.startswith(f"index:{TENANT}|{ingested}-c") for c in report.corrupt)
    fault_summary["corruptions_detected"] += 1
    repaired = doctor.run(repair=True)
    assert sorted(repaired.repaired) == sorted(report.corrupt) and repaired.unrepaired == []
    factory.index.cache_clear()
    assert {h[2] for h in _search()} == {description}
    got = fingerprint(ingested)
    fault_summary["data_lost"] += lost(reference, got)
    assert got == reference


def test_search_never_serves_a_description_whose_bytes_changed_on_disk(
    ingested: str, home_path: Path, fault_summary: dict[str, int]
) -> None:
    hits = _search()
    description = hits[0][2]
    assert len(hits) == 3
    assert _flip_descriptions(home_path / "index" / "documents.db", description) >= 3
    fault_summary["corruptions_injected"] += 1
    factory.index.cache_clear()
    # Every row's digest is checked on read: the changed rows are not served, by search or
    # by id, until `sightline doctor --repair` rebuilds them
    assert _search() == []
    index = factory.index()
    assert all(index.get(TENANT, manifest) is None for manifest, _, _ in hits)
    fault_summary["corruptions_detected"] += 1


def test_a_damaged_tables_database_is_reported_as_unrepairable(
    ingested: str,
    home_path: Path,
    capsys: pytest.CaptureFixture[str],
    fault_summary: dict[str, int],
) -> None:
    db = home_path / "sightline.db"
    _checkpoint(db)
    flip(db, 4096)
    fault_summary["corruptions_injected"] += 1
    reset_settings()
    # `sightline doctor --json`: the interface outside checks use
    assert main(["doctor", "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert {"checked", "corrupt", "repaired"} <= set(out)
    assert out["corrupt"] == ["sightline.db"] and out["repaired"] == []
    assert main(["doctor", "--repair", "--json"]) == 1  # the source of truth: restore a backup
    assert json.loads(capsys.readouterr().out)["unrepaired"] == ["sightline.db"]
    fault_summary["corruptions_detected"] += 1
