"""The OpenSearch chunk index: one definition, shared by the adapter and the CDK bootstrap.

The mapping follows ``sightline.models.IndexDocument``: keyword fields for every filter
(tenant, stream, camera, video, event types, tags, embedding and latent models), numeric
times (seconds from the start of the video), ``date`` wall-clock times of camera chunks, a
BM25 ``text`` field for descriptions and two faiss-HNSW ``knn_vector`` fields (text and
latent embeddings).

Vectors are L2-normalized before they are sent, so inner product ranks exactly as cosine
similarity does; ``innerproduct`` works with the faiss engine on every OpenSearch version
and on Serverless (faiss ``cosinesimil`` needs 2.19+). ``to_cosine`` turns OpenSearch's
score back into the cosine the local index reports.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

K = TypeVar("K", bound=Hashable)

SPACE_TYPE = "innerproduct"
ENGINE = "faiss"
HNSW_M = 32
EF_CONSTRUCTION = 128
EF_SEARCH = 128
TEXT_DIMENSIONS = 384
LATENT_DIMENSIONS = 1024
VECTOR_FIELDS = ("text_embedding", "latent_embedding")
# Serverless vector collections assign document ids themselves: ``doc_key`` (tenant|manifest)
# identifies a chunk document on both kinds of cluster.
DOC_KEY = "doc_key"
# Hybrid (BM25 + k-NN) search: both candidate lists are this deep whatever the page, so
# consecutive pages (offset/k) are slices of one ranking; deeper pages widen it.
HYBRID_DEPTH = 100
HYBRID_PIPELINE = "sightline-hybrid"
DEFAULT_HYBRID_WEIGHTS = (0.7, 0.3)  # (vector, lexical)
MIN_NORMALIZED_SCORE = 0.001  # OpenSearch's min_max floor: the list's lowest score


def doc_key(tenant_id: str, manifest_id: str) -> str:
    return f"{tenant_id}|{manifest_id}"


def vector_field(dimension: int) -> dict[str, Any]:
    return {
        "type": "knn_vector",
        "dimension": dimension,
        "method": {
            "name": "hnsw",
            "engine": ENGINE,
            "space_type": SPACE_TYPE,
            "parameters": {"m": HNSW_M, "ef_construction": EF_CONSTRUCTION},
        },
    }


def index_body(
    text_dimensions: int = TEXT_DIMENSIONS, latent_dimensions: int = LATENT_DIMENSIONS
) -> dict[str, Any]:
    """Settings and mappings of the chunk index (PUT /<index>)."""
    keyword = {"type": "keyword"}
    return {
        "settings": {"index": {"knn": True}},
        "mappings": {
            "properties": {
                DOC_KEY: keyword,
                "manifest_id": keyword,
                "tenant_id": keyword,
                "stream_id": keyword,
                "video_id": keyword,
                "camera_id": keyword,
                "t0": {"type": "float"},
                "t1": {"type": "float"},
                "t_mid": {"type": "float"},
                "description": {"type": "text"},
                "events": keyword,
                "tags": keyword,
                "embedding_model": keyword,
                "latent_model": keyword,
                "wall_t0": {"type": "date"},
                "wall_t1": {"type": "date"},
                "roi_suggestion": {"type": "float"},
                "text_embedding": vector_field(text_dimensions),
                "latent_embedding": vector_field(latent_dimensions),
            }
        },
    }


def as_utc(moment: datetime) -> datetime:
    """A wall-clock time as an aware UTC datetime; a naive one is taken to be UTC already
    (as OpenSearch takes a date string without an offset)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def iso_utc(moment: datetime) -> str:
    """The ``date`` field value and range bound sent to OpenSearch: ISO 8601 in UTC."""
    return as_utc(moment).isoformat(timespec="microseconds").replace("+00:00", "Z")


def epoch_seconds(moment: datetime) -> float:
    """Seconds since 1970 UTC: how the local index stores and compares wall-clock times."""
    return as_utc(moment).timestamp()


def ensure_index(client: Any, name: str, body: Mapping[str, Any]) -> str:
    """Create ``name`` or add missing field mappings: ``created`` or ``exists``.

    Safe to run twice: an existing index keeps its fields (identical definitions are
    accepted by put-mapping; only new fields are added).
    """
    if client.indices.exists(index=name):
        client.indices.put_mapping(index=name, body=body["mappings"])
        return "exists"
    client.indices.create(index=name, body=body)
    return "created"


def to_cosine(score: float, space_type: str = SPACE_TYPE) -> float:
    """OpenSearch's k-NN score (faiss engine) back to the cosine similarity of unit vectors."""
    if space_type == "innerproduct":
        return score - 1.0 if score >= 1.0 else 1.0 - 1.0 / score
    if space_type == "cosinesimil":
        return 2.0 * score - 1.0
    raise ValueError(f"unsupported space type {space_type}")


