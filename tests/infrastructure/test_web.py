"""Web: a private S3 site behind CloudFront (origin access control), the API under /v1/*,
the page's own Content-Security-Policy, and a deployment role with exactly its calls."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match

from cdk import constants as c
from cdk.config import load_environments
from cdk.naming import Names
from cdk.stacks.web import page_config, page_policy
from sightline_local.web_assets import content_security_policy
from tests.infrastructure.conftest import Synth, base_context


def _only(resources: dict[str, Any]) -> dict[str, Any]:
    assert len(resources) == 1, list(resources)
    return next(iter(resources.values()))["Properties"]


def test_site_bucket_is_private_encrypted_tls_only_and_logged(dev: Synth) -> None:
    assert dev.stage.web is not None
    t = dev.template(dev.stage.web)
    t.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                ]
            },
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
            "LoggingConfiguration": {
                "LogFilePrefix": "site/",
                "DestinationBucketName": Match.any_value(),
            },
        },
    )
    # Every bucket of the stack refuses plain HTTP
    policies = t.find_resources("AWS::S3::BucketPolicy")
    assert len(policies) == 2
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        )


def test_only_the_distribution_reads_the_site_through_origin_access_control(dev: Synth) -> None:
    assert dev.stage.web is not None
    t = dev.template(dev.stage.web)
    oac = _only(t.find_resources("AWS::CloudFront::OriginAccessControl"))
    assert oac["OriginAccessControlConfig"]["SigningBehavior"] == "always"
    assert oac["OriginAccessControlConfig"]["OriginAccessControlOriginType"] == "s3"
    grants = [
        s
        for p in t.find_resources("AWS::S3::BucketPolicy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Allow" and s.get("Principal") == {"Service": "cloudfront.amazonaws.com"}
    ]
    assert len(grants) == 1
    assert grants[0]["Action"] == "s3:GetObject"
    assert "AWS:SourceArn" in grants[0]["Condition"]["StringEquals"]


def test_distribution_serves_the_page_over_https_and_the_api_under_v1(dev: Synth) -> None:
    assert dev.stage.web is not None
    dist = _only(dev.template(dev.stage.web).find_resources("AWS::CloudFront::Distribution"))
    config = dist["DistributionConfig"]
    assert config["DefaultRootObject"] == "index.html"
    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"
    assert config["DefaultCacheBehavior"]["AllowedMethods"] == ["GET", "HEAD"]
    assert config["Logging"]["Prefix"] == "cdn/"
    s3_origin = next(o for o in config["Origins"] if "S3OriginConfig" in o)
    assert "OriginAccessControlId" in s3_origin
    (api,) = config["CacheBehaviors"]
    assert api["PathPattern"] == "/v1/*"
    assert api["ViewerProtocolPolicy"] == "https-only"
    assert {"POST", "PUT", "PATCH", "DELETE"} <= set(api["AllowedMethods"])
    # Managed CachingDisabled + AllViewerExceptHostHeader: never cached, and with caching
    # off CloudFront forwards the Authorization header to API Gateway.
    assert api["CachePolicyId"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
    assert api["OriginRequestPolicyId"] == "b689b0a8-53d0-40ab-baf2-68738e2966ac"
    api_origin = next(o for o in config["Origins"] if o["Id"] == api["TargetOriginId"])
    assert api_origin["CustomOriginConfig"]["OriginSSLProtocols"] == ["TLSv1.2"]


def test_page_headers_carry_the_same_csp_as_the_local_server(dev: Synth) -> None:
    assert dev.stage.web is not None
    policy = _only(
        dev.template(dev.stage.web).find_resources("AWS::CloudFront::ResponseHeadersPolicy")
    )
    headers = policy["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    csp = json.dumps(headers["ContentSecurityPolicy"]["ContentSecurityPolicy"])
    local = content_security_policy()
    for directive in local.split("; "):
        if not directive.startswith("connect-src"):
            assert directive in csp, directive
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert headers["FrameOptions"]["FrameOption"] == "DENY"
    assert headers["ReferrerPolicy"]["ReferrerPolicy"] == "no-referrer"
    assert headers["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31536000


def test_deployment_copies_the_web_folder_with_an_exactly_scoped_role(dev: Synth) -> None:
    assert dev.stage.web is not None
    t = dev.template(dev.stage.web)
    deploy = _only(t.find_resources("Custom::CDKBucketDeployment"))
    assert deploy["Prune"] is True
    assert deploy["DistributionPaths"] == ["/*"]
    assert len(deploy["SourceObjectKeys"]) == 2  # the page folder and config.json
    assert "max-age=0" in deploy["SystemMetadata"]["cache-control"]
    role_policy = next(
        p["Properties"]["PolicyDocument"]["Statement"]
        for k, p in t.find_resources("AWS::IAM::Policy").items()
        if k.startswith("DeployRole")
    )
    actions = sorted(a for s in role_policy for a in _as_list(s["Action"]))
    assert actions == sorted(
        [
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "s3:GetObject",
            "s3:ListBucket",
            "s3:PutObject",
            "s3:DeleteObject",
            "cloudfront:CreateInvalidation",
            "cloudfront:GetInvalidation",
        ]
    )
    get = next(s for s in role_policy if s["Action"] == "s3:GetObject")
    assert all(r.endswith(".zip") and "*" not in r for r in get["Resource"])
    # The files shipped are the folder `sightline up` serves
    assert (c.WEB_DIR / "index.html").is_file()
    assert (c.WEB_DIR / "assets" / "js" / "main.js").is_file()


def test_the_data_bucket_lets_the_page_put_uploads_only(dev: Synth) -> None:
    t = dev.template(dev.stage.storage)
    t.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "CorsConfiguration": {
                "CorsRules": [
                    Match.object_like(
                        {"AllowedMethods": ["PUT"], "AllowedHeaders": ["content-type"]}
                    )
                ]
            }
        },
    )


def test_no_page_without_an_api(staging_domain: Synth) -> None:
    assert staging_domain.stage.api is None
    assert staging_domain.stage.web is None


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _environment(web: dict[str, Any]) -> Any:
    ctx = base_context()
    envs = ctx[c.CONTEXT_ENVIRONMENTS]
    envs["staging"] = {**envs["staging"], "web": web}
    return load_environments(envs, ctx[c.CONTEXT_DEFAULTS])["staging"]


def test_config_json_says_how_to_sign_in_per_environment() -> None:
    # Given no identity provider: the page asks for a token
    assert page_config(_environment({}))["auth"] == {"mode": "token"}
    # Given an OIDC client for staging: the authorization-code flow with its endpoints
    cfg = _environment(
        {
            "oidc": {
                "provider_name": "Corp SSO",
                "authorization_endpoint": "https://login.example.com/oauth2/authorize",
                "token_endpoint": "https://login.example.com/oauth2/token",
                "client_id": "abc123",
            }
        }
    )
    auth = page_config(cfg)["auth"]
    assert auth["mode"] == "oidc" and auth["clientId"] == "abc123"
    assert auth["tokenEndpoint"] == "https://login.example.com/oauth2/token"
    assert page_config(cfg)["stream"] is False and page_config(cfg)["apiBase"] == ""
    # And the page may call the token endpoint's origin, nothing else of it
    assert "connect-src 'self' https://login.example.com " in page_policy(cfg, Names(cfg))


def test_an_incomplete_oidc_or_domain_config_fails_the_synth() -> None:
    with pytest.raises(ValueError, match="authorization_endpoint"):
        _environment({"oidc": {"client_id": "abc"}})
    with pytest.raises(ValueError, match="certificate_arn"):
        _environment({"domain_names": ["review.example.com"]})
    with pytest.raises(ValueError):
        _environment({"oidc": {"token_endpoint": "http://plain.example.com/token"}})
