"""``sightline bench search``: latency, recall and freshness of the local k-NN index.

Synthetic clustered unit vectors, spread over five tenants (each 20 % of the data); every
query is a top-50 search with the tenant filter, as the API issues it. Recall@10 is
measured against exact search over the tenant's own vectors. Building the index (bulk
insert, then the HNSW graph) is timed separately and excluded from the query figures;
``lag_s`` is the time from the upsert of one new chunk document to a search returning it.
Figures are printed, never asserted.
"""

from __future__ import annotations

import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

TENANTS = 5
K = 50
BATCH = 5_000


def _clustered(rng: np.random.Generator, n: int, dim: int, centers: np.ndarray) -> np.ndarray:
    which = rng.integers(0, centers.shape[0], size=n)
    v = centers[which] + rng.normal(scale=0.6 / np.sqrt(dim), size=(n, dim)).astype(np.float32)
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def _doc(i: int, tenant: str, vec: np.ndarray) -> Any:
    from sightline.models import IndexDocument

    # model_construct: the benchmark's documents are well-formed; validation of 100k × dim
    # floats would dominate the insert time and measure pydantic, not the index.
    video = f"bench{i // 1000:05d}"
    return IndexDocument.model_construct(
        manifest_id=f"{video}-c{i % 1000:05d}",
        tenant_id=tenant,
        stream_id=video,
        video_id=video,
        camera_id=None,
        t0=float(i % 1000) * 10.0,
        t1=float(i % 1000) * 10.0 + 10.0,
        t_mid=float(i % 1000) * 10.0 + 5.0,
        description=f"synthetic chunk {i}",
        events=[],
        tags=[],
        text_embedding=vec,  # type: ignore[arg-type]  # an array: no list copy
        latent_embedding=None,
        embedding_model="bench",
        roi_suggestion=None,
    )


def search_benchmark(
    n: int, dim: int = 384, queries: int = 200, seed: int = 0, directory: Path | None = None
) -> dict[str, Any]:
    """Build a local index of ``n`` documents and time filtered top-50 searches on it."""
    from sightline.adapters.local_index import LocalVectorIndex

    if n < TENANTS * 10:
        raise ValueError(f"n must be at least {TENANTS * 10}")
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(max(16, n // 500), dim)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    target = "bench/t0"
    tenant_vecs: list[np.ndarray] = []
    tenant_ids: list[str] = []
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
                if tenant == target:
                    tenant_vecs.append(vec)
                    tenant_ids.append(docs[-1].manifest_id)
            idx.upsert_many(docs)
        insert_s = time.perf_counter() - started
        started = time.perf_counter()
        idx.prepare(dim)
        build_s = time.perf_counter() - started

        own = np.stack(tenant_vecs)
        picks = rng.integers(0, own.shape[0], size=queries)
        qs = own[picks] + rng.normal(scale=0.3 / np.sqrt(dim), size=(queries, dim))
        qs = (qs / np.linalg.norm(qs, axis=1, keepdims=True)).astype(np.float32)
        for q in qs[:5]:  # warm-up
            idx.search(target, q, k=K)
        times, recalls = [], []
        for q in qs:
            t = time.perf_counter()
            hits = idx.search(target, q, k=K)
            times.append(time.perf_counter() - t)
            exact = {tenant_ids[i] for i in np.argsort(-(own @ q))[:10]}
            recalls.append(len(exact & {h.manifest_id for h in hits[:10]}) / 10)

        # The graph walk alone (faiss HNSW + tenant bitmap), for comparison with
        # ARCHITECTURE.md §7; the difference to p50 is SQLite (filter set, hit documents).
        import faiss

        allowed = idx._allowed_cached(target, None, "text_embedding", None, dim)
        bits = allowed.bitmap()
        graph = idx._graph("text_embedding", dim)
        graph_times = []
        for q in qs:
            params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]
            params.efSearch = 128
            params.sel = faiss.IDSelectorBitmap(bits.size, faiss.swig_ptr(bits))
            t = time.perf_counter()
            graph.search(q[None, :], K, params=params)
            graph_times.append(time.perf_counter() - t)

        lags = []
        for trial in range(5):
            vec = _clustered(rng, 1, dim, centers)[0]
            doc = _doc(n + trial, target, vec)
            t = time.perf_counter()
            idx.upsert(doc)
            while doc.manifest_id not in {h.manifest_id for h in idx.search(target, vec, k=K)}:
                if time.perf_counter() - t > 600:
                    break
            lags.append(time.perf_counter() - t)
        graph_size = idx.prepare(dim)

    ms = np.array(times) * 1000
    return {
        "n": n,
        "dim": dim,
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "recall_at_10": round(float(np.mean(recalls)), 4),
        "lag_s": round(statistics.median(lags), 4),
        "graph_p50_ms": round(float(np.percentile(np.array(graph_times) * 1000, 50)), 3),
        "lag_max_s": round(max(lags), 4),
        "build_s": round(build_s, 2),
        "insert_s": round(insert_s, 2),
        "queries": queries,
        "k": K,
        "tenant_docs": int(own.shape[0]),
        "graph_vectors": graph_size,
        "machine": f"{platform.machine()} {platform.python_version()}",
    }
