"""``sightline bench search``: latency, recall and freshness of the local k-NN index.

Synthetic clustered unit vectors, spread over five tenants (each 20 % of the data); every
query is a top-50 search with the tenant filter, as the API issues it. Recall@10 is
measured against exact search (numpy, over the tenant's own vectors: an independent path,
not the index's own exact search). Building the index (bulk insert, then the HNSW graph)
is timed separately and excluded from the query figures.

``lag_s`` is the *worst* time, over ``LAG_TRIALS`` trials, from the upsert of one new
chunk document to a search returning it (half the trials search with an extra filter, so
the filtered label set is rebuilt after the write too); ``lag_median_s`` beside it.

Beside the interface's figures, two harder query sets are reported: a small tenant
(0.1 % of the data: the exact path) and a selective filter inside the large tenant (a
time range keeping ~2 % of the data: the widened graph walk), each with its p50 and its
recall@10 against exact search over what the filter keeps. Figures are printed, never
asserted.
"""

from __future__ import annotations

import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

TENANTS = 5
K = 50
BATCH = 20_000
LAG_TRIALS = 20
TARGET = "bench/t0"
SMALL = "bench/small"
CHUNKS_PER_VIDEO = 1000


def _clustered(rng: np.random.Generator, n: int, dim: int, centers: np.ndarray) -> np.ndarray:
    which = rng.integers(0, centers.shape[0], size=n)
    v = centers[which] + rng.normal(scale=0.6 / np.sqrt(dim), size=(n, dim)).astype(np.float32)
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def _doc(i: int, tenant: str, vec: np.ndarray) -> Any:
    from sightline.models import IndexDocument

    # model_construct: the benchmark's documents are well-formed; validation of 1M × dim
    # floats would dominate the insert time and measure pydantic, not the index.
    video = f"bench{i // CHUNKS_PER_VIDEO:05d}"
    n = i % CHUNKS_PER_VIDEO
    return IndexDocument.model_construct(
        manifest_id=f"{video}-c{n:05d}",
        tenant_id=tenant,
        stream_id=video,
        video_id=video,
        camera_id=None,
        t0=n * 10.0,
        t1=n * 10.0 + 10.0,
        t_mid=n * 10.0 + 5.0,
        description=f"synthetic chunk {i}",
        events=[],
        tags=[],
        text_embedding=vec,  # type: ignore[arg-type]  # an array: no list copy
        latent_embedding=None,
        embedding_model="bench",
        roi_suggestion=None,
        wall_t0=None,
        wall_t1=None,
        latent_model=None,
    )


def _timed_queries(
    idx: Any, tenant: str, qs: np.ndarray, own: np.ndarray, ids: list[str], filters: Any = None
) -> tuple[list[float], list[float]]:
    """(seconds, recall@10) of a top-``K`` search per query; exact truth from ``own``.

    The searches are timed back to back; the exact answers are computed afterwards (a
    large matrix product between two searches would leave BLAS threads spinning on the
    cores the next search needs, and time the machine, not the index).
    """
    times, found = [], []
    for q in qs:
        t = time.perf_counter()
        hits = idx.search(tenant, q, k=K, filters=filters)
        times.append(time.perf_counter() - t)
        found.append({h.manifest_id for h in hits[:10]})
    recalls = []
    m = min(10, own.shape[0])
    for start in range(0, len(qs), 50):
        scores = own @ qs[start : start + 50].T  # [docs, queries]
        top = np.argpartition(-scores, m - 1, axis=0)[:m]
        for j in range(top.shape[1]):
            exact = {ids[i] for i in top[:, j]}
            recalls.append(len(exact & found[start + j]) / m)
    return times, recalls


def _queries(rng: np.random.Generator, own: np.ndarray, count: int) -> np.ndarray:
    """Queries near the tenant's own vectors (as a real query is near what it finds)."""
    dim = own.shape[1]
    picks = rng.integers(0, own.shape[0], size=count)
    qs = own[picks] + rng.normal(scale=0.3 / np.sqrt(dim), size=(count, dim))
    return (qs / np.linalg.norm(qs, axis=1, keepdims=True)).astype(np.float32)


def _ms(seconds: list[float], q: float) -> float:
    return round(float(np.percentile(np.array(seconds) * 1000, q)), 3)


