"""Storage: encryption, public access, TLS, versioning, lifecycle, PITR, TTL, key rotation."""

from __future__ import annotations

from aws_cdk.assertions import Match

from cdk import constants as c
from tests.infrastructure.conftest import Synth


def test_data_bucket_is_private_encrypted_versioned_and_logged(dev: Synth) -> None:
    t = dev.template(dev.stage.storage)
    t.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {
                        "BucketKeyEnabled": True,
                        "ServerSideEncryptionByDefault": {
                            "SSEAlgorithm": "aws:kms",
                            "KMSMasterKeyID": Match.any_value(),
                        },
                    }
                ]
            },
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "VersioningConfiguration": {"Status": "Enabled"},
            "LoggingConfiguration": {
                "DestinationBucketName": Match.any_value(),
                "LogFilePrefix": "data/",
            },
            # Source uploads reach the ingest trigger through EventBridge.
            "NotificationConfiguration": {"EventBridgeConfiguration": {"EventBridgeEnabled": True}},
            "LifecycleConfiguration": {
                "Rules": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Prefix": c.CODEC_TRANSFER_PREFIX,
                                "ExpirationInDays": 2,
                                "Status": "Enabled",
                            }
                        )
                    ]
                )
            },
        },
    )


def test_every_bucket_denies_plain_http(dev: Synth) -> None:
    t = dev.template(dev.stage.storage)
    policies = t.find_resources("AWS::S3::BucketPolicy")
    assert len(policies) == 2
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny"
            and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
            for s in statements
        )


def test_tables_have_string_keys_pitr_and_customer_managed_keys(dev: Synth) -> None:
    t = dev.template(dev.stage.storage)
    tables = t.find_resources("AWS::DynamoDB::Table")
    names = {r["Properties"]["TableName"] for r in tables.values()}
    assert names == {f"sightline-dev-{n}" for n in c.TABLES}
    for table in tables.values():
        props = table["Properties"]
        assert props["KeySchema"] == [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ]
        assert {a["AttributeType"] for a in props["AttributeDefinitions"]} == {"S"}
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        assert props["SSESpecification"]["SSEEnabled"] is True
        assert props["SSESpecification"]["SSEType"] == "KMS"
        assert "KMSMasterKeyId" in props["SSESpecification"]
    t.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "TableName": "sightline-dev-idempotency",
            "TimeToLiveSpecification": {"AttributeName": c.TTL_ATTRIBUTE, "Enabled": True},
        },
    )


def test_every_kms_key_rotates(dev: Synth) -> None:
    keys = [k for t in dev.templates() for k in t.find_resources("AWS::KMS::Key").values()]
    assert len(keys) >= 4
    assert all(k["Properties"]["EnableKeyRotation"] is True for k in keys)


def test_data_is_destroyed_in_dev_and_retained_in_prod(dev: Synth, prod: Synth) -> None:
    for synth, policy in ((dev, "Delete"), (prod, "Retain")):
        t = synth.template(synth.stage.storage)
        for kind in ("AWS::S3::Bucket", "AWS::DynamoDB::Table", "AWS::KMS::Key"):
            for resource in t.find_resources(kind).values():
                assert resource["DeletionPolicy"] == policy, (kind, policy)
    prod_tables = prod.template(prod.stage.storage).find_resources("AWS::DynamoDB::Table")
    assert all(r["Properties"]["DeletionProtectionEnabled"] for r in prod_tables.values())
