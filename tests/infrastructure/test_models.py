"""Models: the codec's async endpoint, its artifact and scaling to zero."""

from __future__ import annotations

import tarfile

from aws_cdk.assertions import Match

from cdk import constants as c
from cdk.constructs.model_artifact import build_model_archive
from tests.infrastructure.conftest import Synth


def test_endpoint_config_is_asynchronous_with_s3_paths_and_topics(dev: Synth) -> None:
    t = dev.template(dev.stage.models)
    t.has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "AsyncInferenceConfig": {
                "ClientConfig": {"MaxConcurrentInvocationsPerInstance": Match.any_value()},
                "OutputConfig": {
                    "S3OutputPath": Match.any_value(),
                    "S3FailurePath": Match.any_value(),
                    "KmsKeyId": Match.any_value(),
                    "NotificationConfig": {
                        "SuccessTopic": {"Ref": Match.string_like_regexp("CodecSuccess")},
                        "ErrorTopic": {"Ref": Match.string_like_regexp("CodecError")},
                    },
                },
            }
        },
    )
    config = next(iter(t.find_resources("AWS::SageMaker::EndpointConfig").values()))
    output = config["Properties"]["AsyncInferenceConfig"]["OutputConfig"]
    assert c.CODEC_OUTPUT_PREFIX in str(output["S3OutputPath"])
    assert c.CODEC_FAILURE_PREFIX in str(output["S3FailurePath"])
    t.has_resource_properties("AWS::SageMaker::Endpoint", {"EndpointName": "sightline-dev-codec"})
    t.has_resource_properties(
        "AWS::SageMaker::Model",
        {
            "PrimaryContainer": {
                "Environment": Match.object_like(
                    {"SAGEMAKER_PROGRAM": "inference.py", "SIGHTLINE_CODEC_BACKGROUND": "off"}
                ),
                "ModelDataUrl": Match.any_value(),
                "Image": Match.any_value(),
            }
        },
    )


def test_codec_scales_to_zero_on_backlog_and_wakes_on_backlog_without_capacity(
    dev: Synth,
) -> None:
    t = dev.template(dev.stage.models)
    t.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget",
        {
            "MinCapacity": 0,
            "ResourceId": "endpoint/sightline-dev-codec/variant/AllTraffic",
            "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
            "ServiceNamespace": "sagemaker",
            "RoleARN": Match.absent(),
        },
    )
    t.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": Match.object_like(
                {
                    "CustomizedMetricSpecification": Match.object_like(
                        {"MetricName": "ApproximateBacklogSizePerInstance"}
                    )
                }
            ),
        },
    )
    t.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "PolicyType": "StepScaling",
            "StepScalingPolicyConfiguration": Match.object_like(
                {"StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]}
            ),
        },
    )
    t.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "HasBacklogWithoutCapacity",
            "AlarmActions": [{"Ref": Match.string_like_regexp("WakeFromZero")}],
        },
    )


def test_model_archive_is_reproducible_and_has_the_handler(tmp_path) -> None:
    first = build_model_archive(tmp_path / "a.tar.gz").read_bytes()
    second = build_model_archive(tmp_path / "b.tar.gz").read_bytes()
    assert first == second
    with tarfile.open(tmp_path / "a.tar.gz") as tar:
        members = set(tar.getnames())
    assert {
        "code/inference.py",
        "code/requirements.txt",
        "code/sagemaker_models/codec/inference.py",
        "code/sagemaker_models/codec/background.py",
        "code/sightline/tokenblob.py",
    } <= members
    weights = {p.name for p in c.CODEC_WEIGHTS_DIR.glob("*") if p.suffix in (".pt", ".json")}
    assert weights <= members
    # The endpoint installs the codec's own requirements (background layer included).
    with tarfile.open(tmp_path / "a.tar.gz") as tar:
        requirements = tar.extractfile("code/requirements.txt").read().decode()
    path = c.CODEC_PACKAGE_DIR / "codec" / "requirements.txt"
    assert requirements == path.read_text()
    assert "constriction==" in requirements and "scipy" in requirements
