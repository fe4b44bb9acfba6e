"""Models: the codec as a SageMaker asynchronous inference endpoint that scales to zero."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from constructs import Construct

from cdk import constants as c
from cdk.config import EnvironmentConfig
from cdk.constructs import nag
from cdk.constructs.async_endpoint import AsyncInferenceEndpoint
from cdk.constructs.model_artifact import CodecModelArtifact
from cdk.constructs.policies import KMS_ENCRYPT_DECRYPT, S3_READ
from cdk.naming import Names


class ModelsStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cfg: EnvironmentConfig,
        names: Names,
        data_key: kms.IKey,
        model_build_dir: Path,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        codec = cfg.codec
        self.topic_key = kms.Key(
            self,
            "NoticeKey",
            alias=f"alias/{names.prefix}-codec-notices",
            description=f"{names.prefix}: codec success/error notices",
            enable_key_rotation=True,
            removal_policy=cfg.removal_policy,
        )
        self.success_topic = sns.Topic(
            self,
            "CodecSuccess",
            topic_name=names.codec_success_topic,
            master_key=self.topic_key,
            enforce_ssl=True,
        )
        self.error_topic = sns.Topic(
            self,
            "CodecError",
            topic_name=names.codec_error_topic,
            master_key=self.topic_key,
            enforce_ssl=True,
        )

        self.artifact = CodecModelArtifact(self, "CodecArtifact", build_dir=model_build_dir)

        # The endpoint writes its own log group; created here to own its retention.
        endpoint_logs = logs.LogGroup(
            self,
            "EndpointLogs",
            log_group_name=f"/aws/sagemaker/Endpoints/{names.codec_endpoint}",
            retention=cfg.log_retention,
            removal_policy=cfg.removal_policy,
        )
        self.role = iam.Role(
            self,
            "CodecRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"{names.codec_endpoint}: the codec endpoint's execution role",
        )
        output_prefixes = (c.CODEC_OUTPUT_PREFIX, c.CODEC_FAILURE_PREFIX)
        output_arns = [names.data_objects_arn(f"{p}*") for p in output_prefixes]
        statements = [
            # The model archive (one object of the CDK asset bucket).
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[self.artifact.object_arn]),
            # Async inputs are the chunk objects, under each tenant's prefix.
            iam.PolicyStatement(actions=list(S3_READ), resources=[names.data_objects_arn()]),
            iam.PolicyStatement(actions=["s3:PutObject"], resources=output_arns),
            iam.PolicyStatement(actions=list(KMS_ENCRYPT_DECRYPT), resources=[data_key.key_arn]),
            iam.PolicyStatement(
                actions=["sns:Publish"],
                resources=[self.success_topic.topic_arn, self.error_topic.topic_arn],
            ),
            iam.PolicyStatement(
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[self.topic_key.key_arn],
            ),
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resources=[endpoint_logs.log_group_arn],
            ),
            # Pulling the Deep Learning Container image.
            iam.PolicyStatement(
                actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                resources=[
                    Stack.of(self).format_arn(
                        service="ecr",
                        account=codec.image_account,
                        resource="repository",
                        resource_name=codec.image_repository,
                    )
                ],
            ),
            iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]),
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
            ),
        ]
        for st in statements:
            self.role.add_to_policy(st)
        nag.acknowledge_wildcards(
            self.role,
            resources=["*"],
            reason="ecr:GetAuthorizationToken and cloudwatch:PutMetricData have no "
            "resource-level permissions (the latter is limited to SageMaker's namespaces)",
        )
        nag.acknowledge_wildcards(
            self.role,
            resources=[names.data_objects_arn(), *output_arns],
            reason="async inputs are chunk objects under per-tenant prefixes "
            "('<org>/<project>/videos/...'), so reads need the bucket's object ARN; writes are "
            "limited to the codec's output and failure prefixes",
        )

        self.endpoint = AsyncInferenceEndpoint(
            self,
            "Codec",
            endpoint_name=names.codec_endpoint,
            image_uri=names.codec_image_uri,
            model_data_url=self.artifact.model_data_url,
            role=self.role,
            instance_type=codec.instance_type,
            output_path=f"s3://{names.data_bucket}/{c.CODEC_OUTPUT_PREFIX}",
            failure_path=f"s3://{names.data_bucket}/{c.CODEC_FAILURE_PREFIX}",
            output_kms_key_arn=data_key.key_arn,
            success_topic=self.success_topic,
            error_topic=self.error_topic,
            max_concurrent_invocations_per_instance=codec.max_concurrent_invocations_per_instance,
            min_capacity=codec.min_capacity,
            max_capacity=codec.max_capacity,
            target_backlog_per_instance=codec.target_backlog_per_instance,
            scale_in_cooldown=Duration.seconds(codec.scale_in_cooldown_seconds),
            scale_out_cooldown=Duration.seconds(codec.scale_out_cooldown_seconds),
            network_isolation=codec.network_isolation,
            environment={"SIGHTLINE_CODEC_BACKGROUND": codec.background_layer},
        )
        self.endpoint.endpoint.node.add_dependency(endpoint_logs)
