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
from constructs import Construct

from cdk import constants as c
from cdk.config import EnvironmentConfig
from cdk.constructs import nag
from cdk.constructs.function import SightlineFunction
from cdk.constructs.layers import SightlineLayers
from cdk.constructs.policies import DataAccess, data_statements, statement
from cdk.constructs.queues import DeadLetterQueue
from cdk.constructs.search_access import grant_search_access
from cdk.constructs.state_machine import AslStateMachine
from cdk.naming import Names

PIPELINE_TABLES = c.PIPELINE_TABLES
# What each step does with the data (see sightline.services.pipeline). HEAD on a missing
# key needs s3:ListBucket to answer 404, so every step that checks existence may list.
STEP_ACCESS: dict[str, DataAccess] = {
    "probe": DataAccess(read=True, list=True, tables_write=PIPELINE_TABLES),
    "chunk": DataAccess(
        read=True, write=True, delete=True, list=True, tables_write=PIPELINE_TABLES
    ),
    "encode": DataAccess(
        read=True, write=True, delete=True, list=True, tables_write=PIPELINE_TABLES
    ),
    "describe": DataAccess(read=True, write=True, list=True, tables_read=PIPELINE_TABLES),
    "latent": DataAccess(read=True, write=True, list=True, tables_read=PIPELINE_TABLES),
    "events": DataAccess(read=True, list=True, tables_write=PIPELINE_TABLES),
    "index": DataAccess(read=True, list=True, tables_write=PIPELINE_TABLES),
    "finalize": DataAccess(tables_write=PIPELINE_TABLES),
    "fail": DataAccess(delete=True, list=True, tables_write=PIPELINE_TABLES),
    c.S3_TRIGGER_FUNCTION: DataAccess(tables_write=("videos",)),
}
PUBLISHES = ("events", "finalize", "fail")
USES_BEDROCK = ("describe", "events", "index")
SEARCH_LEVEL = {"index": "write", "fail": "write"}
DESCRIPTIONS = {
    "probe": "validates the uploaded source and reads its metadata",
    "chunk": "cuts the source into fixed-length H.264 chunks",
    "encode": "encodes a chunk through the codec's async endpoint",
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
        executions = names.executions_arn(names.process_chunk_state_machine)
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
            statements=[
                statement(["states:StartExecution"], [self.process_chunk.arn]),
                # startExecution.sync:2 polls and stops the executions it started ...
                statement(["states:DescribeExecution", "states:StopExecution"], [executions]),
                # ... and watches them through this managed EventBridge rule.
                statement(
                    ["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                    [names.sfn_sync_rule_arn],
                ),
            ],
        )
        nag.acknowledge_wildcards(
            self.ingest.role,
            resources=[executions],
            reason="execution ARNs of process_chunk are named at run time; the grant covers "
            "executions of that one state machine only",
        )

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
    ) -> SightlineFunction:
        cfg, names = self.cfg, self.names
        access = STEP_ACCESS[step]
        statements = data_statements(names, access, data_key_arn=data_key.key_arn)
        if step == "encode":
            statements.append(
                statement(["sagemaker:InvokeEndpointAsync"], [names.codec_endpoint_arn])
            )
        if step in PUBLISHES:
            statements.append(statement(["events:PutEvents"], [self.bus.event_bus_arn]))
        step_env = dict(env)
        if step in USES_BEDROCK and cfg.bedrock.model_ids:
            # Converse and InvokeModel are both authorized by bedrock:InvokeModel.
            statements.append(statement(["bedrock:InvokeModel"], names.bedrock_model_arns()))
            step_env[c.ENV_BEDROCK_MODEL_IDS] = ",".join(cfg.bedrock.model_ids)
        if step in ("probe", "chunk"):
            step_env[c.ENV_FFMPEG] = f"{c.LAYER_BIN}/ffmpeg"
            step_env[c.ENV_FFPROBE] = f"{c.LAYER_BIN}/ffprobe"
            step_env[c.ENV_CHUNK_SECONDS] = str(cfg.pipeline.chunk_seconds)
        if step == "encode":
            step_env[c.ENV_CODEC_TIMEOUT_SECONDS] = str(cfg.pipeline.codec_timeout_seconds)
        if step in SEARCH_LEVEL:
            step_env[c.ENV_SEARCH_ENDPOINT] = search_endpoint
            step_env[c.ENV_SEARCH_INDEX] = cfg.search.index_name
            step_env[c.ENV_SEARCH_SERVICE] = search_service
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
        return [self.trigger_dlq, self.rule_dlq]


def acknowledge_object_wildcard(role: iam.IRole, names: Names) -> None:
    nag.acknowledge_wildcards(
        role,
        resources=[names.data_objects_arn()],
        reason="object keys begin with the tenant ('<org>/<project>/videos/<id>/...'), so no "
        "fixed prefix narrows the data bucket's object ARN; actions are the exact calls of "
        "this step",
    )
