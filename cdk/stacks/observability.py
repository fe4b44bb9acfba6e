"""Observability: one dashboard, and alarms on failed executions, dead-letter queue depth,
Lambda errors and (when the API exists) API 5xx and latency, sent to an SNS topic.

Metrics are addressed by the resources' configured names (naming.py), so this stack holds no
references into the others and can be torn down or rebuilt on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from constructs import Construct

from cdk.config import EnvironmentConfig
from cdk.naming import Names

FIVE_MINUTES = Duration.minutes(5)


class ObservabilityStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cfg: EnvironmentConfig,
        names: Names,
        function_names: Sequence[str],
        state_machine_names: Sequence[str],
        dead_letter_queue_names: Sequence[str],
        api_name: str | None,
        api_stage: str | None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        alarms = cfg.alarms
        if alarms.sns_topic_arn:
            self.topic = sns.Topic.from_topic_arn(self, "AlarmTopic", alarms.sns_topic_arn)
        else:
            key = kms.Key(
                self,
                "AlarmKey",
                alias=f"alias/{names.prefix}-alarms",
                description=f"{names.prefix}: alarm notifications",
                enable_key_rotation=True,
                removal_policy=cfg.removal_policy,
            )
            # CloudWatch publishes alarm notices to the encrypted topic.
            key.add_to_resource_policy(
                iam.PolicyStatement(
                    principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                    actions=["kms:GenerateDataKey", "kms:Decrypt"],
                    resources=["*"],  # in a key policy "*" means this key
                )
            )
            self.topic = sns.Topic(
                self,
                "AlarmTopic",
                topic_name=f"{names.prefix}-alarms",
                master_key=key,
                enforce_ssl=True,
            )
        for email in alarms.emails:
            self.topic.add_subscription(subs.EmailSubscription(email))
        action = cw_actions.SnsAction(self.topic)
        self.alarms: list[cw.Alarm] = []

        def alarm(alarm_id: str, metric: cw.IMetric, threshold: float, description: str) -> None:
            a = cw.Alarm(
                self,
                alarm_id,
                alarm_description=description,
                metric=metric,
                threshold=threshold,
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            )
            a.add_alarm_action(action)
            self.alarms.append(a)

        sfn_widgets: list[cw.IWidget] = []
        for sm in state_machine_names:
            arn = names.state_machine_arn(sm)

            def sfn_metric(metric_name: str, state_machine_arn: str = arn) -> cw.Metric:
                return cw.Metric(
                    namespace="AWS/States",
                    metric_name=metric_name,
                    dimensions_map={"StateMachineArn": state_machine_arn},
                    statistic="Sum",
                    period=FIVE_MINUTES,
                )

            alarm(f"{_id(sm)}Failed", sfn_metric("ExecutionsFailed"), 1, f"{sm}: failed executions")
            alarm(f"{_id(sm)}TimedOut", sfn_metric("ExecutionsTimedOut"), 1, f"{sm}: timed out")
            sfn_widgets.append(
                cw.GraphWidget(
                    title=f"{sm} executions",
                    left=[
                        sfn_metric("ExecutionsStarted"),
                        sfn_metric("ExecutionsSucceeded"),
                        sfn_metric("ExecutionsFailed"),
                    ],
                    width=12,
                )
            )

        error_metrics: list[cw.IMetric] = []
        duration_metrics: list[cw.IMetric] = []
        for fn in function_names:
            physical = names.function(fn)
            errors = cw.Metric(
                namespace="AWS/Lambda",
                metric_name="Errors",
                dimensions_map={"FunctionName": physical},
                statistic="Sum",
                period=FIVE_MINUTES,
                label=fn,
            )
            error_metrics.append(errors)
            duration_metrics.append(
                cw.Metric(
                    namespace="AWS/Lambda",
                    metric_name="Duration",
                    dimensions_map={"FunctionName": physical},
                    statistic="p90",
                    period=FIVE_MINUTES,
                    label=fn,
                )
            )
            alarm(
                f"{_id(fn)}Errors",
                errors,
                alarms.lambda_error_threshold,
                f"{physical}: Lambda errors",
            )

        dlq_metrics: list[cw.IMetric] = []
        for queue in dead_letter_queue_names:
            depth = cw.Metric(
                namespace="AWS/SQS",
                metric_name="ApproximateNumberOfMessagesVisible",
                dimensions_map={"QueueName": queue},
                statistic="Maximum",
                period=FIVE_MINUTES,
                label=queue,
            )
            dlq_metrics.append(depth)
            alarm(f"{_id(queue)}Depth", depth, alarms.dlq_depth_threshold, f"{queue}: messages")

        backlog = cw.Metric(
            namespace="AWS/SageMaker",
            metric_name="ApproximateBacklogSize",
            dimensions_map={"EndpointName": names.codec_endpoint},
            statistic="Average",
            period=Duration.minutes(1),
        )
        rows: list[list[cw.IWidget]] = [
            sfn_widgets,
            [
                cw.GraphWidget(title="Lambda errors", left=error_metrics, width=12),
                cw.GraphWidget(title="Lambda duration p90", left=duration_metrics, width=12),
            ],
            [
                cw.GraphWidget(title="Dead-letter queues", left=dlq_metrics, width=12),
                cw.GraphWidget(title="Codec async backlog", left=[backlog], width=12),
            ],
        ]

        if api_name and api_stage:
            dims = {"ApiName": api_name, "Stage": api_stage}
            server_errors = cw.Metric(
                namespace="AWS/ApiGateway",
                metric_name="5XXError",
                dimensions_map=dims,
                statistic="Sum",
                period=FIVE_MINUTES,
            )
            latency = cw.Metric(
                namespace="AWS/ApiGateway",
                metric_name="Latency",
                dimensions_map=dims,
                statistic="p99",
                period=FIVE_MINUTES,
            )
            alarm("Api5xx", server_errors, alarms.api_5xx_threshold, f"{api_name}: 5xx answers")
            alarm(
                "ApiLatency",
                latency,
                alarms.api_latency_p99_ms,
                f"{api_name}: p99 latency over {alarms.api_latency_p99_ms} ms",
            )
            rows.append(
                [
                    cw.GraphWidget(title="API 5xx", left=[server_errors], width=12),
                    cw.GraphWidget(title="API latency p99", left=[latency], width=12),
                ]
            )

        self.dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=names.prefix, widgets=rows)


def _id(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("_", "-").split("-"))
