"""Hybrid (BM25 + k-NN) search: one contract on the local index and both OpenSearch flavours.

Scores of each candidate list are min-max normalised within the query and combined as a
weighted arithmetic mean (OpenSearch's ``normalization-processor``: min_max +
arithmetic_mean); on a managed domain that happens in a search pipeline, on Serverless
and locally in ``search_mapping.combine_min_max``.
"""

from __future__ import annotations

import numpy as np
import pytest

from sightline import search_mapping as sm
from sightline.ports import SearchFilters
from tests.contract import test_index_contract as base
from tests.contract.fake_opensearch import FakeOpenSearch
from tests.contract.test_index_contract import INDEX, Subject, _doc, _ids, _vecs

# the adapters under test: the fixtures of the index contract
subject = base.subject
cluster = base.cluster

WORDS = ["person", "walking", "vehicle", "parked", "street", "corner", "light", "shadow"]


def _corpus(idx, tenant: str = "org/a", n: int = 12, seed: int = 3) -> np.ndarray:
    v = _vecs(n, seed=seed)
    rng = np.random.default_rng(seed)
    docs = []
    for i in range(n):
        words = " ".join(rng.choice(WORDS, size=5))
        docs.append(_doc(tenant, i, v[i], description=f"chunk {i}: {words}"))
    idx.upsert_many(docs)
    return v


def test_lexical_only_match_is_found_by_hybrid_not_by_knn(subject: Subject) -> None:
    idx = subject.index
    query = _vecs(1, seed=21)[0]
    noise = _vecs(12, seed=22)
    rng = np.random.default_rng(23)
    docs = [
        _doc("org/a", 0, query + 0.05 * noise[0], description="chunk 0: person walking"),
        _doc("org/a", 1, query + 0.3 * noise[1], description="chunk 1: vehicle parked"),
    ]
    for i in range(2, 12):  # the rest of the tenant is far from the query
        words = " ".join(rng.choice(WORDS, size=5))
        docs.append(_doc("org/a", i, -query + 0.4 * noise[i], description=f"chunk {i}: {words}"))
    # the farthest vector of all, whose description holds a rare word
    docs.append(_doc("org/a", 99, -query, description="a yellow forklift crossing the yard"))
    idx.upsert_many(docs)
    knn = _ids(idx.search("org/a", query, k=3))
    assert "vid1-c00099" not in knn
    hybrid = idx.search_hybrid("org/a", query, "forklift", k=3)
    assert _ids(hybrid) == ["vid1-c00000", "vid1-c00001", "vid1-c00099"]
    assert all(0.0 <= h.score <= 1.0 for h in hybrid)
    assert [h.score for h in hybrid] == sorted((h.score for h in hybrid), reverse=True)
    assert hybrid[0].score == pytest.approx(0.7, abs=1e-4)  # best vector, no word match
    assert hybrid[2].score == pytest.approx(0.3 + 0.7 * 0.001, abs=1e-4)  # lexical only
    # the weights are (vector, lexical): reversed, the lexical match leads
    flipped = idx.search_hybrid("org/a", query, "forklift", k=3, weights=(0.2, 0.8))
    assert _ids(flipped)[0] == "vid1-c00099"
    assert flipped[0].score == pytest.approx(0.8 + 0.2 * 0.001, abs=1e-4)


def test_hybrid_scores_combine_both_lists(subject: Subject) -> None:
    idx = subject.index
    v = _vecs(4, seed=8)
    idx.upsert_many(
        [
            _doc("org/a", 0, v[0], description="a red car parked"),
            _doc("org/a", 1, v[1], description="a red truck"),
            _doc("org/a", 2, v[2], description="an empty street"),
            _doc("org/a", 3, v[3], description="people walking"),
        ]
    )
    hits = idx.search_hybrid("org/a", v[1], "red car", k=4)
    # chunk 1 is the exact vector match and a lexical match: it leads
    assert _ids(hits)[0] == "vid1-c00001"
    assert set(_ids(hits)) == {f"vid1-c0000{i}" for i in range(4)}


def test_hybrid_tenant_isolation_even_with_crafted_filters(subject: Subject) -> None:
    idx = subject.index
    v = _vecs(4, seed=5)
    idx.upsert(_doc("org/a", 0, v[0], video="vida", description="a forklift in the yard"))
    idx.upsert(_doc("org/b", 1, v[1], video="vidb", description="a forklift forklift"))
    idx.upsert(_doc("org/b", 2, v[2], video="vidb", description="a forklift"))
    crafted = SearchFilters(video_ids=("vidb",))
    assert idx.search_hybrid("org/a", v[1], "forklift", k=10, filters=crafted) == []
    hits = idx.search_hybrid("org/a", v[1], "forklift", k=10)
    assert _ids(hits) == ["vida-c00000"]
    both = SearchFilters(video_ids=("vida", "vidb"))
    assert _ids(idx.search_hybrid("org/a", v[2], "forklift", k=10, filters=both)) == ["vida-c00000"]
    b = idx.search_hybrid("org/b", v[0], "forklift yard", k=10)
    assert set(_ids(b)) == {"vidb-c00001", "vidb-c00002"}


