"""One cached factory per port: configuration picks the adapter, code never does."""

from __future__ import annotations

import importlib
from functools import cache
from pathlib import Path
from typing import Any

from sightline.config import get_settings
from sightline.models import Camera
from sightline.ports import (
    BlobStore,
    ClipSource,
    CodecEndpoint,
    Describer,
    Embedder,
    EventBus,
    Scheduler,
    TableStore,
    TaskTokens,
    TenantLimiter,
)


def _load(path: str) -> Any:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


@cache
def blobs() -> BlobStore:
    s = get_settings()
    if s.blobs == "aws":
        from sightline.adapters.aws import S3BlobStore

        return S3BlobStore(s.bucket)
    from sightline.adapters.local_blobs import LocalBlobStore

    return LocalBlobStore(s.blob_root)


@cache
def tables() -> TableStore:
    s = get_settings()
    if s.tables == "aws":
        from sightline.adapters.aws import DynamoTableStore

        return DynamoTableStore(s.table_prefix)
    from sightline.adapters.local_tables import SqliteTableStore

    return SqliteTableStore(s.db_path)


@cache
def bus() -> EventBus:
    s = get_settings()
    if s.bus == "aws":
        from sightline.adapters.aws import EventBridgeBus

        return EventBridgeBus(s.event_bus_name)
    from sightline.adapters.local_bus import LocalEventBus

    return LocalEventBus(tables())


@cache
def codec() -> CodecEndpoint:
    s = get_settings()
    if s.codec == "aws":
        from sightline.adapters.aws import SageMakerAsyncCodec

        return SageMakerAsyncCodec(
            s.codec_endpoint_name,
            blobs(),
            request_ttl_s=s.codec_request_ttl_seconds,
            invocation_timeout_s=s.codec_invocation_timeout_seconds,
        )
    from sightline.adapters.local_codec import LocalAsyncCodec

    return LocalAsyncCodec(blobs(), bus())


@cache
def task_tokens() -> TaskTokens:
    """SendTaskSuccess/Failure on the Step Functions that runs the pipeline."""
    if get_settings().orchestrator == "aws":
        from sightline.adapters.aws import StepFunctionsTaskTokens

        return StepFunctionsTaskTokens()
    # The embedded engine's own Step Functions API (moto's interpreter).
    return _load("sightline_local.runtime:local_task_tokens")()


@cache
def limiter() -> TenantLimiter:
    """Per-tenant concurrency slots (DynamoDB table ``<prefix>tenant_limits`` on AWS)."""
    s = get_settings()
    if s.tables == "aws":
        from sightline.adapters.aws import DynamoTenantLimiter

        return DynamoTenantLimiter(f"{s.table_prefix}tenant_limits")
    from sightline.adapters.local_limits import SqliteTenantLimiter

    return SqliteTenantLimiter(s.db_path)


@cache
def describer() -> Describer:
    s = get_settings()
    from sightline.providers.local_describer import DetectorDescriber

    if s.describer == "bedrock":
        from sightline.providers.bedrock import BedrockDescriber
        from sightline.services.usage import USAGE_TABLE, UsageRecorder

        return BedrockDescriber(
            s.bedrock_describe_model_id,
            region=s.region,
            frames_per_chunk=s.bedrock_frames_per_chunk,
            frame_max_side=s.bedrock_frame_max_side,
            describe_prompt=s.describe_prompt_version,
            events_prompt=s.events_prompt_version,
            usage=UsageRecorder(tables().table(USAGE_TABLE)),
            detector=(
                DetectorDescriber(sample_fps=s.describe_sample_fps)
                if s.bedrock_merge_detector
                else None
            ),
        )
    return DetectorDescriber(sample_fps=s.describe_sample_fps)


@cache
def embedder() -> Embedder:
    s = get_settings()
    if s.embedder == "bedrock":
        from sightline.providers.bedrock import TitanEmbedder

        return TitanEmbedder(s.bedrock_embed_model_id, s.bedrock_embed_dimensions, region=s.region)
    from sightline.providers.local_embedder import MiniLMEmbedder

    return MiniLMEmbedder()


@cache
def index() -> Any:
    s = get_settings()
    if s.index == "opensearch":
        from sightline.adapters.opensearch_index import OpenSearchVectorIndex

        return OpenSearchVectorIndex.from_endpoint(
            s.search_endpoint,
            s.search_index,
            service=s.search_service,
            region=s.region,
            text_dimensions=s.search_text_dimensions,
            latent_dimensions=s.search_latent_dimensions,
        )
    from sightline.adapters.local_index import LocalVectorIndex

    return LocalVectorIndex(s.index_dir)


@cache
def orchestrator() -> Any:
    s = get_settings()
    if s.orchestrator == "aws":
        from sightline.adapters.aws import StepFunctionsOrchestrator

        return StepFunctionsOrchestrator(
            s.ingest_state_machine_arn, live_clip_arn=s.live_clip_state_machine_arn
        )
    # The embedded runtime is not part of the Lambda layers; it is only importable locally.
    return _load("sightline_local.runtime:LocalOrchestrator")()


@cache
def scheduler() -> Scheduler:
    s = get_settings()
    if s.scheduler == "aws":
        from sightline.adapters.aws_live import EventBridgeScheduler

        return EventBridgeScheduler(
            s.live_scheduler_group, s.live_clip_state_machine_arn, s.live_scheduler_role_arn
        )
    from sightline.adapters.local_live import LocalScheduler

    return LocalScheduler(tables())


def clip_source(camera: Camera) -> ClipSource:
    """The camera's media: KVS for a stream ARN; locally a looping file or a recorded URL."""
    s = get_settings()
    if camera.kvs_stream_arn:
        from sightline.adapters.aws_live import KvsClipSource

        return KvsClipSource(camera.kvs_stream_arn, ffmpeg=s.ffmpeg, ffprobe=s.ffprobe)
    from sightline.adapters import local_live

    url = camera.source_url or ""
    if local_live.is_stream_url(url):
        return local_live.RecordedSource(live_folder(camera), ffmpeg=s.ffmpeg, threads=s.threads)
    return local_live.LoopingFileSource(
        local_live.file_source_path(url),
        camera.origin,
        ffmpeg=s.ffmpeg,
        ffprobe=s.ffprobe,
        threads=s.threads,
    )


def live_folder(camera: Camera) -> Path:
    """Where the local recorder keeps a stream camera's fragments."""
    tenant = camera.tenant_id.replace("/", "__")
    return get_settings().home / "live" / tenant / camera.camera_id


def reset() -> None:
    for fn in (blobs, tables, bus, codec, describer, embedder, index, orchestrator, scheduler):
        # A test may have replaced a factory with a plain function: nothing cached there.
        clear = getattr(fn, "cache_clear", None)
        if clear is not None:
            clear()
    for fn in (task_tokens, limiter):
        fn.cache_clear()
