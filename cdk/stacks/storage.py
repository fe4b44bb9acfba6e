"""Storage: the data bucket, its access-log bucket, the DynamoDB tables and their KMS key."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cdk import constants as c
from cdk.config import EnvironmentConfig
from cdk.constructs import nag
from cdk.naming import Names


class StorageStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cfg: EnvironmentConfig,
        names: Names,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        removal = cfg.removal_policy

        self.data_key = kms.Key(
            self,
            "DataKey",
            alias=f"alias/{names.prefix}-data",
            description=f"{names.prefix}: media, tokens and tables",
            enable_key_rotation=True,
            removal_policy=removal,
        )

        # S3 server access logging cannot deliver to an SSE-KMS bucket: SSE-S3 here.
        self.access_log_bucket = s3.Bucket(
            self,
            "AccessLogs",
            bucket_name=names.access_log_bucket,
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=Duration.days(cfg.storage.access_log_expiry_days),
                )
            ],
            removal_policy=removal,
        )
        nag.acknowledge(
            self.access_log_bucket,
            "S1",
            "this is the access-log destination of the data bucket; logging it into itself "
            "(or a third bucket) would loop or only move the finding",
        )

        lifecycle = [
            s3.LifecycleRule(
                id=f"expire-{prefix.strip('/').replace('/', '-')}",
                prefix=prefix,
                expiration=Duration.days(cfg.storage.temporary_expiry_days),
                noncurrent_version_expiration=Duration.days(1),
            )
            for prefix in cfg.storage.temporary_prefixes
        ]
        lifecycle.append(
            s3.LifecycleRule(
                id="noncurrent-versions-and-uploads",
                noncurrent_version_expiration=Duration.days(
                    cfg.storage.noncurrent_version_expiry_days
                ),
                abort_incomplete_multipart_upload_after=Duration.days(7),
                expired_object_delete_marker=True,
            )
        )
        self.data_bucket = s3.Bucket(
            self,
            "Data",
            bucket_name=names.data_bucket,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.data_key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            versioned=True,
            server_access_logs_bucket=self.access_log_bucket,
            server_access_logs_prefix="data/",
            lifecycle_rules=lifecycle,
            # The web page PUTs uploads straight here with a presigned URL (the signature is
            # the authorization; CORS only lets the browser send it): PUT alone, no reads.
            cors=[
                s3.CorsRule(
                    allowed_methods=[s3.HttpMethods.PUT],
                    allowed_origins=[f"https://{d}" for d in cfg.web.domain_names] or ["*"],
                    allowed_headers=["content-type"],
                    max_age=3600,
                )
            ]
            if cfg.web.enabled
            else None,
            removal_policy=removal,
        )
        # "Object Created" events go to EventBridge (the ingest trigger). Set on the L1
        # resource: the L2 option deploys a notifications custom resource (a Lambda of its
        # own) where CloudFormation supports the setting natively.
        cfn_bucket = self.data_bucket.node.default_child
        assert isinstance(cfn_bucket, s3.CfnBucket)
        cfn_bucket.add_property_override(
            "NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled", True
        )

        self.tables: dict[str, dynamodb.Table] = {}
        for name in c.TABLES:
            self.tables[name] = dynamodb.Table(
                self,
                f"{name.title().replace('_', '')}Table",
                table_name=names.table(name),
                partition_key=dynamodb.Attribute(
                    name=c.PARTITION_KEY, type=dynamodb.AttributeType.STRING
                ),
                sort_key=dynamodb.Attribute(name=c.SORT_KEY, type=dynamodb.AttributeType.STRING),
                billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
                encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
                encryption_key=self.data_key,
                point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                    point_in_time_recovery_enabled=True
                ),
                time_to_live_attribute=c.TTL_ATTRIBUTE if name in c.TTL_TABLES else None,
                deletion_protection=cfg.storage.deletion_protection,
                removal_policy=removal,
            )