def test_hybrid_filters_and_model_apply_to_both_lists(subject: Subject) -> None:
    idx = subject.index
    v = _vecs(4, seed=6)
    idx.upsert_many(
        [
            _doc("org/a", 0, v[0], camera="c1", description="a forklift"),
            _doc("org/a", 1, v[1], camera="c2", description="a forklift"),
            _doc("org/a", 2, v[2], camera="c1", description="nothing here", model="m2"),
            _doc("org/a", 3, v[3], camera="c2", events=("person",), description="a van"),
        ]
    )
    only_c2 = SearchFilters(camera_ids=("c2",))
    hits = idx.search_hybrid("org/a", v[0], "forklift", k=10, filters=only_c2)
    assert set(_ids(hits)) == {"vid1-c00001", "vid1-c00003"}
    hits = idx.search_hybrid("org/a", v[2], "forklift nothing", k=10, embedding_model="m1")
    assert "vid1-c00002" not in _ids(hits)
    hits = idx.search_hybrid(
        "org/a", v[0], "forklift", k=10, filters=SearchFilters(event_types=("person",))
    )
    assert _ids(hits) == ["vid1-c00003"]


def test_hybrid_pagination_pages_are_slices_of_one_ranking(subject: Subject) -> None:
    idx = subject.index
    v = _corpus(idx, n=20, seed=11)
    query = v[4] + 0.5 * v[7]
    text = "person walking near the corner"
    big = idx.search_hybrid("org/a", query, text, k=15)
    assert len(big) == 15
    pages = [idx.search_hybrid("org/a", query, text, k=5, offset=o) for o in (0, 5, 10)]
    flat = [h for page in pages for h in page]
    assert _ids(flat) == _ids(big)
    assert len(set(_ids(flat))) == 15  # disjoint pages
    assert [h.score for h in flat] == pytest.approx([h.score for h in big])
    assert idx.search_hybrid("org/a", query, text, k=5, offset=20) == []
    tail = idx.search_hybrid("org/a", query, text, k=10, offset=15)
    assert len(tail) == 5 and not set(_ids(tail)) & set(_ids(big))


def test_hybrid_with_no_lexical_match_ranks_as_knn(subject: Subject) -> None:
    idx = subject.index
    v = _corpus(idx, n=8, seed=2)
    q = v[3] + 0.2 * v[5]
    knn = _ids(idx.search("org/a", q, k=8))
    hybrid = idx.search_hybrid("org/a", q, "zeppelin", k=8)
    assert _ids(hybrid) == knn
    assert hybrid[0].score == pytest.approx(0.7, abs=1e-4)


def test_combine_min_max_matches_the_normalization_processor() -> None:
    knn = [("a", 0.9), ("b", 0.5), ("c", 0.1)]
    bm25 = [("c", 7.0), ("d", 3.0)]
    ranked = dict(sm.combine_min_max([knn, bm25], (0.7, 0.3)))
    assert ranked["a"] == pytest.approx(0.7)
    assert ranked["b"] == pytest.approx(0.7 * 0.5)
    assert ranked["c"] == pytest.approx(0.7 * 0.001 + 0.3)  # min of a list floors at 0.001
    assert ranked["d"] == pytest.approx(0.3 * 0.001)
    assert sm.min_max([2.0]) == [1.0]  # a single score normalises to 1
    assert sm.hybrid_weights((7, 3)) == (0.7, 0.3)
    with pytest.raises(ValueError):
        sm.hybrid_weights((-1, 1))


# ----- OpenSearch request shapes ------------------------------------------------------


