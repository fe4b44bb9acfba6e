"""One deployment environment: a Stage holding a stack per concern."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import Stage, Tags
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from cdk import constants as c
from cdk.config import EnvironmentConfig
from cdk.naming import Names
from cdk.stacks.api import ApiStack
from cdk.stacks.live import LiveStack
from cdk.stacks.models import ModelsStack
from cdk.stacks.observability import ObservabilityStack
from cdk.stacks.pipeline import PipelineStack
from cdk.stacks.search import SearchStack
from cdk.stacks.storage import StorageStack
from cdk.stacks.web import WebStack


class SightlineStage(Stage):
    def __init__(
        self, scope: Construct, construct_id: str, *, cfg: EnvironmentConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        names = Names(cfg)
        layer_dir = _repo_path(cfg.pipeline.layer_build_dir)
        model_dir = _repo_path(cfg.pipeline.model_build_dir)
        protect = cfg.retain_data
        common: dict[str, Any] = {"termination_protection": protect}

        self.storage = StorageStack(
            self,
            c.STORAGE_STACK,
            cfg=cfg,
            names=names,
            description=f"Sightline {cfg.name}: data bucket, tables, keys",
            **common,
        )
        runtime = lambda_.Runtime(cfg.pipeline.runtime, lambda_.RuntimeFamily.PYTHON)
        architecture = (
            lambda_.Architecture.ARM_64
            if cfg.pipeline.architecture == "arm64"
            else lambda_.Architecture.X86_64
        )
        self.search = SearchStack(
            self,
            c.SEARCH_STACK,
            cfg=cfg,
            names=names,
            runtime=runtime,
            architecture=architecture,
            layer_build_dir=layer_dir,
            description=f"Sightline {cfg.name}: k-NN search",
            **common,
        )
        self.models = ModelsStack(
            self,
            c.MODELS_STACK,
            cfg=cfg,
            names=names,
            data_key=self.storage.data_key,
            model_build_dir=model_dir,
            description=f"Sightline {cfg.name}: codec async endpoint",
            **common,
        )
        self.pipeline = PipelineStack(
            self,
            c.PIPELINE_STACK,
            cfg=cfg,
            names=names,
            data_key=self.storage.data_key,
            search_endpoint=self.search.endpoint,
            search_service=self.search.service,
            collection_arn=self.search.collection_arn,
            layer_build_dir=layer_dir,
            description=f"Sightline {cfg.name}: step functions, state machines, trigger",
            **common,
        )
        # The bucket name, endpoint name and bus are referenced by name: make the order explicit.
        self.pipeline.add_stack_dependency(self.models)
        self.pipeline.add_stack_dependency(self.storage)

        self.api: ApiStack | None = None
        if cfg.api.is_enabled():
            self.api = ApiStack(
                self,
                c.API_STACK,
                cfg=cfg,
                names=names,
                data_key=self.storage.data_key,
                search_endpoint=self.search.endpoint,
                search_service=self.search.service,
                collection_arn=self.search.collection_arn,
                layer_build_dir=layer_dir,
                description=f"Sightline {cfg.name}: REST API",
                **common,
            )
            self.api.add_stack_dependency(self.pipeline)

        self.live = LiveStack(
            self,
            c.LIVE_STACK,
            cfg=cfg,
            names=names,
            data_key=self.storage.data_key,
            layer_build_dir=layer_dir,
            description=f"Sightline {cfg.name}: live_clip, camera schedules and stream access",
            **common,
        )

        # The review page: only where there is an API for it to call.
        self.web: WebStack | None = None
        if cfg.web.enabled and self.api is not None:
            self.web = WebStack(
                self,
                c.WEB_STACK,
                cfg=cfg,
                names=names,
                api=self.api.api,
                description=f"Sightline {cfg.name}: web page (S3 + CloudFront)",
                **common,
            )
        # live_clip starts process_chunk and publishes to the bus by name.
        self.live.add_stack_dependency(self.pipeline)

        functions = [
            *c.PIPELINE_STEPS,
            c.CODEC_CALLBACK_FUNCTION,
            c.S3_TRIGGER_FUNCTION,
            c.INDEX_BOOTSTRAP_FUNCTION,
            *c.LIVE_STEPS,
        ]
        if self.api is not None:
            functions += [c.API_FUNCTION, c.AUTHORIZER_FUNCTION]
        self.observability = ObservabilityStack(
            self,
            c.OBSERVABILITY_STACK,
            cfg=cfg,
            names=names,
            function_names=functions,
            state_machine_names=[
                names.ingest_state_machine,
                names.process_chunk_state_machine,
                names.live_clip_state_machine,
            ],
            dead_letter_queue_names=[q.queue.queue_name for q in self.pipeline.dead_letter_queues],
            api_name=self.api.api.rest_api_name if self.api else None,
            api_stage=cfg.api.stage_name if self.api else None,
            description=f"Sightline {cfg.name}: dashboard and alarms",
            **common,
        )
        for stack in (self.pipeline, self.models, self.search, self.api, self.live):
            if stack is not None:
                self.observability.add_stack_dependency(stack)

        Tags.of(self).add("sightline:environment", cfg.name)
        for key, value in cfg.tags.items():
            Tags.of(self).add(key, value)


def _repo_path(path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else c.REPO_ROOT / p
