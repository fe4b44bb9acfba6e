"""What every Lambda entry point shares: Powertools utilities and the pipeline built once
per cold start from configuration."""

from __future__ import annotations

from functools import cache

from aws_lambda_powertools import Logger, Tracer

from sightline import factory
from sightline.config import get_settings
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
    )
