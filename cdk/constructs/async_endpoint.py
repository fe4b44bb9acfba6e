"""A SageMaker asynchronous inference endpoint that scales to zero on its backlog.

Model -> EndpointConfig (AsyncInferenceConfig: S3 output/failure paths, SNS success/error
topics, per-instance concurrency) -> Endpoint, plus Application Auto Scaling:

* target tracking on ``ApproximateBacklogSizePerInstance`` (min capacity 0 scales in to
  zero instances when the queue is empty);
* step scaling on ``HasBacklogWithoutCapacity``: target tracking cannot leave zero (there is
  no per-instance backlog without an instance), so this alarm adds the first one.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from constructs import Construct

VARIANT = "AllTraffic"


class AsyncInferenceEndpoint(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        image_uri: str,
        model_data_url: str,
        role: iam.IRole,
        instance_type: str,
        output_path: str,
        failure_path: str,
        output_kms_key_arn: str,
        success_topic: sns.ITopic,
        error_topic: sns.ITopic,
        max_concurrent_invocations_per_instance: int,
        min_capacity: int,
        max_capacity: int,
        target_backlog_per_instance: float,
        scale_in_cooldown: Duration,
        scale_out_cooldown: Duration,
        network_isolation: bool,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.endpoint_name = endpoint_name
        self.model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=role.role_arn,
            enable_network_isolation=network_isolation,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image=image_uri,
                model_data_url=model_data_url,
                environment={
                    # The PyTorch serving toolkit loads code/inference.py of model.tar.gz.
                    "SAGEMAKER_PROGRAM": "inference.py",
                    "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
                    "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
                    **(environment or {}),
                },
            ),
        )
        # The role's policy must exist before SageMaker validates the model.
        self.model.node.add_dependency(role)
        self.config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=VARIANT,
                    model_name=self.model.attr_model_name,
                    # Created with one instance; the scaling policy takes it to zero when idle.
                    initial_instance_count=1,
                    initial_variant_weight=1.0,
                    instance_type=instance_type,
                )
            ],
            async_inference_config=sagemaker.CfnEndpointConfig.AsyncInferenceConfigProperty(
                output_config=sagemaker.CfnEndpointConfig.AsyncInferenceOutputConfigProperty(
                    s3_output_path=output_path,
                    s3_failure_path=failure_path,
                    kms_key_id=output_kms_key_arn,
                    notification_config=sagemaker.CfnEndpointConfig.AsyncInferenceNotificationConfigProperty(
                        success_topic=success_topic.topic_arn,
                        error_topic=error_topic.topic_arn,
                    ),
                ),
                client_config=sagemaker.CfnEndpointConfig.AsyncInferenceClientConfigProperty(
                    max_concurrent_invocations_per_instance=max_concurrent_invocations_per_instance
                ),
            ),
        )
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=endpoint_name,
            endpoint_config_name=self.config.attr_endpoint_config_name,
        )

        self.scalable_target = appscaling.ScalableTarget(
            self,
            "Capacity",
            service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
            resource_id=f"endpoint/{endpoint_name}/variant/{VARIANT}",
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            min_capacity=min_capacity,
            max_capacity=max_capacity,
            # Application Auto Scaling acts through its service-linked role for SageMaker
            # (created on first use); without this CDK would add an empty role of its own.
            role=iam.Role.from_role_name(
                self,
                "ServiceLinkedRole",
                "aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
                "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint",
                mutable=False,
            ),
        )
        cfn_target = self.scalable_target.node.default_child
        assert isinstance(cfn_target, appscaling.CfnScalableTarget)
        cfn_target.add_property_deletion_override("RoleARN")
        self.scalable_target.node.add_dependency(self.endpoint)
        self.backlog_per_instance = cloudwatch.Metric(
            namespace="AWS/SageMaker",
            metric_name="ApproximateBacklogSizePerInstance",
            dimensions_map={"EndpointName": endpoint_name},
            statistic="Average",
            period=Duration.minutes(1),
        )
        self.scalable_target.scale_to_track_metric(
            "BacklogPerInstance",
            target_value=target_backlog_per_instance,
            custom_metric=self.backlog_per_instance,
            scale_in_cooldown=scale_in_cooldown,
            scale_out_cooldown=scale_out_cooldown,
        )
        self.has_backlog_without_capacity = cloudwatch.Metric(
            namespace="AWS/SageMaker",
            metric_name="HasBacklogWithoutCapacity",
            dimensions_map={"EndpointName": endpoint_name},
            statistic="Average",
            period=Duration.minutes(1),
        )
        wake = appscaling.StepScalingAction(
            self,
            "WakeFromZero",
            scaling_target=self.scalable_target,
            adjustment_type=appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
            metric_aggregation_type=appscaling.MetricAggregationType.AVERAGE,
            cooldown=scale_out_cooldown,
        )
        wake.add_adjustment(adjustment=1, lower_bound=0)
        self.wake_alarm = cloudwatch.Alarm(
            self,
            "BacklogWithoutCapacity",
            alarm_description=f"{endpoint_name}: requests queued while scaled to zero",
            metric=self.has_backlog_without_capacity,
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.wake_alarm.add_alarm_action(cw_actions.ApplicationScalingAction(wake))
