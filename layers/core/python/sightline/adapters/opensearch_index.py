"""The k-NN index on AWS: OpenSearch Serverless (``aoss``) or a managed domain (``es``).

Requests go through opensearch-py, SigV4-signed with boto3's credentials. The contract is
that of ``LocalVectorIndex``:

- every search is a filtered k-NN query (the ``filter`` inside the ``knn`` clause, which
  OpenSearch applies during the graph walk and answers exactly when the filtered set is
  small) whose filter always holds the tenant; caller filters are ANDed to it, so a
  crafted filter (another tenant's video id) can only narrow the answer;
- a query names the model of the vectors it searches (the text embedding model, or the
  codec codebook of latent embeddings), and only documents of that model match;
- filters have the local index's semantics: value lists match any value, time ranges
  (seconds of the video, or wall-clock ``date`` fields of camera chunks) select chunks
  overlapping the range, and a chunk without wall-clock times never matches a wall filter;
- an upsert replaces the chunk's document. On a domain the document id is
  ``tenant|manifest`` (an index action replaces it); Serverless vector collections assign
  ids themselves and support neither ``refresh`` nor ``_delete_by_query``, so there an
  upsert deletes the chunk's earlier documents (found by ``doc_key``) in the same bulk.
- scores are cosine similarities, as locally.
- ``search_hybrid`` combines BM25 on ``description`` with k-NN, both under the same
  filter. On a domain it is one ``hybrid`` query run through a search pipeline whose
  ``normalization-processor`` (min_max, arithmetic_mean) combines the sub-query scores
  (``search_mapping.ensure_search_pipeline``; OpenSearch 2.10+). OpenSearch Serverless
  has no search pipelines: there the adapter sends the k-NN and the match query
  separately and combines them itself with ``search_mapping.combine_min_max``, the same
  normalisation the local index uses.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from sightline import search_mapping as sm
from sightline.models import IndexDocument, SearchHit
from sightline.ports import SearchFilters

logger = logging.getLogger(__name__)

MAX_K = 1000
_SOURCE_EXCLUDES = list(sm.VECTOR_FIELDS)


def make_client(endpoint: str, service: str, region: str | None = None, **kwargs: Any) -> Any:
    """An opensearch-py client signing requests (SigV4) with boto3's credentials."""
    from urllib.parse import urlparse

    import boto3
    from opensearchpy import AWSV4SignerAuth, OpenSearch, RequestsHttpConnection

    session = boto3.Session(region_name=region) if region else boto3.Session()
    parsed = urlparse(endpoint if "://" in endpoint else f"https://{endpoint}")
    auth = AWSV4SignerAuth(session.get_credentials(), session.region_name, service)
    options: dict[str, Any] = {
        "hosts": [{"host": parsed.hostname, "port": parsed.port or 443}],
        "http_auth": auth,
        "use_ssl": True,
        "verify_certs": True,
        "connection_class": RequestsHttpConnection,
        "timeout": 30,
        "pool_maxsize": 8,
    }
    options.update(kwargs)
    return OpenSearch(**options)


