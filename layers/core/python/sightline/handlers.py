"""What every Lambda entry point shares: Powertools utilities and the pipeline built once
per cold start from configuration."""

from __future__ import annotations

from functools import cache

from aws_lambda_powertools import Logger, Tracer

from sightline import factory
from sightline.config import get_settings
from sightline.services.cameras import CameraRepository, CameraService, LiveService
from sightline.services.codec_client import JOBS_TABLE, CodecJobs
from sightline.services.pipeline import Pipeline
from sightline.services.repository import Repository

logger = Logger(service="sightline")
tracer = Tracer(service="sightline")


@cache
def pipeline() -> Pipeline:
    """The pipeline over the configured adapters (cached for warm invocations)."""
    return Pipeline(
        settings=get_settings(),
        blobs=factory.blobs(),
        repo=Repository(factory.tables()),
        codec=factory.codec(),
        describer=factory.describer(),
        embedder=factory.embedder(),
        index=factory.index(),
        bus=factory.bus(),
        limiter=factory.limiter(),
    )


def codec_jobs() -> CodecJobs:
    """The encode step's start and the codec callback's completion (services.codec_client)."""
    return CodecJobs(
        pipeline=pipeline(),
        jobs=factory.tables().table(JOBS_TABLE),
        tokens=factory.task_tokens(),
        limiter=factory.limiter(),
    )


@cache
def live() -> LiveService:
    """The steps of ``live_clip`` over the configured adapters."""
    return LiveService(
        settings=get_settings(),
        cameras=CameraRepository(factory.tables()),
        blobs=factory.blobs(),
        bus=factory.bus(),
        sources=factory.clip_source,
    )


@cache
def cameras() -> CameraService:
    return CameraService(
        settings=get_settings(),
        cameras=CameraRepository(factory.tables()),
        scheduler=factory.scheduler(),
    )
