"""Read-side use cases shared by the CLI and the API: search and event timelines."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sightline.models import Event, SearchHit
from sightline.ports import Embedder, SearchFilters, VectorIndex


@dataclass
class SearchService:
    embedder: Embedder
    index: VectorIndex

    def search_text(
        self,
        tenant_id: str,
        text: str,
        *,
        k: int = 10,
        filters: SearchFilters | None = None,
        offset: int = 0,
        hybrid: bool = False,
    ) -> list[SearchHit]:
        """Rank the tenant's chunks for ``text``; ``offset``/``k`` select the page.

        Default: embedding similarity alone (cosine scores). ``hybrid=True``: BM25 on the
        descriptions and the embedding similarity, each min-max normalised and combined
        (scores in [0, 1]); it finds rare exact words, but on the labelled quality set
        (tests/integration/test_search_quality.py) it ranks slightly worse than vectors
        alone (hit@5 0.95 vs 1.0), so it is opt-in.
        """
        (vector,) = self.embedder.embed([text])
        model = self.embedder.model_id
        if hybrid:
            return list(
                self.index.search_hybrid(
                    tenant_id,
                    vector,
                    text,
                    k=k,
                    offset=offset,
                    filters=filters,
                    embedding_model=model,
                )
            )
        search: Any = self.index.search
        hits = search(tenant_id, vector, k=offset + k, filters=filters, embedding_model=model)
        return list(hits)[offset : offset + k]


def merge_events(events: list[Event], *, gap_s: float = 1.0) -> list[dict[str, Any]]:
    """Join per-chunk events of one type that touch across chunk boundaries.

    Events are stored per chunk (a person seen for 25 s spans three 10-s chunks); a user
    asks "when was a person visible", so adjacent pieces become one episode.
    """
    out: list[dict[str, Any]] = []
    open_by_key: dict[tuple[str, str | None], dict[str, Any]] = {}
    for e in sorted(events, key=lambda e: (e.t0, e.t1)):
        key = (e.type, e.video_id or e.camera_id)
        cur = open_by_key.get(key)
        if cur is not None and e.t0 <= cur["end_s"] + gap_s:
            cur["end_s"] = max(cur["end_s"], e.t1)
            cur["confidence"] = max(cur["confidence"], e.confidence)
            cur["event_ids"].append(e.event_id)
            if len(e.description) > len(cur["description"]):
                cur["description"] = e.description
            continue
        cur = {
            "type": e.type,
            "start_s": e.t0,
            "end_s": e.t1,
            "confidence": round(e.confidence, 3),
            "description": e.description,
            "video_id": e.video_id,
            "camera_id": e.camera_id,
            "bbox": e.bbox,
            "event_ids": [e.event_id],
        }
        open_by_key[key] = cur
        out.append(cur)
    for item in out:
        item["start_s"] = round(item["start_s"], 2)
        item["end_s"] = round(item["end_s"], 2)
        item["confidence"] = round(item["confidence"], 3)
    return sorted(out, key=lambda i: (i["start_s"], i["type"]))
