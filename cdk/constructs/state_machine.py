"""A Step Functions state machine whose definition is an ASL file of ``state_machines/``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from aws_cdk import RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from cdk.constructs import nag
from cdk.constructs.policies import statement
from cdk.naming import Names

LOGS_REASON = (
    "CloudWatch Logs vended-log delivery (logs:CreateLogDelivery, PutResourcePolicy, ...) and "
    "X-Ray segment calls support no resource-level permissions; CDK adds them for the "
    "ALL-level logging and tracing that the state machine must have"
)


def process_chunk_sync_statements(
    process_chunk_arn: str, names: Names
) -> list[iam.PolicyStatement]:
    """What a parent needs to run process_chunk with ``startExecution.sync:2``."""
    return [
        statement(["states:StartExecution"], [process_chunk_arn]),
        # startExecution.sync:2 polls and stops the executions it started ...
        statement(
            ["states:DescribeExecution", "states:StopExecution"],
            [names.executions_arn(names.process_chunk_state_machine)],
        ),
        # ... and watches them through this managed EventBridge rule.
        statement(
            ["events:PutTargets", "events:PutRule", "events:DescribeRule"],
            [names.sfn_sync_rule_arn],
        ),
    ]


def acknowledge_process_chunk_executions(role: iam.IRole, names: Names) -> None:
    """The one wildcard of ``process_chunk_sync_statements``, with its reason."""
    nag.acknowledge_wildcards(
        role,
        resources=[names.executions_arn(names.process_chunk_state_machine)],
        reason="execution ARNs of process_chunk are named at run time; the grant covers "
        "executions of that one state machine only",
    )


class AslStateMachine(Construct):
    """Standard workflow from ``asl_file`` with DefinitionSubstitutions, logs and tracing."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: Names,
        state_machine_name: str,
        asl_file: Path,
        substitutions: Mapping[str, str],
        invoke_function_arns: Sequence[str],
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
        statements: Sequence[iam.PolicyStatement] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=names.state_machine_log_group(state_machine_name),
            retention=log_retention,
            removal_policy=removal_policy,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
            description=f"{state_machine_name}: invoke its step functions",
        )
        if invoke_function_arns:
            self.role.add_to_policy(
                iam.PolicyStatement(
                    actions=["lambda:InvokeFunction"], resources=list(invoke_function_arns)
                )
            )
        for st in statements:
            self.role.add_to_policy(st)
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=state_machine_name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_file(str(asl_file)),
            definition_substitutions=dict(substitutions),
            role=self.role,
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True
            ),
        )
        nag.acknowledge_wildcards(self.role, resources=["*"], reason=LOGS_REASON)

    @property
    def arn(self) -> str:
        return self.state_machine.state_machine_arn
