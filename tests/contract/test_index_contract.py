"""One contract, two adapters: the local faiss/SQLite index and the OpenSearch index.

The OpenSearch adapter runs through opensearch-py against ``FakeOpenSearch`` (managed
domain and Serverless flavours), which computes real answers; the OpenSearch-only tests
at the bottom assert the request shapes a cluster receives.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sightline import search_mapping as sm
from sightline.adapters.local_index import LocalVectorIndex
from sightline.adapters.opensearch_index import OpenSearchVectorIndex
from sightline.models import IndexDocument
from sightline.ports import SearchFilters, VectorIndex
from tests.contract.fake_opensearch import FakeOpenSearch, make_client

DIM = 16
LATENT = 8
INDEX = "sightline-chunks"


@dataclass
class Subject:
    index: Any
    fake: FakeOpenSearch | None = None


@pytest.fixture(params=["local", "opensearch-es", "opensearch-aoss"])
def subject(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Subject]:
    if request.param == "local":
        yield Subject(LocalVectorIndex(tmp_path / "index"))
        return
    service = request.param.split("-")[1]
    fake = FakeOpenSearch(serverless=service == "aoss")
    index = OpenSearchVectorIndex(
        make_client(fake, service=service),
        INDEX,
        service=service,
        text_dimensions=DIM,
        latent_dimensions=LATENT,
        ensure=True,
    )
    yield Subject(index, fake)


def _vecs(n: int, seed: int = 0, dim: int = DIM) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _doc(
    tenant: str,
    n: int,
    vec: np.ndarray,
    *,
    video: str = "vid1",
    camera: str | None = None,
    events: tuple[str, ...] = (),
    tags: tuple[str, ...] = (),
    model: str = "m1",
    latent: np.ndarray | None = None,
    description: str | None = None,
) -> IndexDocument:
    return IndexDocument(
        manifest_id=f"{video}-c{n:05d}",
        tenant_id=tenant,
        stream_id=camera or video,
        video_id=video,
        camera_id=camera,
        t0=n * 10.0,
        t1=n * 10.0 + 10,
        t_mid=n * 10.0 + 5,
        description=description or f"chunk {n} of {video}",
        events=list(events),
        tags=list(tags),
        text_embedding=vec.tolist(),
        latent_embedding=None if latent is None else latent.tolist(),
        embedding_model=model,
    )


def _ids(hits: list[Any]) -> list[str]:
    return [h.manifest_id for h in hits]


def test_both_adapters_satisfy_the_port(subject: Subject) -> None:
    index: VectorIndex = subject.index
    assert callable(index.search) and callable(index.upsert)


def test_upsert_replaces_and_get_round_trips(subject: Subject) -> None:
    idx, v = subject.index, _vecs(3)
    idx.upsert(_doc("org/a", 0, v[0], description="first"))
    idx.upsert(_doc("org/a", 0, v[1], description="second"))  # same chunk: replaces
    assert idx.count("org/a") == 1 and idx.count() == 1
    hits = idx.search("org/a", v[1], k=5)
    assert _ids(hits) == ["vid1-c00000"]
    assert hits[0].description == "second"
    assert hits[0].score == pytest.approx(1.0, abs=1e-4)
    got = idx.get("org/a", "vid1-c00000")
    assert got is not None and got.description == "second"
    assert np.allclose(got.text_embedding, v[1], atol=1e-6)
    assert idx.get("org/b", "vid1-c00000") is None


def test_scores_are_cosine_and_ranked(subject: Subject) -> None:
    idx, v = subject.index, _vecs(6, seed=4)
    for i in range(6):
        idx.upsert(_doc("org/a", i, v[i] * (i + 1)))  # unnormalized input is normalized
    q = v[2] + 0.3 * v[4]
    hits = idx.search("org/a", q, k=6)
    qn = q / np.linalg.norm(q)
    want = np.argsort(-(v @ qn))
    assert _ids(hits) == [f"vid1-c{i:05d}" for i in want]
    assert [h.score for h in hits] == pytest.approx([float(v[i] @ qn) for i in want], abs=1e-4)
    assert len(idx.search("org/a", q, k=2)) == 2


def test_tenant_isolation_even_with_crafted_filters(subject: Subject) -> None:
    idx, v = subject.index, _vecs(4, seed=1)
    idx.upsert(_doc("org/a", 0, v[0], video="vidA"))
    idx.upsert(_doc("org/b", 0, v[1], video="vidB", camera="camB", events=("person",)))
    assert _ids(idx.search("org/a", v[1], k=10)) == ["vidA-c00000"]
    crafted = SearchFilters(video_ids=("vidB",), camera_ids=("camB",), event_types=("person",))
    assert idx.search("org/a", v[1], k=10, filters=crafted) == []
    assert idx.search("org/a", v[1], k=10, filters=SearchFilters(video_ids=("vidB",))) == []
    assert idx.search("org/c", v[1], k=10) == []
    assert idx.get("org/a", "vidB-c00000") is None
    assert idx.delete_video("org/a", "vidB") == 0
    assert idx.count("org/b") == 1


def test_filters(subject: Subject) -> None:
    idx, v = subject.index, _vecs(6, seed=2)
    idx.upsert(_doc("org/a", 0, v[0], camera="cam1", events=("person",)))
    idx.upsert(_doc("org/a", 1, v[1], camera="cam1", events=("vehicle", "person")))
    idx.upsert(_doc("org/a", 2, v[2], camera="cam2", events=("vehicle",)))
    idx.upsert(_doc("org/a", 3, v[3], video="vid2", camera="cam2"))
    q = v[0]

    def ids(**kw: Any) -> set[str]:
        return set(_ids(idx.search("org/a", q, k=10, filters=SearchFilters(**kw))))

    assert ids(event_types=("vehicle",)) == {"vid1-c00001", "vid1-c00002"}
    assert ids(event_types=("person", "animal")) == {"vid1-c00000", "vid1-c00001"}
    assert ids(video_ids=("vid2",)) == {"vid2-c00003"}
    assert ids(camera_ids=("cam1",)) == {"vid1-c00000", "vid1-c00001"}
    # time ranges select chunks overlapping [t_from, t_to]
    assert ids(t_from=15.0) == {"vid1-c00001", "vid1-c00002", "vid2-c00003"}
    assert ids(t_to=9.0) == {"vid1-c00000"}
    assert ids(t_from=12.0, t_to=25.0) == {"vid1-c00001", "vid1-c00002"}
    assert ids(camera_ids=("cam2",), event_types=("vehicle",)) == {"vid1-c00002"}
    assert ids(video_ids=("vid1",), t_from=100.0) == set()


def test_model_separation(subject: Subject) -> None:
    idx, v = subject.index, _vecs(3, seed=3)
    idx.upsert(_doc("org/a", 0, v[0], model="m1"))
    idx.upsert(_doc("org/a", 1, v[1], model="m2"))
    assert _ids(idx.search("org/a", v[1], k=10, embedding_model="m1")) == ["vid1-c00000"]
    assert _ids(idx.search("org/a", v[1], k=10, embedding_model="m2")) == ["vid1-c00001"]
    assert _ids(idx.search("org/a", v[1], k=10, embedding_model="m3")) == []
    # re-embedding a chunk with another model moves it across
    idx.upsert(_doc("org/a", 0, v[2], model="m2"))
    assert idx.search("org/a", v[1], k=10, embedding_model="m1") == []
    assert set(_ids(idx.search("org/a", v[1], k=10, embedding_model="m2"))) == {
        "vid1-c00000",
        "vid1-c00001",
    }


def test_latent_field_search(subject: Subject) -> None:
    idx = subject.index
    v, lat = _vecs(3, seed=5), _vecs(3, seed=6, dim=LATENT)
    idx.upsert(_doc("org/a", 0, v[0], latent=lat[0]))
    idx.upsert(_doc("org/a", 1, v[1], latent=lat[1]))
    idx.upsert(_doc("org/a", 2, v[2]))  # no latent embedding: never a latent hit
    hits = idx.search("org/a", lat[1], k=10, field="latent_embedding")
    assert _ids(hits) == ["vid1-c00001", "vid1-c00000"]
    with pytest.raises(ValueError):
        idx.search("org/a", v[0], k=3, field="nope")


def test_delete_video_and_count(subject: Subject) -> None:
    idx, v = subject.index, _vecs(6, seed=7)
    for i in range(3):
        idx.upsert(_doc("org/a", i, v[i], video="vid1"))
    for i in range(3, 5):
        idx.upsert(_doc("org/a", i, v[i], video="vid2"))
    idx.upsert(_doc("org/b", 0, v[5], video="vid1"))
    assert (idx.count("org/a"), idx.count("org/b"), idx.count()) == (5, 1, 6)
    assert idx.delete_video("org/a", "vid1") == 3
    assert (idx.count("org/a"), idx.count("org/b"), idx.count()) == (2, 1, 3)
    assert {h.video_id for h in idx.search("org/a", v[0], k=10)} == {"vid2"}
    assert _ids(idx.search("org/b", v[0], k=10)) == ["vid1-c00000"]
    assert idx.delete_video("org/a", "vid1") == 0


def test_upsert_many(subject: Subject) -> None:
    idx, v = subject.index, _vecs(5, seed=8)
    idx.upsert_many([_doc("org/a", i, v[i]) for i in range(5)])
    idx.upsert_many([_doc("org/a", 0, v[4], description="again")])
    assert idx.count("org/a") == 5
    assert _ids(idx.search("org/a", v[4], k=2)) in (
        ["vid1-c00000", "vid1-c00004"],
        ["vid1-c00004", "vid1-c00000"],
    )


# ----- OpenSearch request shapes -------------------------------------------------


@pytest.fixture(params=["es", "aoss"])
def cluster(request: pytest.FixtureRequest) -> tuple[FakeOpenSearch, OpenSearchVectorIndex]:
    fake = FakeOpenSearch(serverless=request.param == "aoss")
    idx = OpenSearchVectorIndex(
        make_client(fake, service=request.param),
        INDEX,
        service=request.param,
        text_dimensions=DIM,
        latent_dimensions=LATENT,
    )
    return fake, idx


def test_bootstrap_mapping_is_the_shared_definition_and_idempotent(cluster) -> None:
    fake, idx = cluster
    assert idx.ensure_index() == "created"
    assert idx.ensure_index() == "exists"  # running it twice changes nothing
    (create,) = fake.calls("PUT", f"/{INDEX}")
    assert create.body == sm.index_body(DIM, LATENT)
    props = create.body["mappings"]["properties"]
    assert create.body["settings"] == {"index": {"knn": True}}
    for name, dim in (("text_embedding", DIM), ("latent_embedding", LATENT)):
        assert props[name] == {
            "type": "knn_vector",
            "dimension": dim,
            "method": {
                "name": "hnsw",
                "engine": "faiss",
                "space_type": sm.SPACE_TYPE,
                "parameters": {"m": 32, "ef_construction": 128},
            },
        }
    for name in (
        "tenant_id",
        "video_id",
        "camera_id",
        "stream_id",
        "events",
        "tags",
        "embedding_model",
        "doc_key",
    ):
        assert props[name] == {"type": "keyword"}
    assert props["description"] == {"type": "text"}
    (put,) = fake.calls("PUT", f"/{INDEX}/_mapping")
    assert put.body == sm.index_body(DIM, LATENT)["mappings"]
    assert len(fake.calls("HEAD", f"/{INDEX}")) == 2


def test_requests_are_sigv4_signed_for_the_service(cluster) -> None:
    fake, idx = cluster
    idx.ensure_index()
    auth = fake.requests[-1].headers["Authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert f"/us-east-1/{idx.service}/aws4_request" in auth
    assert "x-amz-date" in {k.lower() for k in fake.requests[-1].headers}


def test_bulk_upsert_request_shape(cluster) -> None:
    fake, idx = cluster
    idx.ensure_index()
    v = _vecs(2, seed=9)
    doc = _doc(
        "org/a",
        0,
        v[0] * 3,
        camera="cam1",
        events=("vehicle", "person", "person"),
        tags=("night",),
        latent=_vecs(1, seed=1, dim=LATENT)[0],
    )
    idx.upsert(doc)
    idx.upsert(doc)
    bulks = fake.calls("POST", "/_bulk")
    assert len(bulks) == 2
    first, second = bulks[0].body, bulks[1].body
    if idx.service == "es":
        assert bulks[0].params == {"refresh": "wait_for"}
        assert first[0] == {"index": {"_index": INDEX, "_id": "org/a|vid1-c00000"}}
        assert second[0] == first[0]  # same id: the second index action replaces
    else:
        assert bulks[0].params == {}
        assert first[0] == {"index": {"_index": INDEX}}  # Serverless assigns ids
        assert second[0]["delete"]["_index"] == INDEX  # the earlier document goes
        assert second[1] == {"index": {"_index": INDEX}}
    source = first[1]
    assert source["doc_key"] == "org/a|vid1-c00000"
    assert source["tenant_id"] == "org/a" and source["camera_id"] == "cam1"
    assert source["events"] == ["person", "vehicle"] and source["tags"] == ["night"]
    assert source["embedding_model"] == "m1"
    assert len(source["text_embedding"]) == DIM and len(source["latent_embedding"]) == LATENT
    assert np.linalg.norm(source["text_embedding"]) == pytest.approx(1.0, abs=1e-5)
    assert "roi_suggestion" not in source
    assert idx.count() == 1


def test_filtered_knn_request_shape(cluster) -> None:
    fake, idx = cluster
    idx.ensure_index()
    v = _vecs(2, seed=10)
    idx.upsert(_doc("org/a", 0, v[0]))
    filters = SearchFilters(
        video_ids=("vid1",),
        camera_ids=("cam1", "cam2"),
        event_types=("person",),
        t_from=5.0,
        t_to=60.0,
    )
    idx.search("org/a", v[1] * 2, k=50, filters=filters, embedding_model="m1")
    (req,) = fake.calls("POST", f"/{INDEX}/_search")[-1:]
    assert req.body["size"] == 50
    assert req.body["_source"] == {"excludes": ["text_embedding", "latent_embedding"]}
    knn = req.body["query"]["knn"]["text_embedding"]
    assert knn["k"] == 50
    assert knn["vector"] == pytest.approx((v[1] / np.linalg.norm(v[1])).tolist(), abs=1e-6)
    assert knn["filter"] == {
        "bool": {
            "filter": [
                {"term": {"tenant_id": "org/a"}},
                {"term": {"embedding_model": "m1"}},
                {"terms": {"video_id": ["vid1"]}},
                {"terms": {"camera_id": ["cam1", "cam2"]}},
                {"terms": {"events": ["person"]}},
                {"range": {"t1": {"gte": 5.0}}},
                {"range": {"t0": {"lte": 60.0}}},
            ]
        }
    }
    # the latent field never filters by the text embedding model; tenant is always there
    idx.search(
        "org/a", _vecs(1, dim=LATENT)[0], k=5, field="latent_embedding", embedding_model="m1"
    )
    latent = fake.calls("POST", f"/{INDEX}/_search")[-1].body["query"]["knn"]
    assert latent["latent_embedding"]["filter"] == {
        "bool": {"filter": [{"term": {"tenant_id": "org/a"}}]}
    }


def test_delete_video_request_shape(cluster) -> None:
    fake, idx = cluster
    idx.ensure_index()
    idx.upsert(_doc("org/a", 0, _vecs(1)[0]))
    assert idx.delete_video("org/a", "vid1") == 1
    query = {"bool": {"filter": [{"term": {"tenant_id": "org/a"}}, {"term": {"video_id": "vid1"}}]}}
    if idx.service == "es":
        (req,) = fake.calls("POST", f"/{INDEX}/_delete_by_query")
        assert req.body == {"query": query}
        assert req.params["refresh"] == "true"
    else:
        assert fake.calls("POST", f"/{INDEX}/_delete_by_query") == []
        deletes = [
            line for b in fake.calls("POST", "/_bulk") for line in b.body if "delete" in line
        ]
        assert len(deletes) == 1


def test_dimension_mismatch_is_an_error(cluster) -> None:
    _, idx = cluster
    idx.ensure_index()
    with pytest.raises(RuntimeError, match="dimension"):
        idx.upsert(_doc("org/a", 0, _vecs(1, dim=DIM + 1)[0]))
