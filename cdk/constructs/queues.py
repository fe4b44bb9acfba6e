"""KMS-encrypted, TLS-only SQS dead-letter queues."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk.constructs import nag


class DeadLetterQueue(Construct):
    """Where failed asynchronous deliveries of ``purpose`` wait (14 days) for a look."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key: kms.IKey,
        purpose: str,
        removal_policy: RemovalPolicy,
        queue_name: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.queue = sqs.Queue(
            self,
            "Queue",
            queue_name=queue_name,
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
            removal_policy=removal_policy,
        )
        nag.acknowledge(
            self.queue,
            "SQS3",
            f"this queue is itself the dead-letter queue of {purpose}; a dead-letter queue of "
            "a dead-letter queue adds nothing, and its depth is alarmed on",
        )
