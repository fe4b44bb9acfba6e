"""Web: the review page as a static site. S3 (private) behind CloudFront with origin access
control; the API under ``/v1/*`` of the same distribution, so the page calls it on its
own origin (no CORS, one Content-Security-Policy). The files are ``sightline_local/web/``,
the very folder ``sightline up`` serves, plus a ``config.json`` written here per
environment (the OIDC settings the page signs in with).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

from aws_cdk import Aws, CfnOutput, Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from cdk import constants as c
from cdk.config import EnvironmentConfig, WebConfig
from cdk.constructs import nag
from cdk.naming import Names
from sightline_local.web_assets import content_security_policy

API_PATH = "/v1/*"
PRICE_CLASSES = {
    "PriceClass_100": cloudfront.PriceClass.PRICE_CLASS_100,
    "PriceClass_200": cloudfront.PriceClass.PRICE_CLASS_200,
    "PriceClass_All": cloudfront.PriceClass.PRICE_CLASS_ALL,
}
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=()"


def page_config(cfg: EnvironmentConfig) -> dict[str, Any]:
    """What the page reads from ``/config.json`` on AWS (locally the server writes it)."""
    oidc = cfg.web.oidc
    auth: dict[str, Any] = {"mode": "token"}
    if oidc.client_id:
        auth = {
            "mode": "oidc",
            "providerName": oidc.provider_name,
            "authorizationEndpoint": oidc.authorization_endpoint,
            "tokenEndpoint": oidc.token_endpoint,
            "endSessionEndpoint": oidc.end_session_endpoint,
            "clientId": oidc.client_id,
            "scopes": oidc.scopes,
            "tokenField": oidc.token_field,
        }
    # API Gateway holds no event stream open: the page polls for upload status there.
    return {"environment": cfg.name, "apiBase": "", "stream": False, "auth": auth}


def _origin(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


def page_policy(cfg: EnvironmentConfig, names: Names) -> str:
    """The deployed Content-Security-Policy: the local one plus the token endpoint and the
    data bucket (uploads go straight to it with a presigned PUT)."""
    extra = []
    if cfg.web.oidc.client_id:
        extra.append(_origin(cfg.web.oidc.token_endpoint))
    extra += [
        f"https://{names.data_bucket}.s3.{Aws.URL_SUFFIX}",
        f"https://{names.data_bucket}.s3.{Aws.REGION}.{Aws.URL_SUFFIX}",
    ]
    return content_security_policy(extra)


def _config_folder(config: dict[str, Any]) -> str:
    """A folder holding only config.json, named by its content so a synth is repeatable."""
    body = json.dumps(config, indent=2, sort_keys=True) + "\n"
    digest = hashlib.sha256(body.encode()).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / f"sightline-web-config-{digest}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(body)
    return str(folder)


class WebStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cfg: EnvironmentConfig,
        names: Names,
        api: apigw.RestApi,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        web = cfg.web
        removal = cfg.removal_policy

        # CloudFront standard logs are delivered with object ACLs: the owner must accept them.
        self.log_bucket = s3.Bucket(
            self,
            "Logs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            enforce_ssl=True,
            lifecycle_rules=[
                s3.LifecycleRule(id="expire-logs", expiration=Duration.days(web.log_expiry_days))
            ],
            removal_policy=removal,
        )
        nag.acknowledge(
            self.log_bucket,
            "S1",
            "this bucket receives the site bucket's access logs and the distribution's "
            "logs; logging it into itself would loop",
        )
        self.site_bucket = s3.Bucket(
            self,
            "Site",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="old-page-versions", noncurrent_version_expiration=Duration.days(30)
                )
            ],
            server_access_logs_bucket=self.log_bucket,
            server_access_logs_prefix="site/",
            removal_policy=removal,
        )

        page_headers = cloudfront.ResponseHeadersPolicy(
            self,
            "PageHeaders",
            comment=f"{names.prefix} web page: CSP and security headers",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=page_policy(cfg, names), override=True
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True
                ),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.NO_REFERRER, override=True
                ),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=Duration.days(730),
                    include_subdomains=True,
                    override=True,
                ),
            ),
            custom_headers_behavior=cloudfront.ResponseCustomHeadersBehavior(
                custom_headers=[
                    cloudfront.ResponseCustomHeader(
                        header="Permissions-Policy", value=PERMISSIONS_POLICY, override=True
                    ),
                    cloudfront.ResponseCustomHeader(
                        header="Cross-Origin-Opener-Policy", value="same-origin", override=True
                    ),
                ]
            ),
        )
        api_behavior = cloudfront.BehaviorOptions(
            # The stage is the origin path: /v1/search/similar reaches the API's /v1/... routes.
            origin=origins.RestApiOrigin(api),
            viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
            allowed_methods=cloudfront.AllowedMethods.ALLOW_ALL,
            # Never cached; with caching off, this policy forwards Authorization too.
            cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
            origin_request_policy=cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
            response_headers_policy=cloudfront.ResponseHeadersPolicy.SECURITY_HEADERS,
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment=f"{names.prefix} web page and API",
            default_root_object="index.html",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.site_bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                response_headers_policy=page_headers,
                compress=True,
            ),
            additional_behaviors={API_PATH: api_behavior},
            price_class=PRICE_CLASSES[web.price_class],
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            enable_logging=True,
            log_bucket=self.log_bucket,
            log_file_prefix="cdn/",
            **self._edge_options(web),
        )
        self._acknowledge_edge(web)
        self.url = f"https://{self.distribution.distribution_domain_name}"
        CfnOutput(self, "PageUrl", value=self.url, description="the review page")

        self._deploy(cfg, names)

    def _edge_options(self, web: WebConfig) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if web.domain_names and web.certificate_arn:
            options["domain_names"] = web.domain_names
            options["certificate"] = acm.Certificate.from_certificate_arn(
                self, "Certificate", web.certificate_arn
            )
            options["minimum_protocol_version"] = cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021
        if web.geo_allow:
            options["geo_restriction"] = cloudfront.GeoRestriction.allowlist(*web.geo_allow)
        if web.web_acl_arn:
            options["web_acl_id"] = web.web_acl_arn
        return options

    def _acknowledge_edge(self, web: WebConfig) -> None:
        if not web.domain_names:
            nag.acknowledge(
                self.distribution,
                "CFR4",
                "without web.domain_names the distribution uses the cloudfront.net "
                "certificate, whose TLS floor CloudFront sets; a custom domain gets TLSv1.2_2021",
            )
        if not web.geo_allow:
            nag.acknowledge(
                self.distribution,
                "CFR1",
                "reviewers sign in from wherever they work; web.geo_allow restricts countries "
                "per environment when a deployment needs it",
            )
        if not web.web_acl_arn:
            nag.acknowledge(
                self.distribution,
                "CFR2",
                "the page is static and public; the API behind /v1/* keeps its own regional "
                "WAF, throttling and authorizer; web.web_acl_arn adds an edge ACL per environment",
            )

    def _deploy(self, cfg: EnvironmentConfig, names: Names) -> None:
        """Copy the page and config.json to the bucket and invalidate the distribution.

        The deployment function gets its own role with exactly the calls it makes: CDK's
        default grants (s3:GetObject*, s3:List*, cloudfront:CreateInvalidation on "*") are
        wider than the conventions allow, so the role it sees takes no policy updates.
        """
        files = s3_assets.Asset(self, "PageFiles", path=str(c.WEB_DIR))
        config = s3_assets.Asset(self, "PageConfig", path=_config_folder(page_config(cfg)))
        log_group = logs.LogGroup(
            self,
            "DeployLogs",
            retention=cfg.log_retention,
            removal_policy=cfg.removal_policy,
        )
        role = iam.Role(
            self,
            "DeployRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{names.prefix}: copies the web page to its bucket",
        )
        site_objects = self.site_bucket.arn_for_objects("*")
        distribution_arn = (
            f"arn:{Aws.PARTITION}:cloudfront::{Aws.ACCOUNT_ID}:distribution/"
            f"{self.distribution.distribution_id}"
        )
        for actions, resources in (
            (["logs:CreateLogStream", "logs:PutLogEvents"], [log_group.log_group_arn]),
            (
                ["s3:GetObject"],
                [
                    files.bucket.arn_for_objects(files.s3_object_key),
                    config.bucket.arn_for_objects(config.s3_object_key),
                ],
            ),
            (["s3:ListBucket"], [self.site_bucket.bucket_arn]),
            (["s3:PutObject", "s3:DeleteObject"], [site_objects]),
            (["cloudfront:CreateInvalidation", "cloudfront:GetInvalidation"], [distribution_arn]),
        ):
            role.add_to_policy(iam.PolicyStatement(actions=actions, resources=resources))
        nag.acknowledge_wildcards(
            role,
            resources=[site_objects],
            reason="the deployment writes and prunes whatever files the page folder holds, "
            "in this bucket alone",
        )
        self.deployment = s3deploy.BucketDeployment(
            self,
            "Deploy",
            sources=[
                s3deploy.Source.bucket(files.bucket, files.s3_object_key),
                s3deploy.Source.bucket(config.bucket, config.s3_object_key),
            ],
            destination_bucket=self.site_bucket,
            prune=True,
            distribution=self.distribution,
            distribution_paths=["/*"],
            role=role.without_policy_updates(),
            log_group=log_group,
            memory_limit=256,
            # Browsers revalidate every time (ETag: a 304 without a body); CloudFront keeps a
            # copy for cdn_max_age_seconds, and each deployment invalidates it.
            cache_control=[
                s3deploy.CacheControl.set_public(),
                s3deploy.CacheControl.max_age(Duration.seconds(0)),
                s3deploy.CacheControl.s_max_age(Duration.seconds(cfg.web.cdn_max_age_seconds)),
            ],
        )
        # The role above is not the function's to update: wait for its policy explicitly.
        self.deployment.node.add_dependency(role)
        for child in self.node.children:
            if child.node.id.startswith("Custom::CDKBucketDeployment"):
                nag.acknowledge(
                    child,
                    "L1",
                    "the runtime of CDK's own BucketDeployment handler is chosen by aws-cdk-lib "
                    "and moves forward with it",
                )
