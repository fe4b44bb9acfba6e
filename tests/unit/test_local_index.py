from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sightline.adapters import local_index
from sightline.adapters.local_index import LocalVectorIndex
from sightline.models import IndexDocument
from sightline.ports import SearchFilters

DIM = 16


def _doc(
    tenant: str, n: int, vec: np.ndarray, *, video: str = "vid1", events=(), model: str = "m1"
) -> IndexDocument:
    return IndexDocument(
        manifest_id=f"{video}-c{n:05d}",
        tenant_id=tenant,
        stream_id=video,
        video_id=video,
        t0=n * 10.0,
        t1=n * 10.0 + 10,
        t_mid=n * 10.0 + 5,
        description=f"chunk {n}",
        events=list(events),
        text_embedding=vec.tolist(),
        embedding_model=model,
    )


def _vecs(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_search_is_tenant_scoped_and_upsert_replaces(tmp_path: Path) -> None:
    idx = LocalVectorIndex(tmp_path)
    v = _vecs(3)
    idx.upsert(_doc("org/a", 0, v[0]))
    idx.upsert(_doc("org/b", 0, v[0]))
    idx.upsert(_doc("org/a", 0, v[1]))  # same chunk re-indexed: replaces, never duplicates
    assert idx.count("org/a") == 1 and idx.count() == 2
    hits = idx.search("org/a", v[1], k=5)
    assert [h.manifest_id for h in hits] == ["vid1-c00000"]
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert idx.search("org/c", v[1], k=5) == []


def test_filters_and_model_separation(tmp_path: Path) -> None:
    idx = LocalVectorIndex(tmp_path)
    v = _vecs(4)
    idx.upsert(_doc("org/a", 0, v[0], events=["person"]))
    idx.upsert(_doc("org/a", 1, v[1], events=["vehicle"]))
    idx.upsert(_doc("org/a", 2, v[2], video="vid2"))
    idx.upsert(_doc("org/a", 3, v[3], model="other-model"))
    only_vehicle = idx.search("org/a", v[0], k=10, filters=SearchFilters(event_types=("vehicle",)))
    assert [h.manifest_id for h in only_vehicle] == ["vid1-c00001"]
    vid2 = idx.search("org/a", v[0], k=10, filters=SearchFilters(video_ids=("vid2",)))
    assert [h.video_id for h in vid2] == ["vid2"]
    late = idx.search("org/a", v[0], k=10, filters=SearchFilters(t_from=15.0))
    assert all(h.t1 >= 15.0 for h in late) and len(late) == 3
    m1 = idx.search("org/a", v[3], k=10, embedding_model="m1")
    assert "vid1-c00003" not in {h.manifest_id for h in m1}


def test_small_tenant_gets_exact_answers_beside_a_large_one(tmp_path: Path, monkeypatch) -> None:
    # Force the HNSW path for the large tenant by shrinking the exact budget.
    monkeypatch.setattr(local_index, "EXACT_BUDGET", 50 * DIM)
    idx = LocalVectorIndex(tmp_path)
    big = _vecs(400, seed=1)
    for i, vec in enumerate(big):
        idx.upsert(_doc("org/big", i, vec))
    small = _vecs(5, seed=2)
    for i, vec in enumerate(small):
        idx.upsert(_doc("org/small", i, vec))
    q = small[3] + 0.01
    hits = idx.search("org/small", q, k=3)
    exact = np.argsort(-(small @ (q / np.linalg.norm(q))))[:3]
    assert [h.manifest_id for h in hits] == [f"vid1-c{i:05d}" for i in exact]
    big_hits = idx.search("org/big", big[7], k=10)  # approximate path still finds itself
    assert big_hits[0].manifest_id == "vid1-c00007"


def test_graph_survives_restart_and_corruption(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(local_index, "EXACT_BUDGET", 10 * DIM)
    v = _vecs(60, seed=3)
    idx = LocalVectorIndex(tmp_path)
    for i, vec in enumerate(v):
        idx.upsert(_doc("org/a", i, vec))
    assert idx.search("org/a", v[5], k=5)[0].manifest_id == "vid1-c00005"
    files = list(tmp_path.glob("text_embedding-*.faiss"))
    assert len(files) == 1
    files[0].write_bytes(b"garbage")  # a damaged cache is rebuilt from the documents
    again = LocalVectorIndex(tmp_path)
    assert again.search("org/a", v[9], k=5)[0].manifest_id == "vid1-c00009"
    assert again.delete_video("org/a", "vid1") == 60
    assert again.search("org/a", v[9], k=5) == []


def test_upsert_many_is_one_generation(tmp_path: Path) -> None:
    idx = LocalVectorIndex(tmp_path)
    v = _vecs(20, seed=4)
    before = idx._generation()
    assert idx.upsert_many([_doc("org/a", i, v[i]) for i in range(20)]) == 20
    assert idx._generation() == before + 1
    assert idx.upsert_many([_doc("org/a", 3, v[0])]) == 1  # replaces
    assert idx.count("org/a") == 20
    assert idx.upsert_many([]) == 0


def test_search_after_an_upsert_extends_the_cached_graph(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(local_index, "EXACT_BUDGET", 10 * DIM)
    v = _vecs(120, seed=5)
    idx = LocalVectorIndex(tmp_path)
    idx.upsert_many([_doc("org/a", i, v[i]) for i in range(100)])
    assert idx.search("org/a", v[5], k=5)[0].manifest_id == "vid1-c00005"
    graph = idx._graphs["text_embedding:16"].graph
    builds = []
    original = LocalVectorIndex._build
    monkeypatch.setattr(
        LocalVectorIndex, "_build", lambda self, *a: builds.append(a) or original(self, *a)
    )
    for i in range(100, 110):  # one at a time, each found by the next search
        idx.upsert(_doc("org/a", i, v[i]))
        assert idx.search("org/a", v[i], k=5)[0].manifest_id == f"vid1-c{i:05d}"
    assert builds == [] and idx._graphs["text_embedding:16"].graph is graph
    assert graph.ntotal == 110
    # a replaced document: its old vector stays in the graph but is never returned
    idx.upsert(_doc("org/a", 7, v[110]))
    hits = idx.search("org/a", v[7], k=20)
    assert "vid1-c00007" not in [h.manifest_id for h in hits[:1]]
    assert [h.manifest_id for h in idx.search("org/a", v[110], k=1)] == ["vid1-c00007"]
    assert graph.ntotal == 111 and builds == []
    # another process's writes (a second instance over the same files) are picked up too
    other = LocalVectorIndex(tmp_path)
    other.upsert(_doc("org/a", 111, v[111]))
    assert idx.search("org/a", v[111], k=1)[0].manifest_id == "vid1-c00111"
    assert builds == []


def test_many_tombstones_trigger_a_rebuild(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(local_index, "EXACT_BUDGET", 10 * DIM)
    v = _vecs(100, seed=6)
    idx = LocalVectorIndex(tmp_path)
    idx.upsert_many([_doc("org/a", i, v[i], video="vid1") for i in range(50)])
    idx.upsert_many([_doc("org/a", i, v[i], video="vid2") for i in range(50, 100)])
    idx.search("org/a", v[0], k=5)
    first = idx._graphs["text_embedding:16"].graph
    assert idx.delete_video("org/a", "vid2") == 50  # half the graph is now dead
    hits = idx.search("org/a", v[60], k=5)
    assert {h.video_id for h in hits} == {"vid1"}
    rebuilt = idx._graphs["text_embedding:16"].graph
    assert rebuilt is not first and rebuilt.ntotal == 50


def test_persisted_graph_catches_up_after_restart(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(local_index, "EXACT_BUDGET", 10 * DIM)
    v = _vecs(80, seed=7)
    idx = LocalVectorIndex(tmp_path)
    idx.upsert_many([_doc("org/a", i, v[i]) for i in range(70)])
    idx.search("org/a", v[0], k=5)  # builds and saves the graph
    idx.upsert(_doc("org/a", 70, v[70]))  # written after the save
    again = LocalVectorIndex(tmp_path)
    monkeypatch.setattr(LocalVectorIndex, "_build", lambda *a: pytest.fail("rebuilt"))
    assert again.search("org/a", v[70], k=1)[0].manifest_id == "vid1-c00070"
    assert again._graphs["text_embedding:16"].graph.ntotal == 71


def test_filtered_label_sets_are_reused_until_the_next_write(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(local_index, "EXACT_BUDGET", 10 * DIM)
    v = _vecs(60, seed=8)
    idx = LocalVectorIndex(tmp_path)
    idx.upsert_many([_doc("org/a", i, v[i], events=["person"] if i % 2 else []) for i in range(60)])
    reads = []
    original = local_index._TenantRows.select
    monkeypatch.setattr(
        local_index._TenantRows, "select", lambda self, *a: reads.append(a) or original(self, *a)
    )
    person = SearchFilters(event_types=["person"])  # lists as well as tuples
    for _ in range(3):
        hits = idx.search("org/a", v[3], k=5, filters=person)
        assert hits[0].manifest_id == "vid1-c00003"
        assert all(int(h.manifest_id[-5:]) % 2 for h in hits)
    assert len(reads) == 1
    idx.upsert(_doc("org/a", 60, v[3], events=["person"]))
    assert {h.manifest_id for h in idx.search("org/a", v[3], k=2, filters=person)} == {
        "vid1-c00003",
        "vid1-c00060",
    }
    assert len(reads) == 2


def test_search_benchmark_reports_its_figures(tmp_path: Path) -> None:
    from sightline_local.bench_search import search_benchmark

    report = search_benchmark(300, dim=16, queries=5, directory=tmp_path)
    assert {"n", "dim", "p50_ms", "p99_ms", "recall_at_10", "lag_s"} <= set(report)
    assert (report["n"], report["dim"]) == (300, 16)
    assert report["recall_at_10"] == 1.0  # 60 documents a tenant: the exact path
    assert report["small_tenant_recall_at_10"] == 1.0
    assert report["filtered_recall_at_10"] == 1.0
    assert report["lag_s"] == report["lag_max_s"] >= report["lag_median_s"] > 0
    # every document is in the graph: the corpus, the small tenant, one per lag trial
    assert report["graph_vectors"] == 300 + report["small_tenant_docs"] + 20


V1_SCHEMA = """
CREATE TABLE docs (
  label INTEGER PRIMARY KEY AUTOINCREMENT,
  doc_id TEXT NOT NULL, tenant_id TEXT NOT NULL, video_id TEXT NOT NULL,
  camera_id TEXT, t0 REAL NOT NULL, t1 REAL NOT NULL, events TEXT NOT NULL,
  embedding_model TEXT NOT NULL, doc TEXT NOT NULL,
  text_vec BLOB NOT NULL, latent_vec BLOB, deleted INTEGER NOT NULL DEFAULT 0);
CREATE INDEX docs_live ON docs (tenant_id, deleted);
CREATE UNIQUE INDEX docs_current ON docs (doc_id) WHERE deleted = 0;
CREATE TABLE meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
INSERT INTO meta VALUES ('generation', 3);
INSERT INTO meta VALUES ('tombstones', 1);
"""


def test_a_schema_1_store_is_migrated_in_place(tmp_path: Path) -> None:
    import json
    import sqlite3

    # Given a store written by the first version: JSON documents with their vectors
    v = _vecs(3, seed=9)
    db = sqlite3.connect(tmp_path / "documents.db")
    db.executescript(V1_SCHEMA)
    for label, (n, vec, deleted) in enumerate([(0, v[0], 1), (0, v[1], 0), (1, v[2], 0)], 1):
        doc = _doc("org/a", n, vec, events=["person"] if n else []).model_dump(
            mode="json", exclude={"text_embedding", "latent_embedding"}
        )
        doc["description"] = f"chunk {n} version {label}"
        db.execute(
            "INSERT INTO docs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                label,
                f"org/a|vid1-c{n:05d}",
                "org/a",
                "vid1",
                None,
                doc["t0"],
                doc["t1"],
                json.dumps(doc["events"]),
                "m1",
                json.dumps(doc),
                vec.astype(np.float32).tobytes(),
                np.full(4, 0.5, np.float32).tobytes() if n else None,  # stored unit
                deleted,
            ),
        )
    db.commit()
    db.close()
    # When it is opened by this version
    idx = LocalVectorIndex(tmp_path)
    # Then every live document reads, searches and filters as before, labels unchanged
    assert idx.count("org/a") == 2
    got = idx.get("org/a", "vid1-c00001")
    assert got is not None and got.events == ["person"] and got.latent_embedding == [0.5] * 4
    assert got.description == "chunk 1 version 3" and got.stream_id == "vid1"
    hits = idx.search("org/a", v[1], k=5)
    assert hits[0].manifest_id == "vid1-c00000"
    assert hits[0].description == "chunk 0 version 2"  # the tombstoned version stays gone
    person = idx.search("org/a", v[1], k=5, filters=SearchFilters(event_types=("person",)))
    assert [h.manifest_id for h in person] == ["vid1-c00001"]
    assert [h.manifest_id for h in idx.search_hybrid("org/a", v[2], "version", k=5)] == [
        "vid1-c00001",
        "vid1-c00000",
    ]
    # and new writes continue the label sequence
    idx.upsert(_doc("org/a", 2, v[0]))
    assert idx.search("org/a", v[0], k=1)[0].manifest_id == "vid1-c00002"
    assert LocalVectorIndex(tmp_path).count() == 3  # opening it again changes nothing


def test_catalog_follows_replacements_deletes_and_compaction(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(local_index, "EXACT_BUDGET", 10 * DIM)
    monkeypatch.setattr(local_index, "COMPACT_MIN_DEAD", 0)
    v = _vecs(300, seed=10)
    idx = LocalVectorIndex(tmp_path)
    other = LocalVectorIndex(tmp_path)  # a second process writing to the same store
    idx.upsert_many(
        [_doc("org/a", i, v[i], events=["person"] if i % 3 == 0 else []) for i in range(200)]
    )
    person = SearchFilters(event_types=("person",))
    assert len(idx.search("org/a", v[0], k=100, filters=person)) == 67
    # every chunk re-indexed twice by the other process (a reindex): rows double, then compact
    for round_ in range(2):
        other.upsert_many(
            [_doc("org/a", i, v[i + 100 if round_ else i], events=["vehicle"]) for i in range(200)]
        )
        assert idx.search("org/a", v[0], k=100, filters=person) == []
    rows = idx._catalog.tenants["org/a"]
    assert rows.n - rows.dead == 200 and rows.n < 600  # compacted at least once
    vehicle = idx.search("org/a", v[150], k=3, filters=SearchFilters(event_types=("vehicle",)))
    assert vehicle[0].manifest_id == "vid1-c00050"
    # a deleted video leaves the catalog, its graph vectors are never returned
    other.delete_video("org/a", "vid1")
    assert idx.search("org/a", v[150], k=10) == [] and idx.count() == 0


def test_selective_filters_widen_the_walk_or_go_exact(tmp_path: Path, monkeypatch) -> None:
    assert local_index.ef_search(50, 0.2) == local_index.ef_search(50, 0.05) == 128
    assert local_index.ef_search(200, 0.5) == 200
    assert 128 < local_index.ef_search(50, 0.03) < local_index.ef_search(50, 0.02)
    assert local_index.ef_search(50, 0.001) == local_index.EF_MAX
    # Given a graph where every filter would take the graph walk (tiny exact budget)
    monkeypatch.setattr(local_index, "EXACT_BUDGET", 5 * DIM)
    v = _vecs(2000, seed=11)
    idx = LocalVectorIndex(tmp_path)
    idx.upsert_many([_doc("org/a", i, v[i], video=f"vid{i % 100:02d}") for i in range(2000)])
    walks: list[int] = []
    original = LocalVectorIndex._approximate
    monkeypatch.setattr(
        LocalVectorIndex,
        "_approximate",
        lambda self, c, a, q, k, ef: walks.append(ef) or original(self, c, a, q, k, ef),
    )
    for videos, path in ((("vid01",), "exact"), (tuple(f"vid{i:02d}" for i in range(3)), "wide")):
        # When a filter keeps 1 % (exact: under EXACT_SELECTIVITY) or 3 % of the graph
        walks.clear()
        keep = np.array([f"vid{i % 100:02d}" in videos for i in range(2000)])
        for q in v[keep][:5]:
            hits = idx.search("org/a", q, k=10, filters=SearchFilters(video_ids=videos))
            # Then the answer is the exact top 10 of what the filter keeps
            exact = np.flatnonzero(keep)[np.argsort(-(v[keep] @ q))[:10]]
            assert [h.manifest_id for h in hits] == [f"vid{i % 100:02d}-c{i:05d}" for i in exact], (
                path
            )
        wide = local_index.ef_search(10, 0.03)
        assert (walks == []) if path == "exact" else (walks == [wide] * 5 and wide > 128)
