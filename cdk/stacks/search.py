"""Search: the k-NN index store and the custom resource that creates the index in it.

Default: an OpenSearch Serverless VECTORSEARCH collection with its encryption (customer
managed key), network and data-access policies. ``search.kind: domain`` selects a managed
OpenSearch domain instead. Either way the index-bootstrap Lambda (functions/index_bootstrap)
PUTs the index with its knn_vector mappings; it is idempotent, so a re-run changes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk import Aws, CfnOutput, CustomResource, Fn, RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_opensearchserverless as aoss
from aws_cdk import aws_opensearchservice as opensearch
from constructs import Construct

from cdk import constants as c
from cdk.config import EnvironmentConfig
from cdk.constructs import nag
from cdk.constructs.function import SightlineFunction
from cdk.constructs.layers import SightlineLayers
from cdk.constructs.search_access import grant_search_access
from cdk.naming import Names


class SearchStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cfg: EnvironmentConfig,
        names: Names,
        runtime: lambda_.Runtime,
        architecture: lambda_.Architecture,
        layer_build_dir: Path,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.cfg = cfg
        self.names = names
        self.key = kms.Key(
            self,
            "SearchKey",
            alias=f"alias/{names.prefix}-search",
            description=f"{names.prefix}: k-NN index at rest",
            enable_key_rotation=True,
            removal_policy=cfg.removal_policy,
        )
        self.collection_arn: str | None = None
        if cfg.search.kind == "serverless":
            self.endpoint = self._collection()
            service = "aoss"
        else:
            self.endpoint = self._domain()
            service = "es"
        self.service = service

        layers = SightlineLayers(
            self, "Layers", build_dir=layer_build_dir, runtime=runtime, architecture=architecture
        )
        self.bootstrap = SightlineFunction(
            self,
            "IndexBootstrap",
            names=names,
            name=c.INDEX_BOOTSTRAP_FUNCTION,
            description="creates the k-NN index (CloudFormation custom resource)",
            runtime=runtime,
            architecture=architecture,
            layers=layers.for_function(c.INDEX_BOOTSTRAP_FUNCTION),
            environment={
                c.ENV_POWERTOOLS_SERVICE_NAME: c.SERVICE,
                c.ENV_POWERTOOLS_LOG_LEVEL: cfg.pipeline.log_level,
            },
            settings=cfg.pipeline.function(c.INDEX_BOOTSTRAP_FUNCTION),
            log_retention=cfg.log_retention,
            removal_policy=cfg.removal_policy,
        )
        grant_search_access(
            self,
            "BootstrapAccess",
            cfg=cfg,
            names=names,
            role=self.bootstrap.role,
            collection_arn=self.collection_arn,
            level="admin",
        )
        self.index = CustomResource(
            self,
            "Index",
            service_token=self.bootstrap.function_arn,
            resource_type="Custom::SightlineSearchIndex",
            properties={
                "Endpoint": self.endpoint,
                "Service": service,
                "IndexName": cfg.search.index_name,
                "TextDimensions": cfg.search.text_dimensions,
                "LatentDimensions": cfg.search.latent_dimensions,
            },
            # Deleting the stack never drops the index: the collection's (or domain's) removal
            # policy alone decides whether indexed data outlives the stack.
            removal_policy=RemovalPolicy.RETAIN,
        )
        # Data-access policies and the role's policy must be in place before the first PUT.
        for child in self.node.children:
            if isinstance(child, aoss.CfnAccessPolicy):
                self.index.node.add_dependency(child)
        self.index.node.add_dependency(self.bootstrap.role)
        CfnOutput(self, "SearchEndpoint", value=self.endpoint)

    def _collection(self) -> str:
        names, cfg = self.names, self.cfg
        resource = [f"collection/{names.collection}"]
        encryption = aoss.CfnSecurityPolicy(
            self,
            "EncryptionPolicy",
            name=f"{names.collection[:24]}-enc",
            type="encryption",
            description=f"{names.prefix}: encrypt the collection with its own key",
            # The key ARN is a token: Fn::Sub puts it into the JSON document.
            policy=Fn.sub(
                json.dumps(
                    {
                        "Rules": [{"ResourceType": "collection", "Resource": resource}],
                        "AWSOwnedKey": False,
                        "KmsARN": "${KeyArn}",
                    }
                ),
                {"KeyArn": self.key.key_arn},
            ),
        )
        network = aoss.CfnSecurityPolicy(
            self,
            "NetworkPolicy",
            name=f"{names.collection[:24]}-net",
            type="network",
            description=f"{names.prefix}: how the collection endpoint is reached",
            policy=json.dumps(
                [
                    {
                        "Rules": [{"ResourceType": "collection", "Resource": resource}],
                        "AllowFromPublic": cfg.search.allow_public_access,
                    }
                ]
            ),
        )
        collection = aoss.CfnCollection(
            self,
            "Collection",
            name=names.collection,
            type="VECTORSEARCH",
            description=f"{names.prefix}: chunk documents with text and latent embeddings",
            standby_replicas="ENABLED" if cfg.search.standby_replicas else "DISABLED",
        )
        collection.add_resource_dependency(encryption)
        collection.add_resource_dependency(network)
        collection.apply_removal_policy(self.cfg.removal_policy)
        self.collection_arn = collection.attr_arn
        self.collection = collection
        return collection.attr_collection_endpoint

    def _domain(self) -> str:
        names, cfg = self.names, self.cfg
        d = cfg.search.domain
        slow_logs = logs.LogGroup(
            self,
            "DomainLogs",
            log_group_name=f"/aws/opensearch/{names.search_domain}",
            retention=cfg.log_retention,
            removal_policy=cfg.removal_policy,
        )
        domain = opensearch.Domain(
            self,
            "Domain",
            domain_name=names.search_domain,
            version=opensearch.EngineVersion.open_search(d.engine_version.split("_", 1)[1]),
            capacity=opensearch.CapacityConfig(
                data_nodes=d.data_nodes,
                data_node_instance_type=d.data_node_instance_type,
                master_nodes=d.master_nodes or None,
                master_node_instance_type=d.master_node_instance_type if d.master_nodes else None,
            ),
            ebs=opensearch.EbsOptions(volume_size=d.volume_size_gb),
            zone_awareness=opensearch.ZoneAwarenessConfig(
                enabled=d.data_nodes > 1,
                availability_zone_count=2 if d.data_nodes > 1 else None,
            ),
            encryption_at_rest=opensearch.EncryptionAtRestOptions(enabled=True, kms_key=self.key),
            node_to_node_encryption=True,
            enforce_https=True,
            tls_security_policy=opensearch.TLSSecurityPolicy.TLS_1_2,
            logging=opensearch.LoggingOptions(
                slow_search_log_enabled=True,
                slow_search_log_group=slow_logs,
                slow_index_log_enabled=True,
                slow_index_log_group=slow_logs,
                app_log_enabled=True,
                app_log_group=slow_logs,
            ),
            # Written natively below: CDK's default writes both through custom resources.
            suppress_logs_resource_policy=True,
            removal_policy=cfg.removal_policy,
        )
        logs.CfnResourcePolicy(
            self,
            "DomainLogsPolicy",
            policy_name=f"{names.search_domain}-logs",
            policy_document=Stack.of(self).to_json_string(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "es.amazonaws.com"},
                            "Action": ["logs:PutLogEvents", "logs:CreateLogStream"],
                            "Resource": slow_logs.log_group_arn,
                        }
                    ],
                }
            ),
        )
        # Requests must be signed by a principal of this account; which ones may call is
        # decided by their IAM policies (search_access.py).
        cfn_domain = domain.node.default_child
        assert isinstance(cfn_domain, opensearch.CfnDomain)
        cfn_domain.access_policies = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:root"},
                    "Action": [
                        "es:ESHttpGet",
                        "es:ESHttpHead",
                        "es:ESHttpPost",
                        "es:ESHttpPut",
                        "es:ESHttpDelete",
                    ],
                    "Resource": f"{names.search_domain_arn}/*",
                }
            ],
        }
        nag.acknowledge(
            domain,
            "OS1",
            "the domain is reached by Lambda functions outside a VPC; every request is "
            "SigV4-signed and allowed only by the callers' IAM policies",
        )
        nag.acknowledge(
            domain,
            "OS3",
            "access is by IAM identity (SigV4), not by source IP: Lambda has no fixed address",
        )
        if d.master_nodes == 0:
            nag.acknowledge(
                domain,
                "OS4",
                "dedicated master nodes are off by configuration (search.domain.master_nodes) "
                "for this environment's size",
            )
        if d.data_nodes < 2:
            nag.acknowledge(
                domain,
                "OS7",
                "a single data node is configured (search.domain.data_nodes); zone awareness "
                "needs two or more",
            )
        self.domain = domain
        return "https://" + domain.domain_endpoint
