"""Live: the EventBridge Scheduler group for per-camera schedules, the role those schedules
use to start ``live_clip``, and the Kinesis Video Streams read policy its clip step needs.

``live_clip`` itself is built later; its ARN comes from config
(``live.live_clip_state_machine_name``), so this stack deploys today and the schedules
created by the cameras API start that state machine once it exists.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Aws, CfnOutput, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from cdk.config import EnvironmentConfig
from cdk.constructs import nag
from cdk.naming import Names

KVS_READ = ["kinesisvideo:GetDataEndpoint", "kinesisvideo:GetClip", "kinesisvideo:ListFragments"]


class LiveStack(Stack):
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
        self.schedule_group = scheduler.CfnScheduleGroup(
            self, "ScheduleGroup", name=names.schedule_group
        )
        self.scheduler_role = iam.Role(
            self,
            "SchedulerRole",
            role_name=names.scheduler_role,
            description=f"{names.prefix}: camera schedules start live_clip",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                    "ArnLike": {"aws:SourceArn": names.schedules_arn},
                },
            ),
        )
        self.scheduler_role.add_to_policy(
            iam.PolicyStatement(
                actions=["states:StartExecution"], resources=[names.live_clip_state_machine_arn]
            )
        )
        # Attached by live_clip's clip step when it is built; streams by name prefix.
        self.kvs_read_policy = iam.ManagedPolicy(
            self,
            "KvsClipRead",
            managed_policy_name=f"{names.prefix}-kvs-clip-read",
            description=f"{names.prefix}: read clips of the camera streams",
            statements=[iam.PolicyStatement(actions=KVS_READ, resources=[names.kvs_streams_arn])],
        )
        nag.acknowledge_wildcards(
            self.kvs_read_policy,
            resources=[names.kvs_streams_arn],
            reason="camera streams are created at run time, one per camera; the grant covers "
            f"streams named '{cfg.live.kvs_stream_name_prefix}*' (live.kvs_stream_name_prefix) "
            "and only the three read calls a clip needs",
        )
        CfnOutput(self, "ScheduleGroupName", value=names.schedule_group)
        CfnOutput(self, "SchedulerRoleArn", value=self.scheduler_role.role_arn)
        CfnOutput(self, "KvsClipReadPolicyArn", value=self.kvs_read_policy.managed_policy_arn)
