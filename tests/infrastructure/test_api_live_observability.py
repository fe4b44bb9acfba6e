"""API (when functions/api exists), live scheduling and observability."""

from __future__ import annotations

from aws_cdk.assertions import Match

from cdk.config import ApiConfig
from tests.infrastructure.conftest import Synth


def test_api_is_included_only_when_enabled(dev: Synth, staging_domain: Synth) -> None:
    assert (dev.stage.api is not None) == ApiConfig().is_enabled()
    assert staging_domain.stage.api is None
    assert ApiConfig(enabled=False).is_enabled() is False


def test_rest_api_has_logs_throttling_usage_plan_and_authorizer(dev: Synth) -> None:
    if dev.stage.api is None:
        return
    t = dev.template(dev.stage.api)
    t.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "AccessLogSetting": {"DestinationArn": Match.any_value(), "Format": Match.any_value()},
            "TracingEnabled": True,
            "MethodSettings": Match.array_with(
                [Match.object_like({"ThrottlingRateLimit": 10, "ThrottlingBurstLimit": 20})]
            ),
        },
    )
    t.has_resource_properties(
        "AWS::ApiGateway::UsagePlan", {"Quota": {"Limit": 10000, "Period": "DAY"}}
    )
    t.resource_count_is("AWS::ApiGateway::ApiKey", 1)
    t.has_resource_properties(
        "AWS::ApiGateway::Authorizer", {"Type": "REQUEST", "IdentitySource": Match.absent()}
    )
    t.has_resource_properties(
        "AWS::ApiGateway::Method",
        {
            "HttpMethod": "ANY",
            "AuthorizationType": "CUSTOM",
            "Integration": Match.object_like({"Type": "AWS_PROXY"}),
        },
    )
    assert t.find_resources("AWS::WAFv2::WebACL") == {}


def test_prod_api_has_a_waf(prod: Synth) -> None:
    if prod.stage.api is None:
        return
    t = prod.template(prod.stage.api)
    t.has_resource_properties("AWS::WAFv2::WebACL", {"Scope": "REGIONAL"})
    t.resource_count_is("AWS::WAFv2::WebACLAssociation", 1)


def test_live_schedules_start_live_clip_and_kvs_reads_are_scoped(dev: Synth) -> None:
    t = dev.template(dev.stage.live)
    t.has_resource_properties("AWS::Scheduler::ScheduleGroup", {"Name": "sightline-cameras-dev"})
    roles = t.find_resources(
        "AWS::IAM::Role", {"Properties": {"RoleName": "sightline-dev-live-scheduler"}}
    )
    (role_id,) = roles
    (policy,) = [
        p
        for p in t.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
    ]
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Action"] == "states:StartExecution"
    (machine,) = t.find_resources(
        "AWS::StepFunctions::StateMachine",
        {"Properties": {"StateMachineName": "sightline-dev-live-clip"}},
    )
    assert statement["Resource"] == {"Ref": machine}
    managed = next(iter(t.find_resources("AWS::IAM::ManagedPolicy").values()))
    (kvs,) = managed["Properties"]["PolicyDocument"]["Statement"]
    assert sorted(kvs["Action"]) == [
        "kinesisvideo:GetClip",
        "kinesisvideo:GetDataEndpoint",
        "kinesisvideo:ListFragments",
    ]
    assert "stream/sightline-dev-*/*" in str(kvs["Resource"])


def _metric_name(alarm: dict) -> str:
    # A metric with a label renders as a one-entry "Metrics" list instead.
    if "MetricName" in alarm:
        return alarm["MetricName"]
    (query,) = alarm["Metrics"]
    return query["MetricStat"]["Metric"]["MetricName"]


def test_alarms_and_dashboard(dev: Synth) -> None:
    t = dev.template(dev.stage.observability)
    t.resource_count_is("AWS::CloudWatch::Dashboard", 1)
    alarms = t.find_resources("AWS::CloudWatch::Alarm")
    metrics = {_metric_name(a["Properties"]) for a in alarms.values()}
    assert {"ExecutionsFailed", "ApproximateNumberOfMessagesVisible", "Errors"} <= metrics
    if dev.stage.api is not None:
        assert {"5XXError", "Latency"} <= metrics
    assert all(a["Properties"]["AlarmActions"] for a in alarms.values())
    t.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