class OpenSearchVectorIndex:
    def __init__(
        self,
        client: Any,
        index_name: str,
        *,
        service: str = "aoss",
        text_dimensions: int = sm.TEXT_DIMENSIONS,
        latent_dimensions: int = sm.LATENT_DIMENSIONS,
        ensure: bool = False,
    ) -> None:
        if service not in ("aoss", "es"):
            raise ValueError(f"unknown OpenSearch service {service!r} (aoss or es)")
        self.client = client
        self.index_name = index_name
        self.service = service
        self.text_dimensions = text_dimensions
        self.latent_dimensions = latent_dimensions
        self._pipelines: set[str] = set()
        if ensure:
            self.ensure_index()

    @classmethod
    def from_endpoint(
        cls,
        endpoint: str,
        index_name: str,
        *,
        service: str = "aoss",
        region: str | None = None,
        **kwargs: Any,
    ) -> OpenSearchVectorIndex:
        return cls(make_client(endpoint, service, region), index_name, service=service, **kwargs)

    @property
    def serverless(self) -> bool:
        return self.service == "aoss"

    def ensure_index(self) -> str:
        body = sm.index_body(self.text_dimensions, self.latent_dimensions)
        result = sm.ensure_index(self.client, self.index_name, body)
        if not self.serverless:
            self._ensure_pipeline(sm.DEFAULT_HYBRID_WEIGHTS)
        return result

    def _ensure_pipeline(self, weights: tuple[float, float]) -> str:
        """The hybrid search pipeline of ``weights``, created once per process if missing."""
        name = sm.hybrid_pipeline_name(weights)
        if name not in self._pipelines:
            sm.ensure_search_pipeline(self.client, name, weights)
            self._pipelines.add(name)
        return name

    def _write_params(self) -> dict[str, Any]:
        # Serverless refreshes on its own (within seconds) and rejects ``refresh``.
        return {} if self.serverless else {"refresh": "wait_for"}

    # ----- writes ----------------------------------------------------------------

    def upsert(self, doc: IndexDocument) -> None:
        self.upsert_many([doc])

    def upsert_many(self, docs: Iterable[IndexDocument]) -> int:
        docs = list(docs)
        if not docs:
            return 0
        lines: list[dict[str, Any]] = []
        if self.serverless:
            keys = sorted({sm.doc_key(d.tenant_id, d.manifest_id) for d in docs})
            for old_id in self._ids({"terms": {sm.DOC_KEY: keys}}):
                lines.append({"delete": {"_index": self.index_name, "_id": old_id}})
        for doc in docs:
            action: dict[str, Any] = {"_index": self.index_name}
            if not self.serverless:
                action["_id"] = sm.doc_key(doc.tenant_id, doc.manifest_id)
            lines.append({"index": action})
            lines.append(self._source(doc))
        self._bulk(lines)
        return len(docs)

    def _source(self, doc: IndexDocument) -> dict[str, Any]:
        body = doc.model_dump(mode="json")
        body[sm.DOC_KEY] = sm.doc_key(doc.tenant_id, doc.manifest_id)
        body["events"] = sorted(set(doc.events))
        body["text_embedding"] = _unit(doc.text_embedding)
        for name in ("wall_t0", "wall_t1"):
            moment = getattr(doc, name)
            if moment is None:
                body.pop(name)
            else:
                body[name] = sm.iso_utc(moment)
        if doc.latent_model is None:
            body.pop("latent_model")
        if doc.latent_embedding is not None:
            body["latent_embedding"] = _unit(doc.latent_embedding)
        else:
            body.pop("latent_embedding")
        if doc.roi_suggestion is None:
            body.pop("roi_suggestion")
        return body

    def _bulk(self, lines: list[dict[str, Any]]) -> None:
        payload = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines)
        resp = self.client.bulk(body=payload, params=self._write_params())
        if resp.get("errors"):
            failed = [
                item
                for item in resp.get("items", [])
                for op, result in item.items()
                if result.get("status", 200) >= 300
                and not (op == "delete" and result.get("status") == 404)
            ]
            if failed:
                raise RuntimeError(f"bulk request failed for {len(failed)} items: {failed[:3]}")

    def delete_video(self, tenant_id: str, video_id: str) -> int:
        query = {"bool": {"filter": [_term("tenant_id", tenant_id), _term("video_id", video_id)]}}
        if not self.serverless:
            resp = self.client.delete_by_query(
                index=self.index_name,
                body={"query": query},
                params={"refresh": "true", "conflicts": "proceed"},
            )
            return int(resp.get("deleted", 0))
        deleted = 0
        seen: set[str] = set()
        while True:
            ids = [i for i in self._ids(query) if i not in seen]
            if not ids:
                return deleted
            seen.update(ids)
            self._bulk([{"delete": {"_index": self.index_name, "_id": i}} for i in ids])
            deleted += len(ids)

    # ----- reads -----------------------------------------------------------------

    def _ids(self, query: dict[str, Any], size: int = 10_000) -> list[str]:
        resp = self.client.search(
            index=self.index_name,
            body={"size": size, "_source": False, "query": {"bool": {"filter": [query]}}},
        )
        return [h["_id"] for h in resp["hits"]["hits"]]

    def get(self, tenant_id: str, manifest_id: str) -> IndexDocument | None:
        body = {
            "size": 1,
            "query": {
                "bool": {
                    "filter": [
                        _term("tenant_id", tenant_id),
                        _term(sm.DOC_KEY, sm.doc_key(tenant_id, manifest_id)),
                    ]
                }
            },
        }
        hits = self.client.search(index=self.index_name, body=body)["hits"]["hits"]
        if not hits:
            return None
        source = dict(hits[0]["_source"])
        source.pop(sm.DOC_KEY, None)
        return IndexDocument.model_validate(source)

    def count(self, tenant_id: str | None = None) -> int:
        query = {"match_all": {}} if tenant_id is None else _term("tenant_id", tenant_id)
        resp = self.client.count(index=self.index_name, body={"query": query})
        return int(resp["count"])

    def search(
        self,
        tenant_id: str,
        vector: Sequence[float],
        *,
        k: int = 10,
        filters: SearchFilters | None = None,
        field: str = "text_embedding",
        embedding_model: str | None = None,
    ) -> list[SearchHit]:
        if field not in sm.VECTOR_FIELDS:
            raise ValueError(f"unknown vector field {field}")
        k = max(1, min(k, MAX_K))
        body = knn_query(
            tenant_id,
            _unit(vector),
            k=k,
            filters=filters,
            field=field,
            embedding_model=embedding_model,
        )
        resp = self.client.search(index=self.index_name, body=body)
        return [_hit(h, sm.to_cosine(float(h["_score"]))) for h in resp["hits"]["hits"][:k]]

    def search_hybrid(
        self,
        tenant_id: str,
        vector: Sequence[float],
        text: str,
        *,
        k: int = 10,
        offset: int = 0,
        filters: SearchFilters | None = None,
        embedding_model: str | None = None,
        weights: tuple[float, float] = sm.DEFAULT_HYBRID_WEIGHTS,
    ) -> list[SearchHit]:
        """BM25 on descriptions and k-NN, min-max normalised and combined; one page of it.

        ``weights`` = (vector, lexical). Both candidate lists are ``sm.HYBRID_DEPTH`` deep
        (or ``offset + k`` if deeper) so pages are slices of one ranking; the page is cut
        here (a hybrid query's ``from`` needs OpenSearch 2.19). Scores are the combined
        normalised scores, in [0, 1]. On Serverless (no search pipelines) the two queries
        are sent separately and combined here, as the local index does.
        """
        w = sm.hybrid_weights(weights)
        k = max(1, min(k, MAX_K))
        offset = max(0, offset)
        depth = min(max(sm.HYBRID_DEPTH, offset + k), 10_000)
        unit = _unit(vector)
        if not self.serverless:
            pipeline = self._ensure_pipeline(w)
            body = hybrid_query(
                tenant_id,
                unit,
                text,
                depth=depth,
                filters=filters,
                embedding_model=embedding_model,
            )
            resp = self.client.search(
                index=self.index_name, body=body, params={"search_pipeline": pipeline}
            )
            hits = [_hit(h, float(h["_score"])) for h in resp["hits"]["hits"]]
            return hits[offset : offset + k]
        semantic = self.search(
            tenant_id, unit, k=depth, filters=filters, embedding_model=embedding_model
        )
        clauses = filter_clauses(tenant_id, filters, embedding_model=embedding_model)
        resp = self.client.search(
            index=self.index_name,
            body={
                "size": depth,
                "_source": {"excludes": _SOURCE_EXCLUDES},
                "query": match_query(text, clauses),
            },
        )
        lexical = [_hit(h, float(h["_score"])) for h in resp["hits"]["hits"]]
        by_id = {h.manifest_id: h for h in lexical}
        by_id.update({h.manifest_id: h for h in semantic})
        ranked = sm.combine_min_max(
            [
                [(h.manifest_id, h.score) for h in semantic],
                [(h.manifest_id, h.score) for h in lexical],
            ],
            w,
        )
        return [
            by_id[key].model_copy(update={"score": score})
            for key, score in ranked[offset : offset + k]
        ]


