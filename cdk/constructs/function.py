"""One Lambda function of ``functions/<name>``: its own role, log group and X-Ray tracing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy, Size
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk import constants as c
from cdk.config import FunctionConfig
from cdk.constructs import nag
from cdk.constructs.layers import ASSET_EXCLUDES
from cdk.naming import Names

XRAY_REASON = (
    "X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions; "
    "CDK adds them for active tracing, which the conventions require"
)


class SightlineFunction(Construct):
    """A thin handler (``handler.lambda_handler``) whose code asset is its own folder."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: Names,
        name: str,
        description: str,
        runtime: lambda_.Runtime,
        architecture: lambda_.Architecture,
        layers: Sequence[lambda_.ILayerVersion],
        environment: Mapping[str, str],
        settings: FunctionConfig,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
        statements: Sequence[iam.PolicyStatement] = (),
        dead_letter_queue: sqs.IQueue | None = None,
        dead_letter_key_arn: str | None = None,
        code_dir: Path | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.name = name
        # Created here (not by Lambda on first write) so retention and removal are ours and
        # the role can be scoped to this one log group.
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=names.log_group(name),
            retention=log_retention,
            removal_policy=removal_policy,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{names.function(name)}: {description}",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        for st in statements:
            self.role.add_to_policy(st)
        if dead_letter_queue is not None:
            # Set on the L1 resource: the L2 option grants kms:GenerateDataKey* and
            # kms:ReEncrypt* (wildcard actions) for an encrypted queue.
            self.role.add_to_policy(
                iam.PolicyStatement(
                    actions=["sqs:SendMessage"], resources=[dead_letter_queue.queue_arn]
                )
            )
            if dead_letter_key_arn:
                self.role.add_to_policy(
                    iam.PolicyStatement(
                        actions=["kms:GenerateDataKey", "kms:Decrypt"],
                        resources=[dead_letter_key_arn],
                    )
                )
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=names.function(name),
            description=description,
            runtime=runtime,
            architecture=architecture,
            handler=c.LAMBDA_HANDLER,
            code=lambda_.Code.from_asset(
                str(code_dir or c.FUNCTIONS_DIR / name), exclude=ASSET_EXCLUDES
            ),
            layers=list(layers),
            memory_size=settings.memory_mb,
            timeout=Duration.seconds(settings.timeout_seconds),
            ephemeral_storage_size=Size.mebibytes(settings.ephemeral_storage_mb),
            environment=dict(environment),
            role=self.role,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE,
        )
        if dead_letter_queue is not None:
            cfn = self.function.node.default_child
            assert isinstance(cfn, lambda_.CfnFunction)
            cfn.dead_letter_config = lambda_.CfnFunction.DeadLetterConfigProperty(
                target_arn=dead_letter_queue.queue_arn
            )
        nag.acknowledge_wildcards(self.role, resources=["*"], reason=XRAY_REASON)
        if runtime.name != "python3.14":
            nag.acknowledge(
                self.function,
                "L1",
                f"{runtime.name} is pinned on purpose: the layers are built for this CPython "
                "(cdk/build_layers.py PYTHON_VERSION) and the SageMaker image runs the same; "
                "raise both together",
            )

    @property
    def function_arn(self) -> str:
        return self.function.function_arn