def test_hybrid_request_shape_and_pipeline(cluster) -> None:
    fake: FakeOpenSearch
    fake, idx = cluster
    idx.ensure_index()
    v = _vecs(2, seed=12)
    idx.upsert(_doc("org/a", 0, v[0], description="a white truck parked"))
    filters = SearchFilters(camera_ids=("cam1",), t_from=5.0)
    idx.search_hybrid(
        "org/a", v[1] * 2, "white truck", k=5, offset=5, filters=filters, embedding_model="m1"
    )
    clauses = [
        {"term": {"tenant_id": "org/a"}},
        {"term": {"embedding_model": "m1"}},
        {"terms": {"camera_id": ["cam1"]}},
        {"range": {"t1": {"gte": 5.0}}},
    ]
    unit = pytest.approx((v[1] / np.linalg.norm(v[1])).tolist(), abs=1e-6)
    searches = fake.calls("POST", f"/{INDEX}/_search")
    if idx.service == "es":
        (pipe,) = fake.calls("PUT", f"/_search/pipeline/{sm.HYBRID_PIPELINE}")
        assert pipe.body["phase_results_processors"] == [
            {
                "normalization-processor": {
                    "normalization": {"technique": "min_max"},
                    "combination": {
                        "technique": "arithmetic_mean",
                        "parameters": {"weights": [0.3, 0.7]},  # [match, knn]
                    },
                }
            }
        ]
        req = searches[-1]
        assert req.params == {"search_pipeline": sm.HYBRID_PIPELINE}
        assert req.body["size"] == sm.HYBRID_DEPTH
        assert req.body["_source"] == {"excludes": ["text_embedding", "latent_embedding"]}
        match, knn = req.body["query"]["hybrid"]["queries"]
        assert match == {
            "bool": {"must": [{"match": {"description": "white truck"}}], "filter": clauses}
        }
        spec = knn["knn"]["text_embedding"]
        assert spec["k"] == sm.HYBRID_DEPTH and spec["vector"] == unit
        assert spec["filter"] == {"bool": {"filter": clauses}}
        # the pipeline is ensured once per process and per weighting, idempotently
        idx.search_hybrid("org/a", v[1], "truck", k=5)
        assert len(fake.calls("PUT", f"/_search/pipeline/{sm.HYBRID_PIPELINE}")) == 1
        assert sm.ensure_search_pipeline(idx.client) == "exists"
        idx.search_hybrid("org/a", v[1], "truck", k=5, weights=(0.5, 0.5))
        name = sm.hybrid_pipeline_name((0.5, 0.5))
        (other,) = fake.calls("PUT", f"/_search/pipeline/{name}")
        params = other.body["phase_results_processors"][0]["normalization-processor"]
        assert params["combination"]["parameters"]["weights"] == [0.5, 0.5]
        assert fake.calls("POST", f"/{INDEX}/_search")[-1].params["search_pipeline"] == name
    else:
        # Serverless: no search pipelines; a k-NN and a match query, combined client-side
        assert not [r for r in fake.requests if "/_search/pipeline" in r.path]
        knn_req, match_req = searches[-2:]
        assert "search_pipeline" not in knn_req.params | match_req.params
        spec = knn_req.body["query"]["knn"]["text_embedding"]
        assert spec["k"] == sm.HYBRID_DEPTH and spec["vector"] == unit
        assert spec["filter"] == {"bool": {"filter": clauses}}
        assert match_req.body["size"] == sm.HYBRID_DEPTH
        assert match_req.body["query"] == {
            "bool": {"must": [{"match": {"description": "white truck"}}], "filter": clauses}
        }


def test_ensure_search_pipeline_creates_updates_and_keeps(cluster) -> None:
    fake, idx = cluster
    if idx.service != "es":
        pytest.skip("managed domains only")
    idx.ensure_index()
    idx.upsert(_doc("org/a", 0, _vecs(1)[0], description="a truck"))
    fake.pipelines.clear()
    idx._pipelines.clear()
    assert sm.ensure_search_pipeline(idx.client) == "created"
    fake.pipelines[sm.HYBRID_PIPELINE]["phase_results_processors"][0]["normalization-processor"][
        "combination"
    ]["parameters"]["weights"] = [0.5, 0.5]
    assert sm.ensure_search_pipeline(idx.client) == "updated"
    assert len(idx.search_hybrid("org/a", _vecs(1)[0], "truck", k=5)) == 1
    # a hybrid query needs its pipeline (the fake refuses one without, as a guard)
    body = fake.calls("POST", f"/{INDEX}/_search")[-1].body
    with pytest.raises(Exception, match="illegal_argument"):
        idx.client.search(index=INDEX, body=body)


def test_deep_pages_widen_the_candidate_lists(
    subject: Subject, monkeypatch: pytest.MonkeyPatch
) -> None:
    idx = subject.index
    monkeypatch.setattr(sm, "HYBRID_DEPTH", 3)
    _corpus(idx, n=8, seed=1)
    q = _vecs(1, seed=9)[0]
    assert len(idx.search_hybrid("org/a", q, "person", k=3)) == 3
    assert len(idx.search_hybrid("org/a", q, "person", k=3, offset=4)) == 3
    assert len(idx.search_hybrid("org/a", q, "person", k=3, offset=6)) == 2


def test_local_index_builds_its_bm25_table_for_an_older_database(tmp_path) -> None:
    import sqlite3

    from sightline.adapters.local_index import LocalVectorIndex

    v = _vecs(3, seed=30)
    idx = LocalVectorIndex(tmp_path / "old")
    idx.upsert_many([_doc("org/a", i, v[i], description=f"chunk {i}") for i in range(2)])
    idx.upsert(_doc("org/a", 2, v[2], description="a forklift"))
    idx.upsert(_doc("org/a", 2, v[2], description="a forklift again"))  # tombstones one row
    with sqlite3.connect(tmp_path / "old" / "documents.db") as db:
        db.execute("DROP TABLE docs_fts")  # a database written before hybrid search
    reopened = LocalVectorIndex(tmp_path / "old")
    hits = reopened.search_hybrid("org/a", v[0], "forklift", k=3, weights=(0.0, 1.0))
    assert _ids(hits)[0] == "vid1-c00002" and hits[0].description == "a forklift again"
    with sqlite3.connect(tmp_path / "old" / "documents.db") as db:
        assert db.execute("SELECT count(*) FROM docs_fts").fetchone()[0] == 3
    assert reopened.delete_video("org/a", "vid1") == 3
    with sqlite3.connect(tmp_path / "old" / "documents.db") as db:
        assert db.execute("SELECT count(*) FROM docs_fts").fetchone()[0] == 0
