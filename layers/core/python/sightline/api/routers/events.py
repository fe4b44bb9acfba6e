"""/v1/events: events across the caller's videos and cameras."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from sightline.api.context import api_context, principal_of
from sightline.api.schemas import EventList
from sightline.services.queries import merge_events

router = APIGatewayRouter()


@router.get("/events", summary="Events filtered by video, camera, type and time")
def list_events(
    video_id: Annotated[str | None, Query(max_length=64)] = None,
    camera_id: Annotated[str | None, Query(max_length=128)] = None,
    type: Annotated[str | None, Query(max_length=32)] = None,
    from_s: Annotated[float | None, Query(alias="from")] = None,
    to_s: Annotated[float | None, Query(alias="to")] = None,
) -> EventList:
    ctx = api_context()
    who = principal_of(router.current_event)
    videos = [video_id] if video_id else [v.video_id for v in ctx.repo.list_videos(who.tenant_id)]
    out = []
    for vid in videos:
        for e in merge_events(ctx.repo.list_events(who.tenant_id, vid)):
            if type and e["type"] != type:
                continue
            if camera_id and e.get("camera_id") != camera_id:
                continue
            if from_s is not None and e["end_s"] < from_s:
                continue
            if to_s is not None and e["start_s"] > to_s:
                continue
            out.append(e)
    return EventList(events=out)
