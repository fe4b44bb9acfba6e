"""Request and response bodies of the public API (v1)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sightline.api.security import Role


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateVideo(Body):
    filename: Annotated[str | None, Field(min_length=1, max_length=255)] = None
    source: Annotated[
        str | None,
        Field(min_length=1, max_length=2048, description="s3:// URI on AWS, a path locally"),
    ] = None

    @model_validator(mode="after")
    def _one(self) -> CreateVideo:
        if (self.filename is None) == (self.source is None):
            raise ValueError("give either filename (to upload) or source")
        return self


class CreatedVideo(BaseModel):
    video_id: str
    status: str
    upload_url: str | None = None
    upload_method: Literal["PUT"] | None = None


class VideoView(BaseModel):
    video_id: str
    filename: str
    status: str
    failure_reason: str | None = None
    duration_s: float | None = None
    width: int | None = None
    height: int | None = None
    chunks_total: int
    chunks_done: int
    events_count: int
    created_at: str
    updated_at: str


class VideoList(BaseModel):
    videos: list[VideoView]


class EventView(BaseModel):
    type: str
    start_s: float
    end_s: float
    confidence: float
    description: str
    video_id: str | None = None
    camera_id: str | None = None
    start: str | None = Field(default=None, description="wall-clock start, ISO 8601 (cameras)")
    end: str | None = Field(default=None, description="wall-clock end, ISO 8601 (cameras)")
    bbox: tuple[float, float, float, float] | None = None
    event_ids: list[str]


class EventList(BaseModel):
    events: list[EventView]


class SearchFiltersIn(Body):
    video_ids: Annotated[list[str], Field(max_length=100)] = []
    camera_ids: Annotated[list[str], Field(max_length=100)] = []
    event_types: Annotated[list[str], Field(max_length=20)] = []
    t_from: Annotated[float | None, Field(description="seconds of the video")] = None
    t_to: float | None = None
    stream_ids: Annotated[list[str], Field(max_length=100)] = []
    tags: Annotated[list[str], Field(max_length=20)] = []
    wall_from: Annotated[
        datetime | None,
        Field(description="wall-clock range of camera chunks (ISO 8601; no offset = UTC)"),
    ] = None
    wall_to: datetime | None = None


class SearchRequest(Body):
    text: Annotated[str | None, Field(min_length=1, max_length=1000)] = None
    embedding: Annotated[list[float] | None, Field(min_length=2, max_length=4096)] = None
    manifest_id: Annotated[
        str | None,
        Field(min_length=1, max_length=128, description="chunks like this one (latent similarity)"),
    ] = None
    image_b64: Annotated[
        str | None,
        Field(
            min_length=8,
            max_length=262_144,
            description="chunks like this still image (base64 JPEG or PNG; the JSON body limit "
            "applies, so a JPEG), by latent similarity; answered where the codec runs in the "
            "API's process (the embedded default), 422 elsewhere",
        ),
    ] = None
    include_self: bool = Field(
        False, description="manifest_id queries: keep the query chunk itself among the hits"
    )
    filters: SearchFiltersIn = SearchFiltersIn()
    k: Annotated[int, Field(ge=1, le=200)] = 10
    offset: Annotated[int, Field(ge=0, le=1000, description="hits to skip (pagination)")] = 0
    mode: Literal["hybrid", "vector"] = Field(
        "vector",
        description="text queries: hybrid (BM25 on descriptions + embedding similarity, "
        "min-max normalised, scores in [0, 1]) or vector (embedding similarity alone)",
    )

    @model_validator(mode="after")
    def _one(self) -> SearchRequest:
        given = (self.text, self.embedding, self.manifest_id, self.image_b64)
        if sum(x is not None for x in given) != 1:
            raise ValueError("give exactly one of text, embedding, manifest_id or image_b64")
        return self


class Hit(BaseModel):
    manifest_id: str
    video_id: str
    score: float
    t0: float
    t1: float
    start_s: float
    end_s: float
    description: str
    roi_suggestion: tuple[float, float, float, float] | None = None
    preview_uri: str | None = None
    camera_id: str | None = None
    wall_t0: datetime | None = None
    wall_t1: datetime | None = None


class SearchResponse(BaseModel):
    hits: list[Hit]


class CreateKey(Body):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    role: Role = Role.VIEWER


class CreatedKey(BaseModel):
    key_id: str
    api_key: str = Field(description="shown once; only its hash is stored")
    role: Role


class KeyList(BaseModel):
    keys: list[dict[str, Any]]


class Problem(BaseModel):
    """RFC 9457 problem details: the one shape of every error body."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: list[dict[str, Any]] | None = None
