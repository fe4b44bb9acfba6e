"""A small in-process OpenSearch: the endpoints the Sightline index uses, answered for real.

opensearch-py talks to it through its ordinary ``RequestsHttpConnection`` (SigV4 signing
included); only the HTTP session's transport is replaced by ``FakeOpenSearch.send``. Every
request is recorded (method, path, query parameters, parsed body, headers) so tests can
assert on the exact k-NN API shapes a cluster would receive. Answers are computed: exact
cosine over the stored vectors with the query's filter applied, scored as the faiss engine
scores them for the mapped space type.

``match`` queries are scored with Lucene's BM25 (k1 1.2, b 0.75, lower-cased word
tokens) over the stored descriptions; a ``hybrid`` query needs a ``search_pipeline``
(``PUT /_search/pipeline/<name>``) whose ``normalization-processor`` (min_max,
arithmetic_mean with weights) combines its sub-queries' scores.

With ``serverless=True`` it refuses what OpenSearch Serverless vector collections refuse:
custom document ids, ``refresh``, ``_delete_by_query`` and search pipelines.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import numpy as np
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from sightline import search_mapping as sm


@dataclass
class Recorded:
    method: str
    path: str
    params: dict[str, str]
    body: Any
    headers: dict[str, str]


class ApiError(Exception):
    def __init__(self, status: int, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.kind, self.reason = status, kind, reason


@dataclass
class FakeIndex:
    settings: dict[str, Any]
    properties: dict[str, Any]
    docs: dict[str, dict[str, Any]] = field(default_factory=dict)


class FakeOpenSearch(BaseAdapter):
    def __init__(self, *, serverless: bool = False) -> None:
        super().__init__()
        self.serverless = serverless
        self.indices: dict[str, FakeIndex] = {}
        self.requests: list[Recorded] = []
        self.pipelines: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)

    # ----- requests.adapters.BaseAdapter -----------------------------------------

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        url = urlsplit(request.url or "")
        path = unquote(url.path)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        raw = request.body or b""
        text = raw.decode() if isinstance(raw, bytes) else raw
        if path.endswith("/_bulk"):
            body: Any = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            body = json.loads(text) if text else None
        self.requests.append(
            Recorded(request.method or "", path, params, body, dict(request.headers))
        )
        try:
            status, payload = self._route(request.method or "GET", path, params, body)
        except ApiError as exc:
            status = exc.status
            payload = {"error": {"type": exc.kind, "reason": exc.reason}, "status": exc.status}
        resp = requests.Response()
        resp.status_code = status
        resp.headers = CaseInsensitiveDict({"content-type": "application/json"})
        resp._content = b"" if request.method == "HEAD" else json.dumps(payload).encode()
        resp.request = request
        resp.url = request.url or ""
        return resp

    def close(self) -> None:
        pass

    # ----- helpers for tests -----------------------------------------------------

    def calls(self, method: str, suffix: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path.endswith(suffix)]

    # ----- routing ---------------------------------------------------------------

    def _route(self, method: str, path: str, params: dict[str, str], body: Any) -> tuple[int, Any]:
        parts = [p for p in path.split("/") if p]
        if self.serverless and "refresh" in params:
            raise ApiError(400, "illegal_argument_exception", "refresh is not supported")
        if parts == ["_bulk"] and method in ("POST", "PUT"):
            return 200, self._bulk(body)
        if parts[:2] == ["_search", "pipeline"]:
            return self._pipeline(method, parts[2] if len(parts) > 2 else None, body)
        if len(parts) == 1 and method == "HEAD":
            return (200 if parts[0] in self.indices else 404), None
        if len(parts) == 1 and method == "PUT":
            return 200, self._create(parts[0], body or {})
        if len(parts) == 2:
            name, op = parts
            index = self._index(name)
            if op == "_mapping" and method in ("PUT", "POST"):
                return 200, self._put_mapping(index, body or {})
            if op == "_search" and method in ("GET", "POST"):
                return 200, self._search(index, body or {}, params.get("search_pipeline"))
            if op == "_count" and method in ("GET", "POST"):
                query = (body or {}).get("query", {"match_all": {}})
                n = sum(1 for d in index.docs.values() if self._matches(index, d, query))
                return 200, {"count": n}
            if op == "_delete_by_query" and method == "POST":
                if self.serverless:
                    raise ApiError(404, "invalid_request", "_delete_by_query is not supported")
                query = (body or {}).get("query", {"match_all": {}})
                gone = [i for i, d in index.docs.items() if self._matches(index, d, query)]
                for i in gone:
                    del index.docs[i]
                return 200, {"deleted": len(gone), "total": len(gone), "failures": []}
        raise ApiError(400, "unsupported", f"{method} {path} is not implemented by the fake")

    def _index(self, name: str) -> FakeIndex:
        if name not in self.indices:
            raise ApiError(404, "index_not_found_exception", f"no such index [{name}]")
        return self.indices[name]

    def _create(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        if name in self.indices:
            raise ApiError(400, "resource_already_exists_exception", f"index [{name}] exists")
        props = json.loads(json.dumps(body.get("mappings", {}).get("properties", {})))
        self.indices[name] = FakeIndex(body.get("settings", {}), props)
        return {"acknowledged": True, "index": name}

    def _put_mapping(self, index: FakeIndex, body: dict[str, Any]) -> dict[str, Any]:
        for name, spec in body.get("properties", {}).items():
            if name in index.properties and index.properties[name] != spec:
                raise ApiError(400, "illegal_argument_exception", f"mapper [{name}] conflicts")
            index.properties.setdefault(name, json.loads(json.dumps(spec)))
        return {"acknowledged": True}

    # ----- documents -------------------------------------------------------------

    def _bulk(self, lines: list[dict[str, Any]]) -> dict[str, Any]:
        items: list[dict[str, Any]] = []
        it = iter(lines)
        for action in it:
            ((op, meta),) = action.items()
            try:
                index = self._index(meta["_index"])
                if op == "index":
                    source = next(it)
                    if self.serverless and "_id" in meta:
                        raise ApiError(
                            400, "illegal_argument_exception", "document id is not supported"
                        )
                    self._validate(index, source)
                    doc_id = meta.get("_id") or f"auto-{next(self._ids)}"
                    existed = doc_id in index.docs
                    index.docs[doc_id] = source
                    items.append(
                        {
                            op: {
                                "_id": doc_id,
                                "status": 200 if existed else 201,
                                "result": "updated" if existed else "created",
                            }
                        }
                    )
                elif op == "delete":
                    found = index.docs.pop(meta["_id"], None) is not None
                    items.append(
                        {
                            op: {
                                "_id": meta["_id"],
                                "status": 200 if found else 404,
                                "result": "deleted" if found else "not_found",
                            }
                        }
                    )
                else:
                    raise ApiError(400, "illegal_argument_exception", f"bulk op {op}")
            except ApiError as exc:
                items.append(
                    {op: {"status": exc.status, "error": {"type": exc.kind, "reason": exc.reason}}}
                )
        errors = any(v.get("error") for item in items for v in item.values())
        return {"took": 1, "errors": errors, "items": items}

    def _validate(self, index: FakeIndex, source: dict[str, Any]) -> None:
        for name, value in source.items():
            spec = index.properties.get(name)
            if spec is None:
                continue
            if spec.get("type") == "knn_vector" and len(value) != spec["dimension"]:
                raise ApiError(
                    400,
                    "mapper_parsing_exception",
                    f"Vector dimension mismatch. Expected: {spec['dimension']}, "
                    f"Given: {len(value)}",
                )

    # ----- queries ---------------------------------------------------------------

    def _pipeline(self, method: str, name: str | None, body: Any) -> tuple[int, Any]:
        if self.serverless:
            raise ApiError(404, "invalid_request", "search pipelines are not supported")
        if name is None:
            raise ApiError(400, "unsupported", "pipeline name required")
        if method == "PUT":
            processors = (body or {}).get("phase_results_processors", [])
            for proc in processors:
                spec = proc["normalization-processor"]
                weights = spec["combination"].get("parameters", {}).get("weights", [])
                if weights and abs(sum(weights) - 1.0) > 1e-4:
                    raise ApiError(400, "illegal_argument_exception", "weights must sum to 1")
            self.pipelines[name] = json.loads(json.dumps(body))
            return 200, {"acknowledged": True}
        if method == "GET":
            if name not in self.pipelines:
                return 404, {}
            return 200, {name: self.pipelines[name]}
        if method == "DELETE":
            self.pipelines.pop(name, None)
            return 200, {"acknowledged": True}
        raise ApiError(400, "unsupported", f"{method} pipeline")

    def _search(
        self, index: FakeIndex, body: dict[str, Any], pipeline: str | None = None
    ) -> dict[str, Any]:
        size = int(body.get("size", 10))
        query = body.get("query", {"match_all": {}})
        if "hybrid" in query:
            scored = self._hybrid(index, query["hybrid"], pipeline, size)
        else:
            scored = self._scored(index, query)
        hits = []
        for score, doc_id, doc in scored[:size]:
            hit: dict[str, Any] = {"_index": "", "_id": doc_id, "_score": score}
            src = body.get("_source", True)
            if src is not False:
                excludes = src.get("excludes", []) if isinstance(src, dict) else []
                hit["_source"] = {k: v for k, v in doc.items() if k not in excludes}
            hits.append(hit)
        return {
            "took": 1,
            "timed_out": False,
            "hits": {
                "total": {"value": len(scored), "relation": "eq"},
                "max_score": hits[0]["_score"] if hits else None,
                "hits": hits,
            },
        }

    def _scored(self, index: FakeIndex, query: dict[str, Any]) -> list[tuple[float, str, dict]]:
        if "knn" in query:
            return self._knn(index, query["knn"])
        stats = _Bm25(index)
        out = []
        for doc_id, doc in index.docs.items():
            score = self._score(index, stats, doc, query)
            if score is not None:
                out.append((score, doc_id, doc))
        out.sort(key=lambda t: -t[0])  # stable: equal scores keep insertion order
        return out

    def _score(
        self, index: FakeIndex, stats: _Bm25, doc: dict[str, Any], q: dict[str, Any]
    ) -> float | None:
        """A query's score for ``doc`` (None: no match); filters score 0, as in OpenSearch."""
        ((kind, arg),) = q.items()
        if kind == "match":
            ((fname, text),) = arg.items()
            text = text["query"] if isinstance(text, dict) else text
            if index.properties.get(fname, {}).get("type") != "text":
                raise ApiError(400, "query_shard_exception", f"match on non-text {fname}")
            score = stats.score(str(doc.get(fname) or ""), text)
            return score if score > 0 else None
        if kind == "bool" and (arg.get("must") or arg.get("should")):
            if not all(self._matches(index, doc, c) for c in arg.get("filter", [])):
                return None
            if any(self._matches(index, doc, c) for c in arg.get("must_not", [])):
                return None
            total = 0.0
            for c in arg.get("must", []):
                s = self._score(index, stats, doc, c)
                if s is None:
                    return None
                total += s
            should = [self._score(index, stats, doc, c) for c in arg.get("should", [])]
            if should and not arg.get("must") and all(s is None for s in should):
                return None
            return total + sum(s for s in should if s is not None)
        return 1.0 if self._matches(index, doc, q) else None

    def _hybrid(
        self, index: FakeIndex, clause: dict[str, Any], pipeline: str | None, size: int
    ) -> list[tuple[float, str, dict]]:
        if pipeline is None or pipeline not in self.pipelines:
            raise ApiError(
                400, "illegal_argument_exception", "hybrid query needs a search pipeline"
            )
        (proc,) = self.pipelines[pipeline]["phase_results_processors"]
        spec = proc["normalization-processor"]
        if spec["normalization"]["technique"] != "min_max":
            raise ApiError(400, "unsupported", "the fake normalises with min_max only")
        if spec["combination"]["technique"] != "arithmetic_mean":
            raise ApiError(400, "unsupported", "the fake combines with arithmetic_mean only")
        queries = clause["queries"]
        weights = spec["combination"].get("parameters", {}).get("weights") or [1.0] * len(queries)
        if len(weights) != len(queries):
            raise ApiError(400, "illegal_argument_exception", "one weight per sub-query")
        combined: dict[str, float] = {}
        docs: dict[str, dict] = {}
        for sub, weight in zip(queries, weights, strict=True):
            results = self._scored(index, sub)[:size]  # each sub-query's top hits
            if not results:
                continue
            lo, hi = min(r[0] for r in results), max(r[0] for r in results)
            for score, doc_id, doc in results:
                norm = 1.0 if hi == lo else max((score - lo) / (hi - lo), 0.001)
                combined[doc_id] = combined.get(doc_id, 0.0) + weight * norm
                docs[doc_id] = doc
        total = sum(weights)
        out = [(value / total, doc_id, docs[doc_id]) for doc_id, value in combined.items()]
        out.sort(key=lambda t: -t[0])
        return out

    def _knn(self, index: FakeIndex, clause: dict[str, Any]) -> list[tuple[float, str, dict]]:
        ((name, spec),) = clause.items()
        mapping = index.properties.get(name, {})
        if mapping.get("type") != "knn_vector":
            raise ApiError(400, "query_shard_exception", f"field [{name}] is not knn_vector")
        query = np.asarray(spec["vector"], dtype=np.float64)
        if query.shape[0] != mapping["dimension"]:
            raise ApiError(400, "illegal_argument_exception", "query vector dimension mismatch")
        space = mapping["method"]["space_type"]
        flt = spec.get("filter", {"match_all": {}})
        out = []
        for doc_id, doc in index.docs.items():
            if name not in doc or not self._matches(index, doc, flt):
                continue
            v = np.asarray(doc[name], dtype=np.float64)
            if space == "cosinesimil":
                cos = float(v @ query / (np.linalg.norm(v) * np.linalg.norm(query)))
            else:  # innerproduct over unit vectors
                cos = float(v @ query)
            out.append((sm.from_cosine(cos, space), doc_id, doc))
        out.sort(key=lambda t: -t[0])
        return out[: int(spec["k"])]

    def _matches(self, index: FakeIndex, doc: dict[str, Any], q: dict[str, Any]) -> bool:
        ((kind, arg),) = q.items()
        if kind == "match_all":
            return True
        if kind == "bool":
            must = arg.get("filter", []) + arg.get("must", [])
            must = must if isinstance(must, list) else [must]
            if not all(self._matches(index, doc, c) for c in must):
                return False
            should = arg.get("should", [])
            if should and not any(self._matches(index, doc, c) for c in should):
                return False
            return not any(self._matches(index, doc, c) for c in arg.get("must_not", []))
        if kind in ("term", "terms"):
            ((fname, wanted),) = arg.items()
            if kind == "term":
                wanted = [wanted["value"] if isinstance(wanted, dict) else wanted]
            if index.properties.get(fname, {}).get("type") != "keyword":
                raise ApiError(400, "query_shard_exception", f"{kind} on non-keyword {fname}")
            value = doc.get(fname)
            values = value if isinstance(value, list) else [value]
            return any(v in wanted for v in values if v is not None)
        if kind == "match":
            ((fname, text),) = arg.items()
            text = text["query"] if isinstance(text, dict) else text
            return bool(set(_tokens(text)) & set(_tokens(str(doc.get(fname) or ""))))
        if kind == "range":
            ((fname, bounds),) = arg.items()
            value = doc.get(fname)
            if value is None:
                return False
            if index.properties.get(fname, {}).get("type") == "date":
                value = _date(value)
                bounds = {op: _date(bound) for op, bound in bounds.items()}
            for op, bound in bounds.items():
                ok = {
                    "gte": value >= bound,
                    "gt": value > bound,
                    "lte": value <= bound,
                    "lt": value < bound,
                }[op]
                if not ok:
                    return False
            return True
        raise ApiError(400, "parsing_exception", f"unknown query [{kind}]")


