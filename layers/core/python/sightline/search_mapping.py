"""The OpenSearch chunk index: one definition, shared by the adapter and the CDK bootstrap.

The mapping follows ``sightline.models.IndexDocument``: keyword fields for every filter
(tenant, stream, camera, video, event types, tags, embedding model), numeric times
(seconds from the start of the video), a BM25 ``text`` field for descriptions and two
faiss-HNSW ``knn_vector`` fields (text and latent embeddings).

Vectors are L2-normalized before they are sent, so inner product ranks exactly as cosine
similarity does; ``innerproduct`` works with the faiss engine on every OpenSearch version
and on Serverless (faiss ``cosinesimil`` needs 2.19+). ``to_cosine`` turns OpenSearch's
score back into the cosine the local index reports.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
                "roi_suggestion": {"type": "float"},
                "text_embedding": vector_field(text_dimensions),
                "latent_embedding": vector_field(latent_dimensions),
            }
        },
    }


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
