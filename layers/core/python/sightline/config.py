"""Typed configuration, read once from the environment (``SIGHTLINE_*``).

The provider behind each port is chosen here, never by editing code: the same
handlers run in Lambda (``aws``) and in the embedded default (``local``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

Backend = Literal["local", "aws"]


class Settings(BaseSettings):
    """Process-wide settings; validated at cold start."""

    model_config = SettingsConfigDict(env_prefix="SIGHTLINE_", extra="ignore")

    home: Annotated[Path, Field(description="Root of all local state")] = Path(".sightline")

    # Which adapter serves each port.
    blobs: Backend = "local"
    tables: Backend = "local"
    orchestrator: Backend = "local"
    codec: Backend = "local"
    describer: Literal["local", "bedrock"] = "local"
    embedder: Literal["local", "bedrock"] = "local"
    index: Literal["local", "opensearch"] = "local"
    bus: Backend = "local"
    scheduler: Backend = "local"

    # AWS resource names (set by the CDK as Lambda environment variables).
    region: str = "us-east-1"
    bucket: str = "sightline-data"
    table_prefix: str = "sightline-"
    ingest_state_machine_arn: str = ""
    process_chunk_state_machine_arn: str = ""
    codec_endpoint_name: str = "sightline-codec"
    # OpenSearch k-NN index (set by the CDK as SIGHTLINE_SEARCH_*).
    search_endpoint: str = ""
    search_service: Literal["aoss", "es"] = "aoss"
    search_index: str = "chunks"
    search_text_dimensions: Annotated[int, Field(ge=1, le=16000)] = 384
    search_latent_dimensions: Annotated[int, Field(ge=1, le=16000)] = 1024
    event_bus_name: str = "sightline"

    # Bedrock (model ids are list-priced in sightline.services.cost.Prices).
    bedrock_describe_model_id: str = "anthropic.claude-3-haiku-20240307-v1:0"
    bedrock_embed_model_id: str = "amazon.titan-embed-text-v2:0"
    bedrock_embed_dimensions: Literal[256, 512, 1024] = 512
    bedrock_frames_per_chunk: Annotated[int, Field(ge=1, le=20)] = 4
    bedrock_frame_max_side: Annotated[int, Field(ge=64, le=1568)] = 768
    describe_prompt_version: Annotated[str, Field(pattern=r"^v[0-9]+$")] = "v1"
    events_prompt_version: Annotated[str, Field(pattern=r"^v[0-9]+$")] = "v1"
    # Also run the local detector beside Bedrock and merge its events.
    bedrock_merge_detector: bool = False

    # Pipeline behaviour.
    default_tenant: str = "local/default"
    chunk_seconds: Annotated[float, Field(gt=1, le=120)] = 10.0
    chunk_overlap_seconds: Annotated[float, Field(ge=0, le=10)] = 0.0
    max_video_bytes: Annotated[int, Field(gt=0)] = 4 * 1024**3
    max_video_seconds: Annotated[float, Field(gt=0)] = 4 * 3600.0
    max_frame_pixels: Annotated[int, Field(gt=0)] = 3840 * 2160
    describe_sample_fps: Annotated[float, Field(gt=0, le=30)] = 2.0
    codec_timeout_seconds: Annotated[float, Field(gt=0)] = 900.0
    # SageMaker may hold a queued request this long (scale-from-zero start included) before
    # it reports the request as failed; the Encode state's TimeoutSeconds (3600) is the
    # backstop for a notice that never comes, so TTL + one invocation stays under it.
    codec_request_ttl_seconds: Annotated[int, Field(ge=60, le=21600)] = 2400
    codec_invocation_timeout_seconds: Annotated[int, Field(ge=1, le=3600)] = 900
    # Per-tenant concurrency (one tenant cannot starve the others): slots held at once per
    # step, leases that expire if a holder never releases (a lost codec notice, a killed
    # Lambda). 0 turns a limit off.
    tenant_encode_limit: Annotated[int, Field(ge=0, le=1000)] = 8
    tenant_describe_limit: Annotated[int, Field(ge=0, le=1000)] = 8
    tenant_encode_lease_seconds: Annotated[int, Field(ge=1)] = 3600
    tenant_describe_lease_seconds: Annotated[int, Field(ge=1)] = 900
    upload_mode: Literal["api", "presigned"] = "api"
    # Folders that POST /v1/videos {"source": PATH} may read (the API reads no other file).
    source_roots: list[Path] = []
    jwt_issuer: str = "sightline-local"
    jwt_audience: str = "sightline"
    jwks_url: str = ""
    max_json_bytes: Annotated[int, Field(gt=0)] = 256 * 1024
    # POST /v1/ingest/chunk bodies (API Gateway's own payload limit is 10 MB).
    max_chunk_bytes: Annotated[int, Field(gt=0)] = 10 * 1024 * 1024
    # Locally, webhooks may target http://127.0.0.1 (tests, a developer's receiver).
    webhook_allow_loopback: bool = False
    ffmpeg: str = "ffmpeg"
    ffprobe: str = "ffprobe"
    threads: Annotated[int, Field(ge=1, le=64)] = 2
    # Live cameras (live_clip).
    live_clip_state_machine_arn: str = ""
    live_scheduler_group: str = "sightline"
    live_scheduler_role_arn: str = ""
    live_min_clip_seconds: Annotated[float, Field(gt=0)] = 2.0
    live_max_clip_seconds: Annotated[float, Field(gt=0)] = 300.0
    live_settle_seconds: Annotated[
        float, Field(ge=0, le=120, description="wait after a window ends for late fragments")
    ] = 1.5
    live_max_windows: Annotated[
        int, Field(ge=1, le=500, description="windows one live_clip run takes (catch-up bound)")
    ] = 12
    live_retention_seconds: Annotated[
        float, Field(gt=0, description="older media is gone (KVS retention): recorded as a gap")
    ] = 24 * 3600.0
    live_lease_seconds: Annotated[float, Field(gt=0)] = 900.0
    live_max_clip_bytes: Annotated[int, Field(gt=0)] = 100 * 1024 * 1024
    live_max_clip_fragments: Annotated[int, Field(ge=1)] = 200

    @property
    def blob_root(self) -> Path:
        return self.home / "blobs"

    @property
    def db_path(self) -> Path:
        return self.home / "sightline.db"

    @property
    def key_dir(self) -> Path:
        return self.home / "keys"

    @property
    def index_dir(self) -> Path:
        return self.home / "index"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings (cached; call ``reset_settings`` after changing the environment)."""
    return Settings()


def reset_settings() -> None:
    """Forget cached settings and every adapter built from them (tests, CLI --home)."""
    get_settings.cache_clear()
    from sightline import factory, handlers  # local import: both depend on config

    factory.reset()
    for cached in (handlers.pipeline, handlers.live, handlers.cameras):
        cached.cache_clear()