def from_cosine(cosine: float, space_type: str = SPACE_TYPE) -> float:
    """The k-NN score OpenSearch reports for a cosine similarity (inverse of ``to_cosine``)."""
    if space_type == "innerproduct":
        return 1.0 + cosine if cosine >= 0 else 1.0 / (1.0 - cosine)
    if space_type == "cosinesimil":
        return (1.0 + cosine) / 2.0
    raise ValueError(f"unsupported space type {space_type}")


# ----- hybrid search: score normalisation -------------------------------------------


def hybrid_weights(weights: Sequence[float]) -> tuple[float, float]:
    """(vector, lexical) weights scaled to sum to 1, as the normalization processor requires."""
    if len(weights) != 2 or any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"hybrid weights must be two non-negative numbers, got {weights!r}")
    total = float(sum(weights))
    return (round(weights[0] / total, 4), round(weights[1] / total, 4))


def hybrid_pipeline_name(weights: Sequence[float] = DEFAULT_HYBRID_WEIGHTS) -> str:
    """The search pipeline of one weighting: ``sightline-hybrid`` for the default weights."""
    w = hybrid_weights(weights)
    if w == hybrid_weights(DEFAULT_HYBRID_WEIGHTS):
        return HYBRID_PIPELINE
    return f"{HYBRID_PIPELINE}-v{round(w[0] * 1000)}-l{round(w[1] * 1000)}"


def hybrid_pipeline_body(weights: Sequence[float] = DEFAULT_HYBRID_WEIGHTS) -> dict[str, Any]:
    """A search pipeline normalising a ``hybrid`` query's sub-query scores (min_max) and
    combining them (weighted arithmetic mean). The weights follow the order of the hybrid
    query's sub-queries, which is ``[match, knn]``: (lexical, vector)."""
    vector, lexical = hybrid_weights(weights)
    return {
        "description": "Sightline hybrid search: min-max normalised BM25 and k-NN scores, "
        "weighted arithmetic mean",
        "phase_results_processors": [
            {
                "normalization-processor": {
                    "normalization": {"technique": "min_max"},
                    "combination": {
                        "technique": "arithmetic_mean",
                        "parameters": {"weights": [lexical, vector]},
                    },
                }
            }
        ],
    }


def ensure_search_pipeline(
    client: Any, name: str | None = None, weights: Sequence[float] = DEFAULT_HYBRID_WEIGHTS
) -> str:
    """Create or update the hybrid search pipeline: ``created``, ``updated`` or ``exists``.

    Idempotent: an identical pipeline is left alone. Managed domains only (2.10+, with the
    neural-search plugin); OpenSearch Serverless has no search pipelines, and the adapter
    combines the two result lists itself there (``combine_min_max``).
    """
    name = name or hybrid_pipeline_name(weights)
    body = hybrid_pipeline_body(weights)
    from opensearchpy.exceptions import NotFoundError

    try:
        current = client.search_pipeline.get(id=name).get(name)
    except NotFoundError:
        current = None
    if current is not None:
        if current.get("phase_results_processors") == body["phase_results_processors"]:
            return "exists"
        client.search_pipeline.put(id=name, body=body)
        return "updated"
    client.search_pipeline.put(id=name, body=body)
    return "created"


def min_max(scores: Sequence[float]) -> list[float]:
    """OpenSearch's ``min_max`` normalisation of one sub-query's scores (within the query).

    A list of equal scores normalises to 1.0; the lowest score of a spread list to
    ``MIN_NORMALIZED_SCORE`` rather than 0, so it still counts as found.
    """
    if not scores:
        return []
    lo, hi = min(scores), max(scores)
    if hi == lo:
        return [1.0 for _ in scores]
    return [max((s - lo) / (hi - lo), MIN_NORMALIZED_SCORE) for s in scores]


def combine_min_max(
    results: Sequence[Sequence[tuple[K, float]]], weights: Sequence[float]
) -> list[tuple[K, float]]:
    """Combine ranked ``(key, score)`` lists as a ``normalization-processor`` with ``min_max``
    and ``arithmetic_mean`` does: each list min-max normalised, then per key the weighted
    mean over all lists (a list that did not return the key counts 0). Best first; ties
    keep the order in which keys were first seen.
    """
    if len(results) != len(weights):
        raise ValueError("one weight per result list")
    total = float(sum(weights))
    combined: dict[K, float] = {}
    for result, weight in zip(results, weights, strict=True):
        normalized = min_max([score for _, score in result])
        for (key, _), score in zip(result, normalized, strict=True):
            combined[key] = combined.get(key, 0.0) + weight * score
    ranked = [(key, value / total) for key, value in combined.items()]
    ranked.sort(key=lambda kv: -kv[1])
    return ranked
