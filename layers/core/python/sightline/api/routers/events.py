"""/v1/events: events across the caller's videos and cameras."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from sightline import handlers
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
    if video_id:
        streams = [video_id]
    elif camera_id:
        # A camera's events are stored under its id (404 for another tenant's camera).
        streams = [handlers.cameras().cameras.get(who.tenant_id, camera_id).camera_id]
    else:
        streams = [v.video_id for v in ctx.repo.list_videos(who.tenant_id)] + [
            c.camera_id for c in handlers.cameras().cameras.list(who.tenant_id)
        ]
    out = []
    for vid in streams:
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
