"""/v1/search: semantic search over the caller's chunks (always filtered by tenant)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from sightline import factory
from sightline.api.context import api_context, principal_of
from sightline.api.schemas import Hit, SearchRequest, SearchResponse
from sightline.errors import NotFound
from sightline.ports import SearchFilters

router = APIGatewayRouter()


@router.post("/search/similar", summary="Chunks similar to a text, an embedding or a chunk")
def search_similar(body: SearchRequest) -> SearchResponse:
    ctx = api_context()
    who = principal_of(router.current_event)
    f = body.filters
    filters = SearchFilters(
        video_ids=tuple(f.video_ids),
        camera_ids=tuple(f.camera_ids),
        event_types=tuple(f.event_types),
        t_from=f.t_from,
        t_to=f.t_to,
    )
    index = factory.index()
    depth = body.offset + body.k  # embedding and chunk queries: one ranking, then the page
    if body.text is not None:
        hits = ctx.search().search_text(
            who.tenant_id,
            body.text,
            k=body.k,
            filters=filters,
            offset=body.offset,
            hybrid=body.mode == "hybrid",
        )
    elif body.embedding is not None:
        hits = index.search(who.tenant_id, body.embedding, k=depth, filters=filters)
        hits = hits[body.offset :]
    else:
        assert body.manifest_id is not None
        doc = index.get(who.tenant_id, body.manifest_id)
        if doc is None:
            raise NotFound(f"chunk {body.manifest_id} not found")
        field = "latent_embedding" if doc.latent_embedding else "text_embedding"
        vector = doc.latent_embedding or doc.text_embedding
        hits = index.search(who.tenant_id, vector, k=depth, filters=filters, field=field)
        hits = hits[body.offset :]
    ctx.audit.record(
        who,
        "search",
        "index",
        {
            "k": body.k,
            "offset": body.offset,
            "by": "text" if body.text else "embedding" if body.embedding else "manifest",
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
            )
            for h in hits
        ]
    )