def _hit(h: dict[str, Any], score: float) -> SearchHit:
    src = h["_source"]
    return SearchHit(
        manifest_id=src["manifest_id"],
        video_id=src["video_id"],
        score=score,
        t0=src["t0"],
        t1=src["t1"],
        description=src["description"],
        camera_id=src.get("camera_id"),
        roi_suggestion=src.get("roi_suggestion"),
        wall_t0=src.get("wall_t0"),
        wall_t1=src.get("wall_t1"),
    )


def filter_clauses(
    tenant_id: str,
    filters: SearchFilters | None,
    *,
    field: str = "text_embedding",
    embedding_model: str | None = None,
) -> list[dict[str, Any]]:
    """The bool filter of a query: always the tenant, then the caller's filters.

    ``embedding_model`` is the model of ``field``'s vectors: ``embedding_model`` for text
    embeddings, ``latent_model`` (the codebook) for latent embeddings.
    """
    f = filters or SearchFilters()
    clauses: list[dict[str, Any]] = [_term("tenant_id", tenant_id)]
    if embedding_model:
        model_field = "embedding_model" if field == "text_embedding" else "latent_model"
        clauses.append(_term(model_field, embedding_model))
    for name, values in (
        ("video_id", f.video_ids),
        ("camera_id", f.camera_ids),
        ("stream_id", f.stream_ids),
        ("events", f.event_types),
        ("tags", f.tags),
    ):
        if values:
            clauses.append({"terms": {name: list(values)}})
    if f.t_from is not None:
        clauses.append({"range": {"t1": {"gte": f.t_from}}})
    if f.t_to is not None:
        clauses.append({"range": {"t0": {"lte": f.t_to}}})
    if f.wall_from is not None:
        clauses.append({"range": {"wall_t1": {"gte": sm.iso_utc(f.wall_from)}}})
    if f.wall_to is not None:
        clauses.append({"range": {"wall_t0": {"lte": sm.iso_utc(f.wall_to)}}})
    return clauses


