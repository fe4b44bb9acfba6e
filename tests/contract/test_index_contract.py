"""One contract, two adapters: the local faiss/SQLite index and the OpenSearch index.

The OpenSearch adapter runs through opensearch-py against ``FakeOpenSearch`` (managed
domain and Serverless flavours), which computes real answers; the OpenSearch-only tests
at the bottom assert the request shapes a cluster receives.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
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
    stream: str | None = None,
    wall_t0: datetime | None = None,
    latent_model: str | None = None,
) -> IndexDocument:
    return IndexDocument(
        manifest_id=f"{video}-c{n:05d}",
        tenant_id=tenant,
        stream_id=stream or camera or video,
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
        wall_t0=wall_t0,
        wall_t1=None if wall_t0 is None else wall_t0 + timedelta(seconds=10),
        latent_model=latent_model,
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


NOON = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def test_tag_stream_and_wall_clock_filters(subject: Subject) -> None:
    idx, v = subject.index, _vecs(5, seed=11)
    # camera chunks with wall-clock times (10 s each), and an uploaded video without any
    idx.upsert(_doc("org/a", 0, v[0], camera="cam1", tags=("night",), wall_t0=NOON))
    idx.upsert(
        _doc(
            "org/a",
            1,
            v[1],
            camera="cam1",
            tags=("night", "rain"),
            wall_t0=NOON + timedelta(minutes=5),
        )
    )
    idx.upsert(
        _doc("org/a", 2, v[2], camera="cam2", stream="kvs-2", wall_t0=NOON + timedelta(hours=2))
    )
    idx.upsert(_doc("org/a", 3, v[3], video="vid2", tags=("rain",)))
    q = v[0]

    def ids(**kw: Any) -> set[str]:
        return set(_ids(idx.search("org/a", q, k=10, filters=SearchFilters(**kw))))

    assert ids(tags=("rain",)) == {"vid1-c00001", "vid2-c00003"}
    assert ids(tags=("night", "snow")) == {"vid1-c00000", "vid1-c00001"}
    assert ids(tags=("snow",)) == set()
    assert ids(stream_ids=("kvs-2",)) == {"vid1-c00002"}
    assert ids(stream_ids=("vid2",)) == {"vid2-c00003"}
    # wall-clock ranges select chunks overlapping [wall_from, wall_to]; chunks without
    # wall-clock times never match one
    assert ids(wall_from=NOON) == {"vid1-c00000", "vid1-c00001", "vid1-c00002"}
    assert ids(wall_from=NOON + timedelta(seconds=5), wall_to=NOON + timedelta(minutes=5)) == {
        "vid1-c00000",
        "vid1-c00001",
    }
    assert ids(wall_to=NOON - timedelta(seconds=1)) == set()
    assert ids(wall_from=NOON + timedelta(minutes=6), wall_to=NOON + timedelta(hours=1)) == set()
    # an offset is the same instant; a naive time is UTC
    plus2 = datetime(2026, 5, 1, 14, 5, tzinfo=timezone(timedelta(hours=2)))
    assert ids(wall_from=plus2, wall_to=plus2) == {"vid1-c00001"}
    assert ids(wall_from=datetime(2026, 5, 1, 14, 0)) == {"vid1-c00002"}
    assert ids(tags=("night",), wall_from=NOON + timedelta(minutes=1)) == {"vid1-c00001"}
    # hits carry the wall-clock times and camera; get round-trips them
    (hit,) = idx.search("org/a", v[1], k=1, filters=SearchFilters(tags=("night",)))
    assert hit.manifest_id == "vid1-c00001" and hit.camera_id == "cam1"
    assert hit.wall_t0 == NOON + timedelta(minutes=5)
    assert hit.wall_t1 == NOON + timedelta(minutes=5, seconds=10)
    got = idx.get("org/a", "vid1-c00001")
    assert got is not None and got.wall_t0 == NOON + timedelta(minutes=5)
    assert got.tags == ["night", "rain"] and got.camera_id == "cam1"
    assert idx.get("org/a", "vid2-c00003").wall_t0 is None


CRAFTED = (
    "*",
    "%",
    "org/*",
    "org/%",
    "' OR '1'='1",
    '") OR 1=1 --',
    "org/b",
    "org/b|vidB-c00000",
    "",
)


def test_crafted_filters_never_cross_tenants(subject: Subject) -> None:
    idx, v = subject.index, _vecs(6, seed=12)
    idx.upsert(_doc("org/a", 0, v[0], video="vidA", camera="camA", tags=("lobby",)))
    # the other tenants hold the nearest vectors, and values a caller might guess
    other = dict(camera="camB", events=("person",), tags=("org/a", "*", "lobby"))
    idx.upsert(_doc("org/b", 0, v[1], video="vidB", wall_t0=NOON, **other))
    idx.upsert(_doc("org/ab", 0, v[1], video="vidA", camera="camA", tags=("lobby",)))
    idx.upsert(_doc("org/a-b", 0, v[1], video="vidA", tags=("lobby",)))
    everything = SearchFilters(t_from=-1e9, t_to=1e12)
    assert _ids(idx.search("org/a", v[1], k=10, filters=everything)) == ["vidA-c00000"]
    for value in CRAFTED:
        for filters in (
            SearchFilters(video_ids=(value,)),
            SearchFilters(camera_ids=(value,)),
            SearchFilters(stream_ids=(value,)),
            SearchFilters(event_types=(value,)),
            SearchFilters(tags=(value,)),
        ):
            hits = idx.search("org/a", v[1], k=10, filters=filters)
            assert {h.video_id for h in hits} <= {"vidA"}, (value, filters)
            assert all(h.manifest_id == "vidA-c00000" for h in hits)
        # a pattern or prefix as the tenant matches no tenant (only an exact id does)
        for tenant in {value, "org", "org/", "org/a*"} - {"org/b"}:
            assert idx.search(tenant, v[1], k=10) == []
        assert idx.get("org/a", value) is None
    # another tenant's own ids and values: nothing of theirs comes back
    crafted = SearchFilters(
        video_ids=("vidB",), camera_ids=("camB",), event_types=("person",), tags=("org/a",)
    )
    assert idx.search("org/a", v[1], k=10, filters=crafted) == []
    assert idx.search("org/a", v[1], k=10, filters=SearchFilters(wall_from=NOON)) == []
    assert idx.search("org/a", v[1], k=10, filters=SearchFilters(tags=("lobby",)))[
        0
    ].manifest_id == ("vidA-c00000")
    assert idx.get("org/a", "vidB-c00000") is None
    # the latent field, and hybrid search, are tenant-scoped the same way
    assert idx.search("org/a", v[1][:LATENT], k=10, field="latent_embedding") == []
    hybrid = idx.search_hybrid("org/a", v[1], "chunk vidB org", k=10)
    assert _ids(hybrid) == ["vidA-c00000"]
    assert idx.count("org/a") == 1 and idx.count("org/ab") == 1


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
    # latents of two codebooks never mix when the query names its codebook
    idx.upsert(_doc("org/a", 3, v[0], latent=lat[1], latent_model="cb-2"))
    idx.upsert(_doc("org/a", 4, v[1], latent=lat[2], latent_model="cb-1"))
    cb1 = idx.search("org/a", lat[1], k=10, field="latent_embedding", embedding_model="cb-1")
    assert _ids(cb1) == ["vid1-c00004"]
    cb2 = idx.search("org/a", lat[1], k=10, field="latent_embedding", embedding_model="cb-2")
    assert _ids(cb2) == ["vid1-c00003"]
    assert idx.get("org/a", "vid1-c00003").latent_model == "cb-2"
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
        stream_ids=("kvs-1",),
        tags=("night",),
        wall_from=datetime(2026, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))),
        wall_to=datetime(2026, 5, 1, 13, 0),  # naive: UTC
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
                {"terms": {"stream_id": ["kvs-1"]}},
                {"terms": {"events": ["person"]}},
                {"terms": {"tags": ["night"]}},
                {"range": {"t1": {"gte": 5.0}}},
                {"range": {"t0": {"lte": 60.0}}},
                {"range": {"wall_t1": {"gte": "2026-05-01T12:00:00.000000Z"}}},
                {"range": {"wall_t0": {"lte": "2026-05-01T13:00:00.000000Z"}}},
            ]
        }
    }
    # a latent search names the codebook of its vectors (latent_model), never the text
    # embedding model; the tenant is always there
    idx.search(
        "org/a", _vecs(1, dim=LATENT)[0], k=5, field="latent_embedding", embedding_model="cb-1"
    )
    latent = fake.calls("POST", f"/{INDEX}/_search")[-1].body["query"]["knn"]
    assert latent["latent_embedding"]["filter"] == {
        "bool": {"filter": [{"term": {"tenant_id": "org/a"}}, {"term": {"latent_model": "cb-1"}}]}
    }
    idx.search("org/a", _vecs(1, dim=LATENT)[0], k=5, field="latent_embedding")
    latent = fake.calls("POST", f"/{INDEX}/_search")[-1].body["query"]["knn"]
    assert latent["latent_embedding"]["filter"] == {
        "bool": {"filter": [{"term": {"tenant_id": "org/a"}}]}
    }


def test_wall_clock_times_are_sent_as_utc_dates(cluster) -> None:
    fake, idx = cluster
    idx.ensure_index()
    (create,) = fake.calls("PUT", f"/{INDEX}")
    props = create.body["mappings"]["properties"]
    assert props["wall_t0"] == props["wall_t1"] == {"type": "date"}
    assert props["latent_model"] == {"type": "keyword"}
    plus2 = datetime(2026, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    idx.upsert(_doc("org/a", 0, _vecs(1)[0], wall_t0=plus2, latent_model="cb-1"))
    idx.upsert(_doc("org/a", 1, _vecs(1)[0]))
    first, second = (b.body for b in fake.calls("POST", "/_bulk"))
    source = first[-1]
    assert source["wall_t0"] == "2026-05-01T12:00:00.000000Z"
    assert source["wall_t1"] == "2026-05-01T12:00:10.000000Z"
    assert source["latent_model"] == "cb-1"
    # absent values are left out of the document (a missing field, as OpenSearch expects)
    assert not {"wall_t0", "wall_t1", "latent_model", "roi_suggestion"} & set(second[-1])


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
