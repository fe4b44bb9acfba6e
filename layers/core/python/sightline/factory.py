"""One cached factory per port: configuration picks the adapter, code never does."""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

from sightline.config import get_settings
from sightline.ports import BlobStore, CodecEndpoint, Describer, Embedder, EventBus, TableStore


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

        return SageMakerAsyncCodec(s.codec_endpoint_name, blobs())
    from sightline.adapters.local_codec import LocalAsyncCodec

    return LocalAsyncCodec(blobs(), bus())


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

        return StepFunctionsOrchestrator(s.ingest_state_machine_arn)
    # The embedded runtime is not part of the Lambda layers; it is only importable locally.
    return _load("sightline_local.runtime:LocalOrchestrator")()


def reset() -> None:
    for fn in (blobs, tables, bus, codec, describer, embedder, index, orchestrator):
        fn.cache_clear()
