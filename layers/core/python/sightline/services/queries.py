"""Read-side use cases shared by the CLI and the API: search and event timelines.

Similarity queries ("clips like this one") run on latent embeddings: a chunk's bag of
codec tokens (``services.latent``), compared by cosine, never by decoding video. A query
chunk is found by id, or by a video and a second in it; a query *image* is encoded by the
codec in-process into the same token histogram (one token step of the still), so it is
answered where the codec runs in-process (the embedded default). No image–text model
ships offline, so an image is never matched against descriptions.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from sightline.errors import InvalidRequest, NotFound
from sightline.models import Event, ManifestRow, SearchHit
from sightline.ports import Embedder, SearchFilters, VectorIndex

logger = logging.getLogger(__name__)

MAX_IMAGE_PIXELS = 1280 * 720  # a larger still is scaled down before encoding


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


@dataclass
class SimilarityService:
    """Clips like this one: latent similarity of codec tokens (no text embedding model)."""

    index: VectorIndex

    def similar_to_chunk(
        self,
        tenant_id: str,
        manifest_id: str,
        *,
        k: int = 10,
        filters: SearchFilters | None = None,
        offset: int = 0,
        include_self: bool = False,
    ) -> list[SearchHit]:
        """The tenant's chunks most like chunk ``manifest_id``, by latent embedding.

        Latents are compared only within the query chunk's codebook. A chunk indexed
        without a latent embedding falls back to its text embedding (same embedding model
        only). The query chunk itself (cosine 1) is left out unless ``include_self``.
        Raises NotFound for a chunk the tenant does not have.
        """
        doc = self.index.get(tenant_id, manifest_id)
        if doc is None:
            raise NotFound(f"chunk {manifest_id} not found")
        if doc.latent_embedding:
            field, vector, model = "latent_embedding", doc.latent_embedding, doc.latent_model
        else:
            field, vector, model = "text_embedding", doc.text_embedding, doc.embedding_model
        depth = offset + k + (0 if include_self else 1)
        search: Any = self.index.search
        hits = search(
            tenant_id, vector, k=depth, filters=filters, field=field, embedding_model=model
        )
        if not include_self:
            hits = [h for h in hits if h.manifest_id != manifest_id]
        return list(hits)[offset : offset + k]

    def similar_to_image(
        self,
        tenant_id: str,
        image: bytes,
        *,
        k: int = 10,
        filters: SearchFilters | None = None,
        offset: int = 0,
    ) -> list[SearchHit]:
        """The tenant's chunks most like a still image (PNG/JPEG bytes), by latent embedding.

        Raises InvalidRequest when the bytes are not an image, or when no codec can run in
        this process (a deployment whose API has no codec: query by chunk or text there).
        """
        vector, codebook_id = image_latent(image)
        search: Any = self.index.search
        hits = search(
            tenant_id,
            vector,
            k=offset + k,
            filters=filters,
            field="latent_embedding",
            embedding_model=codebook_id,
        )
        return list(hits)[offset : offset + k]


def chunk_at(rows: list[ManifestRow], video_id: str, seconds: float) -> ManifestRow:
    """The chunk of ``rows`` (one video's manifests) covering second ``seconds``.

    Chunks are [t0, t1); the end of the last chunk belongs to it. Raises NotFound.
    """
    ordered = sorted(rows, key=lambda r: r.t0)
    for row in ordered:
        if row.t0 <= seconds < row.t1:
            return row
    if ordered and seconds == ordered[-1].t1:
        return ordered[-1]
    if not ordered:
        raise NotFound(f"video {video_id} has no stored chunks")
    raise NotFound(
        f"no chunk of video {video_id} covers {seconds:g} s "
        f"(its chunks span {ordered[0].t0:g}-{ordered[-1].t1:g} s)"
    )


def parse_video_at(spec: str) -> tuple[str, float]:
    """``VIDEO_ID@SECONDS`` → (video id, seconds). Raises ValueError."""
    video_id, sep, at = spec.rpartition("@")
    if not sep or not video_id:
        raise ValueError(f"expected VIDEO_ID@SECONDS, got {spec!r}")
    seconds = float(at)
    if not np.isfinite(seconds) or seconds < 0:
        raise ValueError(f"seconds must be a finite number >= 0, got {at!r}")
    return video_id, seconds


def image_latent(image: bytes) -> tuple[list[float], str]:
    """A still image's latent embedding and the codebook it is expressed in.

    The configured codec (``SIGHTLINE_CODEC_CODEBOOK_ID``, else the latest registered
    weights: what the local codec endpoint encodes chunks with) encodes the still repeated
    over one token step; the embedding is the Hellinger-normalised histogram of its token
    indices, as ``services.latent`` computes for a chunk. About 0.2 s for 768×576 on a CPU.
    """
    try:
        import cv2
    except ImportError as exc:  # pragma: no cover - the local extra installs it
        raise InvalidRequest("image queries are not available here (no image decoder)") from exc
    from sightline.services.latent import token_histogram

    frame = cv2.imdecode(np.frombuffer(image, dtype=np.uint8), cv2.IMREAD_COLOR)
    if frame is None or frame.ndim != 3 or min(frame.shape[:2]) < 16:
        raise InvalidRequest("the image could not be decoded (send a PNG or JPEG, 16 px or more)")
    h, w = frame.shape[:2]
    if h * w > MAX_IMAGE_PIXELS:
        scale = (MAX_IMAGE_PIXELS / (h * w)) ** 0.5
        frame = cv2.resize(
            frame, (max(16, int(w * scale)), max(16, int(h * scale))), interpolation=cv2.INTER_AREA
        )
    rgb = np.ascontiguousarray(frame[:, :, ::-1])
    codec = _codec()
    clip = np.repeat(rgb[None], codec.time_stride, axis=0)
    tokens = codec.encode(clip, fps=10.0).tokens
    return token_histogram(tokens, codec.cfg.codebook_size).tolist(), codec.codebook_id


@functools.lru_cache(maxsize=1)
def _codec() -> Any:
    """The codec, loaded once per process; InvalidRequest where it cannot run."""
    try:
        from sagemaker_models.codec.registry import load_codec
    except ImportError as exc:
        raise InvalidRequest(
            "image queries need the codec in this process (the embedded default); this "
            "deployment answers similarity by manifest_id or text"
        ) from exc
    codec = load_codec(os.environ.get("SIGHTLINE_CODEC_CODEBOOK_ID") or None, device="cpu")
    logger.info("codec %s loaded for image queries", codec.codebook_id)
    return codec


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
            if e.wall_t1 is not None:
                cur["end"] = max(cur.get("end") or e.wall_t1, e.wall_t1)
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
            # Wall-clock times, for cameras (ISO 8601 on the way out).
            "start": e.wall_t0,
            "end": e.wall_t1,
        }
        open_by_key[key] = cur
        out.append(cur)
    for item in out:
        item["start_s"] = round(item["start_s"], 2)
        item["end_s"] = round(item["end_s"], 2)
        item["confidence"] = round(item["confidence"], 3)
        for wall in ("start", "end"):
            if item[wall] is not None:
                item[wall] = item[wall].isoformat().replace("+00:00", "Z")
    return sorted(out, key=lambda i: (i["start_s"], i["type"]))
