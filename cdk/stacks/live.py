"""Live: the ``live_clip`` state machine and its three steps, the EventBridge Scheduler group
for per-camera schedules, the role those schedules use to start ``live_clip``, and the Kinesis
Video Streams read policy of the steps that read a camera's stream.

``live_clip`` hands each stored window to ``process_chunk`` (Pipeline stack), addressed by name
like every cross-stack ARN in IAM statements (naming.py), so this stack holds no reference into
the pipeline and the pipeline none into it. The cameras API (Api stack) gets its schedule
grants and settings from ``camera_api_environment`` / ``grant_camera_schedules`` below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import Aws, CfnOutput, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from cdk import constants as c
from cdk.config import EnvironmentConfig
from cdk.constructs import nag
from cdk.constructs.function import SightlineFunction
from cdk.constructs.layers import SightlineLayers
from cdk.constructs.policies import DataAccess, data_statements, statement
from cdk.constructs.state_machine import (
    AslStateMachine,
    acknowledge_process_chunk_executions,
    process_chunk_sync_statements,
)
from cdk.naming import Names
from cdk.stacks.pipeline import runtime_environment

KVS_READ = ["kinesisvideo:GetDataEndpoint", "kinesisvideo:GetClip", "kinesisvideo:ListFragments"]
# What the cameras API does with a camera's schedule (sightline.adapters.aws_live
# EventBridgeScheduler: update, else create; delete; get).
SCHEDULE_ACTIONS = [
    "scheduler:CreateSchedule",
    "scheduler:UpdateSchedule",
    "scheduler:DeleteSchedule",
    "scheduler:GetSchedule",
]
# What each step does with the data (sightline.services.cameras.LiveService).
STEP_ACCESS: dict[str, DataAccess] = {
    # Takes the camera's lease (conditional update) and lists the windows due.
    "live_plan": DataAccess(tables_write=("cameras",)),
    # Stores the window's clip as the camera's chunk; HEAD first (a re-driven window is
    # stored once), which needs ListBucket to answer 404 for a missing key.
    "live_fetch": DataAccess(
        read=True,
        write=True,
        list=True,
        tables_read=("cameras",),
        objects=c.LIVE_CHUNK_KEY_WILDCARD,
    ),
    # Records the window and moves the camera's watermark past it.
    "live_commit": DataAccess(tables_write=("cameras", "camera_windows")),
}
READS_STREAM = ("live_plan", "live_fetch")
PUBLISHES = ("live_commit",)
DESCRIPTIONS = {
    "live_plan": "takes a camera's lease and lists the clip windows now due",
    "live_fetch": "stores one window of a camera's stream (KVS GetClip) as a chunk",
    "live_commit": "records a window and moves the camera's watermark past it",
}


class LiveStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cfg: EnvironmentConfig,
        names: Names,
        data_key: kms.IKey,
        layer_build_dir: Path,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.cfg, self.names = cfg, names
        self.schedule_group = scheduler.CfnScheduleGroup(
            self, "ScheduleGroup", name=names.schedule_group
        )
        # Attached to the steps that read a stream; streams by name prefix.
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

        runtime = lambda_.Runtime(cfg.pipeline.runtime, lambda_.RuntimeFamily.PYTHON)
        architecture = (
            lambda_.Architecture.ARM_64
            if cfg.pipeline.architecture == "arm64"
            else lambda_.Architecture.X86_64
        )
        layers = SightlineLayers(
            self, "Layers", build_dir=layer_build_dir, runtime=runtime, architecture=architecture
        )
        env = runtime_environment(cfg, names)
        self.functions: dict[str, SightlineFunction] = {}
        for step in c.LIVE_STEPS:
            self.functions[step] = self._step(
                step,
                env=env,
                data_key=data_key,
                runtime=runtime,
                architecture=architecture,
                layers=layers,
            )

        # process_chunk is in the Pipeline stack: addressed by name, no cross-stack export.
        process_chunk = names.state_machine_arn(names.process_chunk_state_machine)
        self.live_clip = AslStateMachine(
            self,
            "LiveClip",
            names=names,
            state_machine_name=names.live_clip_state_machine,
            asl_file=c.LIVE_CLIP_ASL,
            substitutions={
                **{
                    c.function_substitution(s): self.functions[s].function_arn for s in c.LIVE_STEPS
                },
                c.PROCESS_CHUNK_SUBSTITUTION: process_chunk,
            },
            invoke_function_arns=[self.functions[s].function_arn for s in c.LIVE_STEPS],
            log_retention=cfg.log_retention,
            removal_policy=cfg.removal_policy,
            statements=process_chunk_sync_statements(process_chunk, names),
        )
        acknowledge_process_chunk_executions(self.live_clip.role, names)

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
            statement(["states:StartExecution"], [self.live_clip.arn])
        )
        CfnOutput(self, "ScheduleGroupName", value=names.schedule_group)
        CfnOutput(self, "SchedulerRoleArn", value=self.scheduler_role.role_arn)
        CfnOutput(self, "KvsClipReadPolicyArn", value=self.kvs_read_policy.managed_policy_arn)
        CfnOutput(self, "LiveClipStateMachineArn", value=self.live_clip.arn)

    def _step(
        self,
        step: str,
        *,
        env: dict[str, str],
        data_key: kms.IKey,
        runtime: lambda_.Runtime,
        architecture: lambda_.Architecture,
        layers: SightlineLayers,
    ) -> SightlineFunction:
        cfg, names = self.cfg, self.names
        access = STEP_ACCESS[step]
        statements = data_statements(names, access, data_key_arn=data_key.key_arn)
        if step in PUBLISHES:
            # The bus is the Pipeline stack's; by name (naming.py).
            statements.append(statement(["events:PutEvents"], [names.event_bus_arn]))
        step_env = dict(env)
        if c.LAYER_MEDIA in c.FUNCTION_LAYERS[step]:
            step_env[c.ENV_FFMPEG] = f"{c.LAYER_BIN}/ffmpeg"
            step_env[c.ENV_FFPROBE] = f"{c.LAYER_BIN}/ffprobe"
        fn = SightlineFunction(
            self,
            "".join(part.title() for part in step.split("_")),
            names=names,
            name=step,
            description=DESCRIPTIONS[step],
            runtime=runtime,
            architecture=architecture,
            layers=layers.for_function(step),
            environment=step_env,
            settings=cfg.pipeline.function(step),
            log_retention=cfg.log_retention,
            removal_policy=cfg.removal_policy,
            statements=statements,
        )
        if step in READS_STREAM:
            fn.role.add_managed_policy(self.kvs_read_policy)
        if access.touches_bucket:
            nag.acknowledge_wildcards(
                fn.role,
                resources=[names.data_objects_arn(access.objects)],
                reason="a camera's clips are stored under its tenant ('<org>/<project>/videos/"
                "cam_<id>/derived/chunks/'), so the grant covers camera chunk keys of every "
                "tenant and only the calls that store one clip",
            )
        return fn


def camera_api_environment(names: Names) -> dict[str, str]:
    """The settings with which the cameras API manages schedules that start live_clip."""
    return {
        c.ENV_SCHEDULER: "aws",
        c.ENV_LIVE_CLIP_STATE_MACHINE_ARN: names.live_clip_state_machine_arn,
        c.ENV_LIVE_SCHEDULER_GROUP: names.schedule_group,
        c.ENV_LIVE_SCHEDULER_ROLE_ARN: names.scheduler_role_arn,
    }


def grant_camera_schedules(role: iam.IRole, names: Names) -> None:
    """Let ``role`` manage the schedules of the camera group, each running as the scheduler
    role (and pass no other role, nor that one to any other service)."""
    role.add_to_principal_policy(statement(SCHEDULE_ACTIONS, [names.schedules_arn]))
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["iam:PassRole"],
            resources=[names.scheduler_role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}},
        )
    )
    nag.acknowledge_wildcards(
        role,
        resources=[names.schedules_arn],
        reason="schedules are created at run time, one per camera; the grant covers schedules "
        "of this stage's camera schedule group only",
    )