def search_benchmark(
    n: int, dim: int = 384, queries: int = 200, seed: int = 0, directory: Path | None = None
) -> dict[str, Any]:
    """Build a local index of ``n`` documents and time filtered top-50 searches on it."""
    from sightline.adapters.local_index import LocalVectorIndex
    from sightline.ports import SearchFilters

    if n < TENANTS * 10:
        raise ValueError(f"n must be at least {TENANTS * 10}")
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(max(16, n // 500), dim)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    small_n = max(50, n // 1000)
    target_vecs: list[np.ndarray] = []
    target_ids: list[str] = []
    target_t0: list[float] = []
    with tempfile.TemporaryDirectory(prefix="sightline-bench-search-", dir=directory) as tmp:
        idx = LocalVectorIndex(Path(tmp))
        started = time.perf_counter()
        for start in range(0, n, BATCH):
            vecs = _clustered(rng, min(BATCH, n - start), dim, centers)
            docs = []
            for j, vec in enumerate(vecs):
                i = start + j
                tenant = f"bench/t{i % TENANTS}"
                docs.append(_doc(i, tenant, vec))
                if tenant == TARGET:
                    target_vecs.append(vec.copy())  # not a view: the batch can be freed
                    target_ids.append(docs[-1].manifest_id)
                    target_t0.append(docs[-1].t0)
            idx.upsert_many(docs)
        small_vecs = _clustered(rng, small_n, dim, centers)
        small_docs = [_doc(n + 10_000 + i, SMALL, v) for i, v in enumerate(small_vecs)]
        idx.upsert_many(small_docs)
        insert_s = time.perf_counter() - started
        started = time.perf_counter()
        idx.prepare(dim)
        build_s = time.perf_counter() - started

        own = np.stack(target_vecs)
        qs = _queries(rng, own, queries)
        for q in qs[:5]:  # warm-up
            idx.search(TARGET, q, k=K)
        times, recalls = _timed_queries(idx, TARGET, qs, own, target_ids)

        # A small tenant beside the large ones: the exact path.
        small_ids = [d.manifest_id for d in small_docs]
        small_times, small_recalls = _timed_queries(
            idx, SMALL, _queries(rng, small_vecs, queries), small_vecs, small_ids
        )
        # A selective filter inside the large tenant: ~10 % of its chunks (2 % of the data).
        window = SearchFilters(t_to=CHUNKS_PER_VIDEO)  # chunks starting at or before 1000 s
        kept = np.asarray(target_t0) <= CHUNKS_PER_VIDEO
        kept_vecs = own[kept]
        kept_ids = [m for m, ok in zip(target_ids, kept.tolist(), strict=True) if ok]
        filtered_times, filtered_recalls = _timed_queries(
            idx, TARGET, _queries(rng, kept_vecs, queries), kept_vecs, kept_ids, window
        )

        graph_times = _graph_walk_times(idx, qs, dim)

        lags = []
        for trial in range(LAG_TRIALS):
            vec = _clustered(rng, 1, dim, centers)[0]
            # chunk 0 of a video of its own: inside the filtered window too
            doc = _doc((n // CHUNKS_PER_VIDEO + 1 + trial) * CHUNKS_PER_VIDEO, TARGET, vec)
            filters = window if trial % 2 else None
            t = time.perf_counter()
            idx.upsert(doc)
            while doc.manifest_id not in {
                h.manifest_id for h in idx.search(TARGET, vec, k=K, filters=filters)
            }:
                if time.perf_counter() - t > 600:
                    break
            lags.append(time.perf_counter() - t)
        graph_size = idx.prepare(dim)

    return {
        "n": n,
        "dim": dim,
        "p50_ms": _ms(times, 50),
        "p99_ms": _ms(times, 99),
        "recall_at_10": round(float(np.mean(recalls)), 4),
        "lag_s": round(max(lags), 4),
        "lag_median_s": round(statistics.median(lags), 4),
        "lag_max_s": round(max(lags), 4),
        "graph_p50_ms": _ms(graph_times, 50),
        "small_tenant_docs": small_n,
        "small_tenant_p50_ms": _ms(small_times, 50),
        "small_tenant_recall_at_10": round(float(np.mean(small_recalls)), 4),
        "filtered_docs": int(kept.sum()),
        "filtered_p50_ms": _ms(filtered_times, 50),
        "filtered_p99_ms": _ms(filtered_times, 99),
        "filtered_recall_at_10": round(float(np.mean(filtered_recalls)), 4),
        "build_s": round(build_s, 2),
        "insert_s": round(insert_s, 2),
        "queries": queries,
        "k": K,
        "tenant_docs": int(own.shape[0]),
        "graph_vectors": graph_size,
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "machine": f"{platform.machine()} {platform.python_version()} {os.cpu_count()} cpus",
    }


def _graph_walk_times(idx: Any, qs: np.ndarray, dim: int) -> list[float]:
    """The graph walk alone (faiss HNSW + tenant bitmap), for comparison with
    ARCHITECTURE.md §7; the difference to p50 is the filter set lookup and the hits' rows."""
    import faiss

    from sightline.adapters import local_index

    with idx._lock:
        allowed = idx._allowed(TARGET, None, "text_embedding", None, dim)
        cached = idx._graph("text_embedding", dim)
    bits = allowed.bitmap()
    out = []
    for q in qs:
        params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]
        params.efSearch = local_index.EF_SEARCH
        params.sel = faiss.IDSelectorBitmap(bits.size, faiss.swig_ptr(bits))
        t = time.perf_counter()
        cached.graph.search(q[None, :], K, params=params)
        out.append(time.perf_counter() - t)
    return out
