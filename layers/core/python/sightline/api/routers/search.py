"""/v1/search: semantic search over the caller's chunks (always filtered by tenant).

Text is embedded and matched against chunk descriptions; an embedding is matched as given;
a chunk (``manifest_id``) or a still image (``image_b64``) is matched by latent similarity
of codec tokens ("clips like this one").
"""

from __future__ import annotations

import base64
import binascii

from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from sightline import factory
from sightline.api.context import api_context, principal_of
from sightline.api.schemas import Hit, SearchFiltersIn, SearchRequest, SearchResponse
from sightline.errors import InvalidRequest
from sightline.ports import SearchFilters
from sightline.services.queries import SimilarityService

router = APIGatewayRouter()


def to_filters(f: SearchFiltersIn) -> SearchFilters:
    return SearchFilters(
        video_ids=tuple(f.video_ids),
        camera_ids=tuple(f.camera_ids),
        event_types=tuple(f.event_types),
        t_from=f.t_from,
        t_to=f.t_to,
        stream_ids=tuple(f.stream_ids),
        tags=tuple(f.tags),
        wall_from=f.wall_from,
        wall_to=f.wall_to,
    )


@router.post(
    "/search/similar", summary="Chunks similar to a text, an embedding, a chunk or an image"
)
def search_similar(body: SearchRequest) -> SearchResponse:
    ctx = api_context()
    who = principal_of(router.current_event)
    filters = to_filters(body.filters)
    similar = SimilarityService(factory.index())
    if body.text is not None:
        by = "text"
        hits = ctx.search().search_text(
            who.tenant_id,
            body.text,
            k=body.k,
            filters=filters,
            offset=body.offset,
            hybrid=body.mode == "hybrid",
        )
    elif body.embedding is not None:
        by = "embedding"
        hits = factory.index().search(
            who.tenant_id, body.embedding, k=body.offset + body.k, filters=filters
        )
        hits = hits[body.offset :]
    elif body.image_b64 is not None:
        by = "image"
        try:
            image = base64.b64decode(body.image_b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidRequest("image_b64 is not valid base64") from exc
        hits = similar.similar_to_image(
            who.tenant_id, image, k=body.k, filters=filters, offset=body.offset
        )
    else:
        assert body.manifest_id is not None
        by = "manifest"
        hits = similar.similar_to_chunk(
            who.tenant_id,
            body.manifest_id,
            k=body.k,
            filters=filters,
            offset=body.offset,
            include_self=body.include_self,
        )
    ctx.audit.record(
        who,
        "search",
        "index",
        {
            "k": body.k,
            "offset": body.offset,
            "by": by,
            **({"mode": body.mode} if body.text else {}),
        },
    )
    return SearchResponse(
        hits=[
            Hit(
                manifest_id=h.manifest_id,
                video_id=h.video_id,
                score=round(h.score, 4),
                t0=h.t0,
                t1=h.t1,
                start_s=h.t0,
                end_s=h.t1,
                description=h.description,
                roi_suggestion=h.roi_suggestion,
                camera_id=h.camera_id,
                wall_t0=h.wall_t0,
                wall_t1=h.wall_t1,
            )
            for h in hits
        ]
    )