def knn_query(
    tenant_id: str,
    vector: list[float],
    *,
    k: int,
    filters: SearchFilters | None = None,
    field: str = "text_embedding",
    embedding_model: str | None = None,
) -> dict[str, Any]:
    """A filtered k-NN request: the filter runs inside the knn clause (efficient filtering)."""
    clauses = filter_clauses(tenant_id, filters, field=field, embedding_model=embedding_model)
    return {
        "size": k,
        "_source": {"excludes": _SOURCE_EXCLUDES},
        "query": {
            "knn": {field: {"vector": vector, "k": k, "filter": {"bool": {"filter": clauses}}}}
        },
    }


def match_query(text: str, clauses: list[dict[str, Any]]) -> dict[str, Any]:
    """BM25 on the description (any of the words), under the same filter as the k-NN."""
    return {"bool": {"must": [{"match": {"description": text}}], "filter": clauses}}


def hybrid_query(
    tenant_id: str,
    vector: list[float],
    text: str,
    *,
    depth: int,
    filters: SearchFilters | None = None,
    embedding_model: str | None = None,
) -> dict[str, Any]:
    """A ``hybrid`` query: ``[match, knn]``, both filtered by the tenant and ``filters``.

    Run with a search pipeline (``search_mapping.hybrid_pipeline_body``) that normalises
    and combines the two sub-queries' scores.
    """
    clauses = filter_clauses(tenant_id, filters, embedding_model=embedding_model)
    knn = {
        "knn": {
            "text_embedding": {
                "vector": vector,
                "k": depth,
                "filter": {"bool": {"filter": clauses}},
            }
        }
    }
    return {
        "size": depth,
        "_source": {"excludes": _SOURCE_EXCLUDES},
        "query": {"hybrid": {"queries": [match_query(text, clauses), knn]}},
    }


def _term(name: str, value: str) -> dict[str, Any]:
    return {"term": {name: value}}


def _unit(v: Sequence[float]) -> list[float]:
    a = np.asarray(v, dtype=np.float32)
    norm = float(np.linalg.norm(a))
    return (a / norm if norm > 0 else a).astype(np.float32).tolist()
