"""No wildcard actions anywhere; "*" resources only for calls that have no resource level."""

from __future__ import annotations

from typing import Any

import pytest

from tests.infrastructure.conftest import Synth

# Actions AWS authorizes only on "*".
NO_RESOURCE_LEVEL = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
    "ecr:GetAuthorizationToken",
    "cloudwatch:PutMetricData",
}


def _identity_statements(synth: Synth) -> list[dict[str, Any]]:
    out = []
    for t in synth.templates():
        for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            for r in t.find_resources(kind).values():
                out.extend(r["Properties"]["PolicyDocument"]["Statement"])
        for role in t.find_resources("AWS::IAM::Role").values():
            for p in role["Properties"].get("Policies", []):
                out.extend(p["PolicyDocument"]["Statement"])
    return out


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_no_wildcard_actions(env: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(env)
    statements = _identity_statements(synth)
    assert statements
    wild = [a for s in statements for a in _as_list(s["Action"]) if "*" in a]
    assert wild == []


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_star_resources_only_where_aws_offers_nothing_narrower(
    env: str, request: pytest.FixtureRequest
) -> None:
    synth: Synth = request.getfixturevalue(env)
    for s in _identity_statements(synth):
        if "*" in _as_list(s.get("Resource", [])):
            assert set(_as_list(s["Action"])) <= NO_RESOURCE_LEVEL, s
