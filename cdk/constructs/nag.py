"""cdk-nag acknowledgements, always per resource and with a reason.

cdk-nag 3 reads acknowledgements from ``Validations.of(construct)`` on the resource or
one of its parents and matches rule ids exactly; a granular finding of ``AwsSolutions-IAM5``
is ``AwsSolutions-IAM5[Resource::<flattened ARN>]``. ``wildcard_finding`` flattens an ARN
the way cdk-nag does, so the acknowledgement names exactly the wildcard it accepts and a new
wildcard anywhere else still fails the synth.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from aws_cdk import Acknowledgment, Stack, Validations
from constructs import IConstruct


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    """Accept one AwsSolutions rule (e.g. ``"SQS3"``) on ``construct`` and its children."""
    rule_id = rule if rule.startswith("AwsSolutions-") else f"AwsSolutions-{rule}"
    Validations.of(construct).acknowledge(Acknowledgment(id=rule_id, reason=reason))


def _flatten(node: Any) -> str:
    # Mirrors cdk-nag's flattenCfnReference (utils/flatten-cfn-reference.ts).
    if node is None:
        return ""
    if isinstance(node, str):
        return node.replace("${", "<").replace("}", ">")
    if isinstance(node, dict):
        if "Fn::Join" in node:
            delimiter, items = node["Fn::Join"]
            return delimiter.join(_flatten(i) for i in items)
        if "Fn::Sub" in node:
            return _flatten(node["Fn::Sub"])
        if "Fn::GetAtt" in node:
            resource, attribute = node["Fn::GetAtt"]
            return f"<{_flatten(resource)}.{_flatten(attribute)}>"
        if "Fn::ImportValue" in node:
            return _flatten(node["Fn::ImportValue"])
        if "Ref" in node:
            return f"<{_flatten(node['Ref'])}>"
    return json.dumps(node, separators=(",", ":"))


def wildcard_finding(scope: IConstruct, arn: str) -> str:
    """The cdk-nag IAM5 finding id of ``arn`` used as a policy resource in ``scope``."""
    return f"AwsSolutions-IAM5[Resource::{_flatten(Stack.of(scope).resolve(arn))}]"


def acknowledge_wildcards(
    construct: IConstruct,
    *,
    resources: Iterable[str] = (),
    actions: Iterable[str] = (),
    reason: str,
) -> None:
    """Accept exactly these wildcard resources / actions in ``construct``'s policies."""
    for arn in resources:
        Validations.of(construct).acknowledge(
            Acknowledgment(id=wildcard_finding(construct, arn), reason=reason)
        )
    for action in actions:
        Validations.of(construct).acknowledge(
            Acknowledgment(id=f"AwsSolutions-IAM5[Action::{action}]", reason=reason)
        )
