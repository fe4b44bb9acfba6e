"""Grant a role access to the k-NN index, for either search backend.

Serverless: an IAM ``aoss:APIAccessAll`` on the collection plus a data-access policy that
names the role (created in the caller's stack, so the collection's stack never depends on the
roles of the stacks that use it). Managed domain: signed HTTP calls on the domain's paths.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_opensearchserverless as aoss
from constructs import Construct

from cdk.config import EnvironmentConfig
from cdk.constructs import nag
from cdk.naming import Names

READ_PERMISSIONS = ["aoss:DescribeIndex", "aoss:ReadDocument"]
WRITE_PERMISSIONS = [*READ_PERMISSIONS, "aoss:WriteDocument", "aoss:UpdateIndex"]
ADMIN_PERMISSIONS = [*WRITE_PERMISSIONS, "aoss:CreateIndex"]
DOMAIN_READ = ["es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost"]
DOMAIN_WRITE = [*DOMAIN_READ, "es:ESHttpPut", "es:ESHttpDelete"]


def grant_search_access(
    scope: Construct,
    construct_id: str,
    *,
    cfg: EnvironmentConfig,
    names: Names,
    role: iam.IRole,
    collection_arn: str | None,
    level: str,
) -> None:
    """``level``: ``read`` (queries), ``write`` (documents) or ``admin`` (create the index)."""
    if cfg.search.kind == "serverless":
        if collection_arn is None:
            raise ValueError("a serverless search grant needs the collection ARN")
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["aoss:APIAccessAll"], resources=[collection_arn])
        )
        permissions = {
            "read": READ_PERMISSIONS,
            "write": WRITE_PERMISSIONS,
            "admin": ADMIN_PERMISSIONS,
        }[level]
        policy = [
            {
                "Rules": [
                    {
                        "ResourceType": "index",
                        "Resource": [f"index/{names.collection}/{cfg.search.index_name}"],
                        "Permission": permissions,
                    },
                    {
                        "ResourceType": "collection",
                        "Resource": [f"collection/{names.collection}"],
                        "Permission": ["aoss:DescribeCollectionItems"],
                    },
                ],
                "Principal": [role.role_arn],
            }
        ]
        aoss.CfnAccessPolicy(
            scope,
            construct_id,
            # 3-32 lowercase characters, unique per account and region.
            name=f"{names.collection[:20]}-{construct_id.lower()[:11]}",
            type="data",
            description=f"{names.prefix}: {level} access for one role",
            policy=_json(scope, policy),
        )
        return
    index_paths = names.search_domain_arn + f"/{cfg.search.index_name}*"
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=DOMAIN_WRITE if level in ("write", "admin") else DOMAIN_READ,
            resources=[names.search_domain_arn, index_paths],
        )
    )
    nag.acknowledge_wildcards(
        role,
        resources=[index_paths],
        reason="domain permissions name HTTP paths: the index and its _doc/_search sub-paths "
        "sit under '<index>*' of this one domain",
    )


def _json(scope: Construct, document: object) -> str:
    # Role ARNs are tokens: let the stack render them inside the JSON string.
    return Stack.of(scope).to_json_string(document)