def _date(value: Any) -> datetime:
    """A ``date`` field value or bound as OpenSearch reads it (ISO 8601, default UTC, or
    epoch milliseconds)."""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, UTC)
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _tokens(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


class _Bm25:
    """Lucene's BM25 over the descriptions of one index (k1 = 1.2, b = 0.75)."""

    K1, B = 1.2, 0.75

    def __init__(self, index: FakeIndex) -> None:
        docs = [_tokens(str(d.get("description") or "")) for d in index.docs.values()]
        self.n = len(docs)
        self.avgdl = sum(map(len, docs)) / max(self.n, 1)
        self.df: dict[str, int] = {}
        for tokens in docs:
            for t in set(tokens):
                self.df[t] = self.df.get(t, 0) + 1

    def score(self, text: str, query: str) -> float:
        tokens = _tokens(text)
        total = 0.0
        for term in dict.fromkeys(_tokens(query)):
            tf = tokens.count(term)
            if not tf:
                continue
            df = self.df.get(term, 0)
            idf = math.log(1 + (self.n - df + 0.5) / (df + 0.5))
            norm = tf + self.K1 * (1 - self.B + self.B * len(tokens) / max(self.avgdl, 1e-9))
            total += idf * tf * (self.K1 + 1) / norm
        return total


def make_client(fake: FakeOpenSearch, *, service: str = "es") -> Any:
    """A real opensearch-py client (SigV4 auth, RequestsHttpConnection) wired to ``fake``."""
    from botocore.credentials import Credentials
    from opensearchpy import AWSV4SignerAuth, OpenSearch, RequestsHttpConnection

    class FakeTransportConnection(RequestsHttpConnection):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.session.mount("https://", fake)

    auth = AWSV4SignerAuth(Credentials("AKIDEXAMPLE", "secret"), "us-east-1", service)
    return OpenSearch(
        hosts=[{"host": "search.example.internal", "port": 443}],
        http_auth=auth,
        use_ssl=True,
        verify_certs=True,
        connection_class=FakeTransportConnection,
        max_retries=0,
    )
