"""Search: the VECTORSEARCH collection and its policies, or a managed domain by config."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match

from tests.infrastructure.conftest import Synth


def test_serverless_collection_with_encryption_network_and_access_policies(dev: Synth) -> None:
    t = dev.template(dev.stage.search)
    t.has_resource_properties(
        "AWS::OpenSearchServerless::Collection",
        {"Type": "VECTORSEARCH", "Name": "sightline-dev", "StandbyReplicas": "DISABLED"},
    )
    t.has_resource_properties("AWS::OpenSearchServerless::SecurityPolicy", {"Type": "encryption"})
    t.has_resource_properties("AWS::OpenSearchServerless::SecurityPolicy", {"Type": "network"})
    encryption = t.find_resources(
        "AWS::OpenSearchServerless::SecurityPolicy", {"Properties": {"Type": "encryption"}}
    )
    policy = next(iter(encryption.values()))["Properties"]["Policy"]["Fn::Sub"][0]
    assert json.loads(policy)["AWSOwnedKey"] is False
    # The bootstrap role may create the index; the pipeline's roles may read/write documents.
    t.has_resource_properties("AWS::OpenSearchServerless::AccessPolicy", {"Type": "data"})
    pipeline = dev.template(dev.stage.pipeline)
    assert len(pipeline.find_resources("AWS::OpenSearchServerless::AccessPolicy")) == 2


def test_index_bootstrap_custom_resource(dev: Synth) -> None:
    t = dev.template(dev.stage.search)
    t.has_resource(
        "Custom::SightlineSearchIndex",
        {
            "Properties": Match.object_like(
                {
                    "IndexName": "chunks",
                    "Service": "aoss",
                    "TextDimensions": 512,
                    "LatentDimensions": 1024,
                    "Endpoint": {"Fn::GetAtt": [Match.any_value(), "CollectionEndpoint"]},
                }
            ),
            "DependsOn": Match.any_value(),
        },
    )
    t.has_resource_properties(
        "AWS::Lambda::Function",
        {"FunctionName": "sightline-dev-index-bootstrap", "Handler": "handler.lambda_handler"},
    )


def test_managed_domain_by_config(staging_domain: Synth) -> None:
    t = staging_domain.template(staging_domain.stage.search)
    assert t.find_resources("AWS::OpenSearchServerless::Collection") == {}
    t.has_resource_properties(
        "AWS::OpenSearchService::Domain",
        {
            "EncryptionAtRestOptions": Match.object_like({"Enabled": True}),
            "NodeToNodeEncryptionOptions": {"Enabled": True},
            "DomainEndpointOptions": Match.object_like({"EnforceHTTPS": True}),
        },
    )
    t.has_resource(
        "Custom::SightlineSearchIndex", {"Properties": Match.object_like({"Service": "es"})}
    )
