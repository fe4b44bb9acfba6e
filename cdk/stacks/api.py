"""API: API Gateway REST API -> Lambda authorizer (functions/authorizer) -> one proxy
function (functions/api). Included in a stage only when those folders exist."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import Aws, Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from cdk import constants as c
from cdk.config import EnvironmentConfig
from cdk.constructs import nag
from cdk.constructs.function import SightlineFunction
from cdk.constructs.layers import SightlineLayers
from cdk.constructs.policies import DataAccess, data_statements, statement
from cdk.constructs.search_access import grant_search_access
from cdk.naming import Names
from cdk.stacks.live import camera_api_environment, grant_camera_schedules
from cdk.stacks.pipeline import (
    acknowledge_object_wildcard,
    runtime_environment,
    search_environment,
)

# Routes anyone may call (load balancer checks, the OpenAPI document).
PUBLIC_ROUTES = (("health",), ("v1", "openapi.json"))


class ApiStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cfg: EnvironmentConfig,
        names: Names,
        data_key: kms.IKey,
        search_endpoint: str,
        search_service: str,
        collection_arn: str | None,
        layer_build_dir: Path,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        api_cfg = cfg.api
        runtime = lambda_.Runtime(cfg.pipeline.runtime, lambda_.RuntimeFamily.PYTHON)
        architecture = (
            lambda_.Architecture.ARM_64
            if cfg.pipeline.architecture == "arm64"
            else lambda_.Architecture.X86_64
        )
        layers = SightlineLayers(
            self, "Layers", build_dir=layer_build_dir, runtime=runtime, architecture=architecture
        )
        env = runtime_environment(cfg, names)
        env.update(
            {
                c.ENV_UPLOAD_MODE: api_cfg.upload_mode,
                c.ENV_JWT_ISSUER: api_cfg.jwt_issuer,
                c.ENV_JWT_AUDIENCE: api_cfg.jwt_audience,
                c.ENV_JWKS_URL: api_cfg.jwks_url,
                **search_environment(cfg, search_endpoint, search_service),
            }
        )
        # Every table but the pipeline workers' own (usage, codec jobs, tenant slots).
        api_tables = tuple(t for t in c.TABLES if t not in c.WORKER_TABLES)
        api_access = DataAccess(
            read=True, write=True, delete=True, list=True, tables_write=api_tables
        )
        api_statements = data_statements(names, api_access, data_key_arn=data_key.key_arn)
        if cfg.bedrock.embedder == "bedrock":
            # Text searches embed the query with the index's embedding model.
            api_statements.append(
                statement(
                    ["bedrock:InvokeModel"], names.bedrock_model_arns([cfg.bedrock.embed_model_id])
                )
            )
        api_statements.append(
            statement(
                ["states:StartExecution"], [names.state_machine_arn(names.ingest_state_machine)]
            )
        )
        self.api_function = SightlineFunction(
            self,
            "ApiFunction",
            names=names,
            name=c.API_FUNCTION,
            description="the v1 REST API (Powertools resolver)",
            runtime=runtime,
            architecture=architecture,
            layers=layers.for_function(c.API_FUNCTION),
            # Only the API manages camera schedules (the authorizer shares the rest).
            environment={**env, **camera_api_environment(names)},
            settings=cfg.pipeline.function(c.API_FUNCTION),
            log_retention=cfg.log_retention,
            removal_policy=cfg.removal_policy,
            statements=api_statements,
        )
        acknowledge_object_wildcard(self.api_function.role, names)
        grant_camera_schedules(self.api_function.role, names)
        grant_search_access(
            self,
            "ApiSearch",
            cfg=cfg,
            names=names,
            role=self.api_function.role,
            collection_arn=collection_arn,
            level="read",
        )
        self.authorizer_function = SightlineFunction(
            self,
            "AuthorizerFunction",
            names=names,
            name=c.AUTHORIZER_FUNCTION,
            description="verifies the caller's JWT or API key",
            runtime=runtime,
            architecture=architecture,
            layers=layers.for_function(c.AUTHORIZER_FUNCTION),
            environment=env,
            settings=cfg.pipeline.function(c.AUTHORIZER_FUNCTION),
            log_retention=cfg.log_retention,
            removal_policy=cfg.removal_policy,
            statements=data_statements(
                names, DataAccess(tables_read=("api_keys",)), data_key_arn=data_key.key_arn
            ),
        )

        access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            log_group_name=f"/aws/apigateway/{names.prefix}-api",
            retention=cfg.log_retention,
            removal_policy=cfg.removal_policy,
        )
        self.api = apigw.RestApi(
            self,
            "Api",
            rest_api_name=f"{names.prefix}-api",
            description="Sightline v1 API",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            binary_media_types=["application/octet-stream", "video/*", "image/*"],
            cloud_watch_role=True,
            deploy_options=apigw.StageOptions(
                stage_name=api_cfg.stage_name,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                tracing_enabled=True,
                metrics_enabled=True,
                throttling_rate_limit=api_cfg.throttle_rate_limit,
                throttling_burst_limit=api_cfg.throttle_burst_limit,
            ),
        )
        nag.acknowledge(
            self.api,
            "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AmazonAPIGatewayPushToCloudWatchLogs]",
            "API Gateway's account-level CloudWatch role uses the AWS-documented managed policy "
            "AmazonAPIGatewayPushToCloudWatchLogs; API Gateway names the log groups itself",
        )
        validator = self.api.add_request_validator(
            "Validator", validate_request_body=True, validate_request_parameters=True
        )
        self.authorizer = apigw.RequestAuthorizer(
            self,
            "Authorizer",
            handler=self.authorizer_function.function,
            identity_sources=[apigw.IdentitySource.header("Authorization")],
            # No cache: a revoked key or token is refused on its next request.
            results_cache_ttl=Duration.seconds(0),
        )
        integration = apigw.LambdaIntegration(self.api_function.function, proxy=True)
        protected = apigw.MethodOptions(
            authorizer=self.authorizer,
            authorization_type=apigw.AuthorizationType.CUSTOM,
            request_validator=validator,
        )
        self.api.root.add_method("ANY", integration, **_options(protected))
        self.api.root.add_proxy(default_integration=integration, default_method_options=protected)
        for route in PUBLIC_ROUTES:
            resource = self.api.root
            for part in route:
                resource = resource.get_resource(part) or resource.add_resource(part)
            method = resource.add_method(
                "GET",
                integration,
                authorization_type=apigw.AuthorizationType.NONE,
                request_validator=validator,
            )
            nag.acknowledge(method, "APIG4", "public by design: health check / API description")
            nag.acknowledge(method, "COG4", "public by design: health check / API description")
        # API keys arrive in X-Api-Key and tokens in Authorization: with caching off the
        # authorizer needs no identity source, and requiring one would refuse key-only calls.
        cfn_authorizer = self.authorizer.node.default_child
        if isinstance(cfn_authorizer, apigw.CfnAuthorizer):
            cfn_authorizer.add_property_deletion_override("IdentitySource")
        nag.acknowledge(
            self.api,
            "COG4",
            "callers authenticate with OIDC JWTs from the tenant's identity provider or with "
            "API keys, both verified by the Lambda authorizer; no Cognito user pool is used",
        )

        self.api_key = self.api.add_api_key("ServiceKey", api_key_name=f"{names.prefix}-service")
        self.usage_plan = self.api.add_usage_plan(
            "UsagePlan",
            name=f"{names.prefix}-default",
            throttle=apigw.ThrottleSettings(
                rate_limit=api_cfg.throttle_rate_limit, burst_limit=api_cfg.throttle_burst_limit
            ),
            quota=apigw.QuotaSettings(limit=api_cfg.quota_per_day, period=apigw.Period.DAY),
        )
        self.usage_plan.add_api_stage(stage=self.api.deployment_stage)
        self.usage_plan.add_api_key(self.api_key)

        if api_cfg.waf_enabled:
            self._waf(names, api_cfg.waf_rate_limit_per_5_minutes)
        else:
            nag.acknowledge(
                self.api.deployment_stage,
                "APIG3",
                f"WAF is enabled per environment (api.waf_enabled); off in {cfg.name}, where "
                "stage throttling and the usage plan bound the traffic",
            )

    def _waf(self, names: Names, rate_limit: int) -> None:
        def managed(name: str, priority: int) -> wafv2.CfnWebACL.RuleProperty:
            return wafv2.CfnWebACL.RuleProperty(
                name=name,
                priority=priority,
                override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                        vendor_name="AWS", name=name
                    )
                ),
                visibility_config=_visibility(name),
            )

        acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            name=f"{names.prefix}-api",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=_visibility(f"{names.prefix}-api"),
            rules=[
                managed("AWSManagedRulesCommonRuleSet", 0),
                managed("AWSManagedRulesKnownBadInputsRuleSet", 1),
                wafv2.CfnWebACL.RuleProperty(
                    name="RatePerIp",
                    priority=2,
                    action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                            limit=rate_limit, aggregate_key_type="IP"
                        )
                    ),
                    visibility_config=_visibility("RatePerIp"),
                ),
            ],
        )
        stage_arn = (
            f"arn:{Aws.PARTITION}:apigateway:{Aws.REGION}::/restapis/"
            f"{self.api.rest_api_id}/stages/{self.api.deployment_stage.stage_name}"
        )
        wafv2.CfnWebACLAssociation(
            self, "WebAclAssociation", resource_arn=stage_arn, web_acl_arn=acl.attr_arn
        ).node.add_dependency(self.api.deployment_stage)


def _visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
    )


def _options(options: apigw.MethodOptions) -> dict[str, Any]:
    return {
        "authorizer": options.authorizer,
        "authorization_type": options.authorization_type,
        "request_validator": options.request_validator,
    }
