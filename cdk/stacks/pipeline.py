"""Pipeline: one Lambda per step folder, the two ASL state machines, the S3 upload trigger,
the event bus and the dead-letter queues of everything invoked asynchronously."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import Aws, Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from cdk import constants as c
from cdk.config import EnvironmentConfig
from cdk.constructs import nag
from cdk.constructs.function import SightlineFunction
from cdk.constructs.layers import SightlineLayers
from cdk.constructs.policies import DataAccess, data_statements, statement
from cdk.constructs.queues import DeadLetterQueue
from cdk.constructs.search_access import grant_search_access
from cdk.constructs.state_machine import (
    AslStateMachine,
    acknowledge_process_chunk_executions,
    process_chunk_sync_statements,
)
from cdk.naming import Names

PIPELINE_TABLES = c.PIPELINE_TABLES
# What each step does with the data (see sightline.services.pipeline). HEAD on a missing
# key needs s3:ListBucket to answer 404, so every step that checks existence may list.
STEP_ACCESS: dict[str, DataAccess] = {
    "probe": DataAccess(read=True, list=True, tables_write=PIPELINE_TABLES),
    "chunk": DataAccess(
        read=True, write=True, delete=True, list=True, tables_write=PIPELINE_TABLES
    ),
    # encode checks for stored tokens, records the codec job and takes a tenant slot;
    # codec_callback stores what the codec returned and completes the task. A chunk step
    # that finishes after its video failed (a sibling's failure) reads the video's status
    # and removes what it wrote, so describe and latent may delete their own objects.
    "encode": DataAccess(
        read=True,
        list=True,
        tables_read=("manifests",),
        tables_write=("codec_jobs", "tenant_limits"),
    ),
    c.CODEC_CALLBACK_FUNCTION: DataAccess(
        read=True,
        write=True,
        delete=True,
        list=True,
        tables_read=("videos",),
        tables_write=("manifests", "codec_jobs", "tenant_limits"),
    ),
    "describe": DataAccess(
        read=True,
        write=True,
        delete=True,
        list=True,
        tables_read=PIPELINE_TABLES,
        tables_write=("usage", "tenant_limits"),
    ),
    "latent": DataAccess(
        read=True, write=True, delete=True, list=True, tables_read=PIPELINE_TABLES
    ),
    "events": DataAccess(read=True, list=True, tables_write=PIPELINE_TABLES),
    "index": DataAccess(read=True, list=True, tables_write=PIPELINE_TABLES),
    "finalize": DataAccess(tables_write=PIPELINE_TABLES),
    "fail": DataAccess(delete=True, list=True, tables_write=PIPELINE_TABLES),
    c.S3_TRIGGER_FUNCTION: DataAccess(tables_write=("videos",)),
}
PUBLISHES = ("events", "finalize", "fail")
# Which Bedrock model each step calls (the events step only reads the describe step's output).
DESCRIBE_MODEL_STEPS = ("describe",)
EMBED_MODEL_STEPS = ("index",)
# SendTaskSuccess / SendTaskFailure on process_chunk's Encode task.
COMPLETES_ENCODE = ("encode", c.CODEC_CALLBACK_FUNCTION)
SEARCH_LEVEL = {"index": "write", "fail": "write"}
DESCRIPTIONS = {
    "probe": "validates the uploaded source and reads its metadata",
    "chunk": "cuts the source into fixed-length H.264 chunks",
    "encode": "queues a chunk on the codec's async endpoint (task token)",
    c.CODEC_CALLBACK_FUNCTION: "stores a codec result and completes its Encode task",
    "describe": "describes a chunk in natural language",
    "latent": "pools a chunk's tokens into a latent embedding",
    "events": "derives structured events of a chunk",
    "index": "embeds and indexes a chunk document",
    "finalize": "records a processed video and announces it",
    "fail": "records why a video failed and removes partial results",
    c.S3_TRIGGER_FUNCTION: "starts ingest_video for an uploaded source object",
}


def runtime_environment(cfg: EnvironmentConfig, names: Names) -> dict[str, str]:
    """The SIGHTLINE_* settings every function shares (sightline.config.Settings)."""
    return {
        c.ENV_BLOBS: "aws",
        c.ENV_TABLES: "aws",
        c.ENV_ORCHESTRATOR: "aws",
        c.ENV_CODEC: "aws",
        c.ENV_BUS: "aws",
        c.ENV_HOME: c.LAMBDA_HOME,
        c.ENV_REGION: Aws.REGION,
        c.ENV_BUCKET: names.data_bucket,
        c.ENV_TABLE_PREFIX: cfg.tables_prefix,
        c.ENV_CODEC_ENDPOINT_NAME: names.codec_endpoint,
        c.ENV_EVENT_BUS_NAME: names.event_bus,
        # By name, not by reference: the state machine itself refers to these functions.
        c.ENV_INGEST_STATE_MACHINE_ARN: names.state_machine_arn(names.ingest_state_machine),
        c.ENV_POWERTOOLS_SERVICE_NAME: c.SERVICE,
        c.ENV_POWERTOOLS_LOG_LEVEL: cfg.pipeline.log_level,
        c.ENV_POWERTOOLS_METRICS_NAMESPACE: c.METRICS_NAMESPACE,
        **model_environment(cfg),
    }


def model_environment(cfg: EnvironmentConfig) -> dict[str, str]:
    """Bedrock for descriptions and embeddings (or the local models in the layers), the
    codec request TTL and the per-tenant limits. The index is set only where a function
    has the search layer and grant (``search_environment``)."""
    bedrock, pipeline = cfg.bedrock, cfg.pipeline
    return {
        c.ENV_DESCRIBER: bedrock.describer,
        c.ENV_EMBEDDER: bedrock.embedder,
        c.ENV_BEDROCK_DESCRIBE_MODEL_ID: bedrock.describe_model_id,
        c.ENV_BEDROCK_EMBED_MODEL_ID: bedrock.embed_model_id,
        c.ENV_BEDROCK_EMBED_DIMENSIONS: str(cfg.search.text_dimensions),
        c.ENV_CODEC_REQUEST_TTL_SECONDS: str(pipeline.codec_request_ttl_seconds),
        c.ENV_TENANT_ENCODE_LIMIT: str(pipeline.tenant_encode_limit),
        c.ENV_TENANT_DESCRIBE_LIMIT: str(pipeline.tenant_describe_limit),
    }


def search_environment(
    cfg: EnvironmentConfig, search_endpoint: str, search_service: str
) -> dict[str, str]:
    """The OpenSearch index, for functions that read or write it."""
    return {
        c.ENV_INDEX: "opensearch",
        c.ENV_SEARCH_ENDPOINT: search_endpoint,
        c.ENV_SEARCH_INDEX: cfg.search.index_name,
        c.ENV_SEARCH_SERVICE: search_service,
        c.ENV_SEARCH_TEXT_DIMENSIONS: str(cfg.search.text_dimensions),
        c.ENV_SEARCH_LATENT_DIMENSIONS: str(cfg.search.latent_dimensions),
    }


class PipelineStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cfg: EnvironmentConfig,
        names: Names,
        data_key: kms.IKey,
        search_endpoint: str,
        search_service: str,
        collection_arn: str | None,
        layer_build_dir: Path,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.cfg, self.names = cfg, names
        self.runtime = lambda_.Runtime(cfg.pipeline.runtime, lambda_.RuntimeFamily.PYTHON)
        self.architecture = (
            lambda_.Architecture.ARM_64
            if cfg.pipeline.architecture == "arm64"
            else lambda_.Architecture.X86_64
        )
        self.layers = SightlineLayers(
            self,
            "Layers",
            build_dir=layer_build_dir,
            runtime=self.runtime,
            architecture=self.architecture,
        )
        # Dead-letter queues; EventBridge must be able to use the key for the rule's DLQ.
        self.messaging_key = kms.Key(
            self,
            "MessagingKey",
            alias=f"alias/{names.prefix}-messaging",
            description=f"{names.prefix}: dead-letter queues",
            enable_key_rotation=True,
            removal_policy=cfg.removal_policy,
        )
        self.messaging_key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=["*"],  # in a key policy "*" means this key
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            )
        )
        self.bus = events.EventBus(self, "Bus", event_bus_name=names.event_bus)

        env = runtime_environment(cfg, names)
        self.functions: dict[str, SightlineFunction] = {}
        for step in c.PIPELINE_STEPS:
            self.functions[step] = self._step(
                step,
                env=env,
                data_key=data_key,
                search_endpoint=search_endpoint,
                search_service=search_service,
                collection_arn=collection_arn,
            )

        self.process_chunk = AslStateMachine(
            self,
            "ProcessChunk",
            names=names,
            state_machine_name=names.process_chunk_state_machine,
            asl_file=c.PROCESS_CHUNK_ASL,
            substitutions={
                c.function_substitution(s): self.functions[s].function_arn
                for s in c.PROCESS_CHUNK_STEPS
            },
            invoke_function_arns=[self.functions[s].function_arn for s in c.PROCESS_CHUNK_STEPS],
            log_retention=cfg.log_retention,
            removal_policy=cfg.removal_policy,
        )
        self.ingest = AslStateMachine(
            self,
            "IngestVideo",
            names=names,
            state_machine_name=names.ingest_state_machine,
            asl_file=c.INGEST_ASL,
            substitutions={
                **{
                    c.function_substitution(s): self.functions[s].function_arn
                    for s in c.INGEST_STEPS
                },
                c.PROCESS_CHUNK_SUBSTITUTION: self.process_chunk.arn,
            },
            invoke_function_arns=[self.functions[s].function_arn for s in c.INGEST_STEPS],
            log_retention=cfg.log_retention,
            removal_policy=cfg.removal_policy,
            statements=process_chunk_sync_statements(self.process_chunk.arn, names),
        )
        acknowledge_process_chunk_executions(self.ingest.role, names)

        self._codec_callback(env=env, data_key=data_key)
        self._upload_trigger(env=env, data_key=data_key)

    # ------------------------------------------------------------------------------------
    def _step(
        self,
        step: str,
        *,
        env: dict[str, str],
        data_key: kms.IKey,
        search_endpoint: str,
        search_service: str,
        collection_arn: str | None,
        dead_letter: dict[str, Any] | None = None,
    ) -> SightlineFunction:
        cfg, names = self.cfg, self.names
        access = STEP_ACCESS[step]
        statements = data_statements(names, access, data_key_arn=data_key.key_arn)
        if step == "encode":
            statements.append(
                statement(["sagemaker:InvokeEndpointAsync"], [names.codec_endpoint_arn])
            )
        if step in COMPLETES_ENCODE:
            # Task tokens of process_chunk's Encode state (a re-run completes at once).
            statements.append(
                statement(
                    ["states:SendTaskSuccess", "states:SendTaskFailure"],
                    [names.state_machine_arn(names.process_chunk_state_machine)],
                )
            )
        if step in PUBLISHES:
            statements.append(statement(["events:PutEvents"], [self.bus.event_bus_arn]))
        step_env = dict(env)
        # Converse and InvokeModel are both authorized by bedrock:InvokeModel; each step
        # may call only the model it uses.
        models = []
        if step in DESCRIBE_MODEL_STEPS and cfg.bedrock.describer == "bedrock":
            models.append(cfg.bedrock.describe_model_id)
        if step in EMBED_MODEL_STEPS and cfg.bedrock.embedder == "bedrock":
            models.append(cfg.bedrock.embed_model_id)
        if models:
            statements.append(statement(["bedrock:InvokeModel"], names.bedrock_model_arns(models)))
            step_env[c.ENV_BEDROCK_MODEL_IDS] = ",".join(models)
        if step in ("probe", "chunk"):
            step_env[c.ENV_FFMPEG] = f"{c.LAYER_BIN}/ffmpeg"
            step_env[c.ENV_FFPROBE] = f"{c.LAYER_BIN}/ffprobe"
            step_env[c.ENV_CHUNK_SECONDS] = str(cfg.pipeline.chunk_seconds)
        if step == "encode":
            step_env[c.ENV_CODEC_TIMEOUT_SECONDS] = str(cfg.pipeline.codec_timeout_seconds)
        if step in SEARCH_LEVEL:
            step_env.update(search_environment(cfg, search_endpoint, search_service))
        fn = SightlineFunction(
            self,
            step.title(),
            names=names,
            name=step,
            description=DESCRIPTIONS[step],
            runtime=self.runtime,
            architecture=self.architecture,
            layers=self.layers.for_function(step),
            environment=step_env,
            settings=cfg.pipeline.function(step),
            log_retention=cfg.log_retention,
            removal_policy=cfg.removal_policy,
            statements=statements,
            **(dead_letter or {}),
        )
        if access.touches_bucket:
            acknowledge_object_wildcard(fn.role, names)
        if step in SEARCH_LEVEL:
            grant_search_access(
                self,
                f"{step.title()}Search",
                cfg=cfg,
                names=names,
                role=fn.role,
                collection_arn=collection_arn,
                level=SEARCH_LEVEL[step],
            )
        return fn

    def _codec_callback(self, *, env: dict[str, str], data_key: kms.IKey) -> None:
        """The codec endpoint's success and error topics (ModelsStack) invoke
        ``functions/codec_callback``, which completes the waiting Encode task. SNS invokes
        Lambda asynchronously: two retries, then the dead-letter queue (the Encode state's
        own timeout ends the chunk with a reason if every attempt failed)."""
        cfg, names = self.cfg, self.names
        self.callback_dlq = DeadLetterQueue(
            self,
            "CodecCallbackDlq",
            key=self.messaging_key,
            purpose="the codec callback function (failed notice deliveries)",
            removal_policy=cfg.removal_policy,
            queue_name=names.dead_letter_queue("codec-callback-function"),
        )
        self.codec_callback = self._step(
            c.CODEC_CALLBACK_FUNCTION,
            env=env,
            data_key=data_key,
            search_endpoint="",
            search_service="",
            collection_arn=None,
            dead_letter={
                "dead_letter_queue": self.callback_dlq.queue,
                "dead_letter_key_arn": self.messaging_key.key_arn,
            },
        )
        self.codec_callback.function.configure_async_invoke(
            retry_attempts=2, max_event_age=Duration.hours(1)
        )
        # By ARN, not by reference: the models stack must not depend on this one.
        for topic_id, topic_name in (
            ("CodecSuccessTopic", names.codec_success_topic),
            ("CodecErrorTopic", names.codec_error_topic),
        ):
            topic = sns.Topic.from_topic_arn(self, topic_id, names.topic_arn(topic_name))
            topic.add_subscription(subscriptions.LambdaSubscription(self.codec_callback.function))

    def _upload_trigger(self, *, env: dict[str, str], data_key: kms.IKey) -> None:
        cfg, names = self.cfg, self.names
        self.trigger_dlq = DeadLetterQueue(
            self,
            "TriggerFunctionDlq",
            key=self.messaging_key,
            purpose="the S3 upload trigger function (failed asynchronous invocations)",
            removal_policy=cfg.removal_policy,
            queue_name=names.dead_letter_queue("s3-trigger-function"),
        )
        self.rule_dlq = DeadLetterQueue(
            self,
            "TriggerRuleDlq",
            key=self.messaging_key,
            purpose="the source-uploaded EventBridge rule (undeliverable events)",
            removal_policy=cfg.removal_policy,
            queue_name=names.dead_letter_queue("s3-trigger-rule"),
        )
        statements = data_statements(
            names, STEP_ACCESS[c.S3_TRIGGER_FUNCTION], data_key_arn=data_key.key_arn
        )
        statements.append(
            statement(
                ["states:StartExecution"],
                [names.state_machine_arn(names.ingest_state_machine)],
            )
        )
        self.trigger = SightlineFunction(
            self,
            "S3Trigger",
            names=names,
            name=c.S3_TRIGGER_FUNCTION,
            description=DESCRIPTIONS[c.S3_TRIGGER_FUNCTION],
            runtime=self.runtime,
            architecture=self.architecture,
            layers=self.layers.for_function(c.S3_TRIGGER_FUNCTION),
            environment=env,
            settings=cfg.pipeline.function(c.S3_TRIGGER_FUNCTION),
            log_retention=cfg.log_retention,
            removal_policy=cfg.removal_policy,
            statements=statements,
            dead_letter_queue=self.trigger_dlq.queue,
            dead_letter_key_arn=self.messaging_key.key_arn,
        )
        self.trigger.function.configure_async_invoke(
            retry_attempts=2, max_event_age=Duration.hours(6)
        )
        self.upload_rule = events.Rule(
            self,
            "SourceUploaded",
            description=f"{names.prefix}: a video source object was uploaded",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [names.data_bucket]},
                    "object": {"key": [{"wildcard": c.SOURCE_KEY_WILDCARD}]},
                },
            ),
        )
        self.upload_rule.add_target(
            targets.LambdaFunction(
                self.trigger.function,
                dead_letter_queue=self.rule_dlq.queue,
                retry_attempts=cfg.pipeline.s3_trigger_retry_attempts,
                max_event_age=Duration.hours(cfg.pipeline.s3_trigger_max_event_age_hours),
            )
        )

    @property
    def dead_letter_queues(self) -> list[DeadLetterQueue]:
        return [self.trigger_dlq, self.rule_dlq, self.callback_dlq]


def acknowledge_object_wildcard(role: iam.IRole, names: Names) -> None:
    nag.acknowledge_wildcards(
        role,
        resources=[names.data_objects_arn()],
        reason="object keys begin with the tenant ('<org>/<project>/videos/<id>/...'), so no "
        "fixed prefix narrows the data bucket's object ARN; actions are the exact calls of "
        "this step",
    )
