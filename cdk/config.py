"""Typed configuration of one deployment environment, read from ``cdk.json`` context.

``sightline:defaults`` holds what every environment shares; ``sightline:environments``
holds one object per environment (dev, staging, prod) whose keys override the defaults
(objects are merged key by key). Unknown keys are an error, so a typo fails the synth.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from aws_cdk import RemovalPolicy
from aws_cdk import aws_logs as logs
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cdk import constants as c


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AlarmConfig(_Model):
    """Where alarms go: email subscriptions to a new topic, and/or an existing SNS topic."""

    emails: list[str] = []
    sns_topic_arn: str | None = None
    lambda_error_threshold: Annotated[int, Field(ge=1)] = 1
    dlq_depth_threshold: Annotated[int, Field(ge=1)] = 1
    api_latency_p99_ms: Annotated[int, Field(ge=1)] = 3000
    api_5xx_threshold: Annotated[int, Field(ge=1)] = 5


class StorageConfig(_Model):
    # Objects under these prefixes are transfers (SageMaker async in/out), not records.
    temporary_prefixes: list[str] = [c.CODEC_TRANSFER_PREFIX]
    temporary_expiry_days: Annotated[int, Field(ge=1)] = 2
    noncurrent_version_expiry_days: Annotated[int, Field(ge=1)] = 30
    access_log_expiry_days: Annotated[int, Field(ge=1)] = 365
    deletion_protection: bool = False


class DomainConfig(_Model):
    """A managed OpenSearch domain (used when ``search.kind`` is ``domain``)."""

    engine_version: str = "OpenSearch_2.19"
    data_nodes: Annotated[int, Field(ge=1)] = 2
    data_node_instance_type: str = "r7g.large.search"
    master_nodes: Annotated[int, Field(ge=0)] = 0
    master_node_instance_type: str = "m7g.large.search"
    volume_size_gb: Annotated[int, Field(ge=10)] = 50


class SearchConfig(_Model):
    kind: Literal["serverless", "domain"] = "serverless"
    # Collection names: 3-32 lowercase letters, digits and hyphens.
    collection_name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{2,27}$")] = "sightline"
    index_name: str = c.SEARCH_INDEX
    # The embedder's dimension: Titan Text Embeddings V2 gives 256, 512 or 1024.
    text_dimensions: Annotated[int, Field(ge=1, le=16000)] = 512
    # The latent embedding is the chunk's token histogram: one bin per codebook entry.
    latent_dimensions: Annotated[int, Field(ge=1, le=16000)] = 1024
    standby_replicas: bool = True
    # A public endpoint still requires SigV4-signed requests from the principals named in
    # the data-access policy; "false" needs VPC endpoints (not built here).
    allow_public_access: bool = True
    domain: DomainConfig = DomainConfig()


class CodecConfig(_Model):
    """The codec's SageMaker asynchronous inference endpoint."""

    instance_type: str = "ml.g5.xlarge"
    # A PyTorch inference Deep Learning Container, addressed as
    # "<account>.dkr.ecr.<region>.<suffix>/<repo>:<tag>" with the stack's region and URL suffix.
    image_account: Annotated[str, Field(pattern=r"^\d{12}$")] = "763104351884"
    image_repository: str = "pytorch-inference"
    image_tag: str = "2.6.0-gpu-py312-cu124-ubuntu22.04-sagemaker"
    min_capacity: Annotated[int, Field(ge=0)] = 0
    max_capacity: Annotated[int, Field(ge=1)] = 2
    target_backlog_per_instance: Annotated[float, Field(gt=0)] = 4.0
    max_concurrent_invocations_per_instance: Annotated[int, Field(ge=1, le=1000)] = 2
    scale_in_cooldown_seconds: Annotated[int, Field(ge=0)] = 600
    scale_out_cooldown_seconds: Annotated[int, Field(ge=0)] = 60
    # The serving container installs code/requirements.txt at start, which needs egress.
    network_isolation: bool = False
    # The codec's background layer (token blob v3; see sagemaker_models/codec/README.md):
    # "off" keeps the ROI-oriented version 2 blobs, "on" or "q=<luma step>" turns it on.
    background_layer: Annotated[str, Field(pattern=r"^(off|on|q=\d+(\.\d+)?)$")] = "off"

    @model_validator(mode="after")
    def _capacity(self) -> CodecConfig:
        if self.max_capacity < self.min_capacity:
            raise ValueError("codec.max_capacity must be >= codec.min_capacity")
        return self


class FunctionConfig(_Model):
    memory_mb: Annotated[int, Field(ge=128, le=10240)] = 1024
    timeout_seconds: Annotated[int, Field(ge=1, le=900)] = 120
    ephemeral_storage_mb: Annotated[int, Field(ge=512, le=10240)] = 512


def _default_functions() -> dict[str, FunctionConfig]:
    return {
        "probe": FunctionConfig(memory_mb=1024, timeout_seconds=300, ephemeral_storage_mb=10240),
        "chunk": FunctionConfig(memory_mb=3008, timeout_seconds=900, ephemeral_storage_mb=10240),
        # Queues the chunk on the codec and returns (the Encode state waits for its task
        # token, not this Lambda); codec_callback stores the result when the notice comes.
        "encode": FunctionConfig(memory_mb=512, timeout_seconds=60),
        c.CODEC_CALLBACK_FUNCTION: FunctionConfig(memory_mb=1024, timeout_seconds=120),
        "describe": FunctionConfig(memory_mb=3008, timeout_seconds=600, ephemeral_storage_mb=2048),
        "latent": FunctionConfig(memory_mb=1024, timeout_seconds=120),
        "events": FunctionConfig(memory_mb=512, timeout_seconds=120),
        "index": FunctionConfig(memory_mb=2048, timeout_seconds=120),
        "finalize": FunctionConfig(memory_mb=512, timeout_seconds=60),
        "fail": FunctionConfig(memory_mb=512, timeout_seconds=120),
        c.S3_TRIGGER_FUNCTION: FunctionConfig(memory_mb=256, timeout_seconds=30),
        c.INDEX_BOOTSTRAP_FUNCTION: FunctionConfig(memory_mb=256, timeout_seconds=600),
        c.API_FUNCTION: FunctionConfig(memory_mb=1024, timeout_seconds=29),
        c.AUTHORIZER_FUNCTION: FunctionConfig(memory_mb=512, timeout_seconds=10),
        # live_clip's steps: each Lambda times out before its Task's TimeoutSeconds does.
        "live_plan": FunctionConfig(memory_mb=512, timeout_seconds=90),
        # A window is at most 100 MB per GetClip piece; joining pieces re-encodes.
        "live_fetch": FunctionConfig(
            memory_mb=2048, timeout_seconds=540, ephemeral_storage_mb=2048
        ),
        "live_commit": FunctionConfig(memory_mb=256, timeout_seconds=45),
    }


class PipelineConfig(_Model):
    runtime: Literal["python3.12", "python3.13"] = "python3.12"
    architecture: Literal["arm64", "x86_64"] = "arm64"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    chunk_seconds: Annotated[float, Field(gt=1, le=120)] = 10.0
    codec_timeout_seconds: Annotated[int, Field(ge=60, le=880)] = 840
    # SageMaker's queue TTL for one request (scale-from-zero start included); with the
    # 900-s invocation cap it stays under the Encode state's 3600-s TimeoutSeconds.
    codec_request_ttl_seconds: Annotated[int, Field(ge=60, le=2700)] = 2400
    # Per-tenant concurrency: codec requests in flight and describe calls at once.
    tenant_encode_limit: Annotated[int, Field(ge=0, le=1000)] = 8
    tenant_describe_limit: Annotated[int, Field(ge=0, le=1000)] = 8
    # Where cdk/build_layers.py put the built layers (relative to the repository root).
    layer_build_dir: str = c.DEFAULT_LAYER_BUILD_DIR
    model_build_dir: str = c.DEFAULT_MODEL_BUILD_DIR
    functions: dict[str, FunctionConfig] = Field(default_factory=_default_functions)
    s3_trigger_retry_attempts: Annotated[int, Field(ge=0, le=185)] = 8
    s3_trigger_max_event_age_hours: Annotated[int, Field(ge=1, le=24)] = 24

    def function(self, name: str) -> FunctionConfig:
        return self.functions.get(name) or FunctionConfig()

    @model_validator(mode="after")
    def _merge_functions(self) -> PipelineConfig:
        # A partial "functions" block in an environment overrides only the functions it names.
        merged = {**_default_functions(), **self.functions}
        object.__setattr__(self, "functions", merged)
        return self


# Titan Text Embeddings V2 returns 256, 512 or 1024 dimensions.
TITAN_V2_DIMENSIONS = (256, 512, 1024)


class BedrockConfig(_Model):
    """Which provider serves the describe and embedding ports on AWS, and the Bedrock models
    they call: one describe model (frames in, text and tool use out) and one embedding
    model in ``model_ids``. Each function is granted only the model it calls."""

    describer: Literal["bedrock", "local"] = "bedrock"
    embedder: Literal["bedrock", "local"] = "bedrock"
    model_ids: list[str] = [
        "amazon.nova-lite-v1:0",
        "amazon.titan-embed-text-v2:0",
    ]

    @property
    def describe_model_id(self) -> str:
        return next(m for m in self.model_ids if "embed" not in m)

    @property
    def embed_model_id(self) -> str:
        return next(m for m in self.model_ids if "embed" in m)

    @model_validator(mode="after")
    def _one_of_each(self) -> BedrockConfig:
        embed = [m for m in self.model_ids if "embed" in m]
        other = [m for m in self.model_ids if "embed" not in m]
        if self.embedder == "bedrock" and len(embed) != 1:
            raise ValueError("bedrock.model_ids needs exactly one embedding model")
        if self.describer == "bedrock" and len(other) != 1:
            raise ValueError("bedrock.model_ids needs exactly one describe model")
        return self


class ApiConfig(_Model):
    # None: enabled when functions/api/handler.py exists at synth time.
    enabled: bool | None = None
    stage_name: str = "v1"
    throttle_rate_limit: Annotated[float, Field(gt=0)] = 50.0
    throttle_burst_limit: Annotated[int, Field(ge=1)] = 100
    quota_per_day: Annotated[int, Field(ge=1)] = 100_000
    jwt_issuer: str = ""
    jwt_audience: str = "sightline"
    jwks_url: str = ""
    upload_mode: Literal["api", "presigned"] = "presigned"
    waf_enabled: bool = False
    waf_rate_limit_per_5_minutes: Annotated[int, Field(ge=100)] = 2000

    def is_enabled(self) -> bool:
        if self.enabled is not None:
            return self.enabled
        return (c.FUNCTIONS_DIR / c.API_FUNCTION / "handler.py").is_file() and (
            c.FUNCTIONS_DIR / c.AUTHORIZER_FUNCTION / "handler.py"
        ).is_file()


class LiveConfig(_Model):
    # The live_clip state machine (cdk/stacks/live.py) is named this; the cameras' schedules
    # and the API address it as "arn:<partition>:states:<region>:<account>:stateMachine:<name>".
    live_clip_state_machine_name: str = "sightline-live-clip"
    # KVS streams the live role may read: "arn:...:kinesisvideo:...:stream/<prefix>*/*".
    kvs_stream_name_prefix: str = "sightline-"
    schedule_group_name: str = "sightline-cameras"


class OidcConfig(_Model):
    """The identity provider the web page signs people in with: the authorization-code flow
    with PKCE (a public client: no secret in the page). Empty: the page asks for a token.

    Register ``https://<the distribution's or web.domain_names' host>/`` as the client's
    redirect (and sign-out) URL; the token it returns must carry org_id/project_id claims.
    """

    provider_name: str = ""
    authorization_endpoint: Annotated[str, Field(pattern=r"^(https://\S+)?$")] = ""
    token_endpoint: Annotated[str, Field(pattern=r"^(https://\S+)?$")] = ""
    end_session_endpoint: Annotated[str, Field(pattern=r"^(https://\S+)?$")] = ""
    client_id: str = ""
    scopes: list[str] = ["openid", "email", "profile"]
    # Which token the API gets: its audience must be api.jwt_audience.
    token_field: Literal["id_token", "access_token"] = "id_token"

    @model_validator(mode="after")
    def _complete(self) -> OidcConfig:
        if self.client_id and not (self.authorization_endpoint and self.token_endpoint):
            raise ValueError("web.oidc needs authorization_endpoint and token_endpoint")
        return self


class WebConfig(_Model):
    """The web page: S3 + CloudFront (origin access control), the API under /v1/*."""

    enabled: bool = True
    oidc: OidcConfig = OidcConfig()
    price_class: Literal["PriceClass_100", "PriceClass_200", "PriceClass_All"] = "PriceClass_100"
    # A custom domain: names plus an ACM certificate in us-east-1 (CloudFront's region).
    domain_names: list[str] = []
    certificate_arn: str | None = None
    # ISO 3166-1 alpha-2 countries allowed to load the page; empty: everywhere.
    geo_allow: list[Annotated[str, Field(pattern=r"^[A-Z]{2}$")]] = []
    # A WAFv2 web ACL with CLOUDFRONT scope (created in us-east-1), by ARN.
    web_acl_arn: str | None = None
    # CloudFront keeps the page this long between deployments (which invalidate it anyway).
    cdn_max_age_seconds: Annotated[int, Field(ge=0, le=86400)] = 300
    log_expiry_days: Annotated[int, Field(ge=1)] = 90

    @model_validator(mode="after")
    def _domain(self) -> WebConfig:
        if bool(self.domain_names) != bool(self.certificate_arn):
            raise ValueError("web.domain_names and web.certificate_arn go together")
        return self


class EnvironmentConfig(_Model):
    """Everything that varies between dev, staging and prod."""

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9]{1,15}$")]
    # None: environment-agnostic stacks (the deploying credentials decide), or
    # CDK_DEFAULT_ACCOUNT / CDK_DEFAULT_REGION when the CLI sets them.
    account: Annotated[str | None, Field(pattern=r"^\d{12}$")] = None
    region: str | None = None
    log_retention_days: int = 30
    retain_data: bool = True
    table_prefix: str | None = None
    alarms: AlarmConfig = AlarmConfig()
    storage: StorageConfig = StorageConfig()
    search: SearchConfig = SearchConfig()
    codec: CodecConfig = CodecConfig()
    pipeline: PipelineConfig = PipelineConfig()
    bedrock: BedrockConfig = BedrockConfig()
    api: ApiConfig = ApiConfig()
    live: LiveConfig = LiveConfig()
    web: WebConfig = WebConfig()
    tags: dict[str, str] = {}

    @model_validator(mode="after")
    def _embedding_fits_the_index(self) -> EnvironmentConfig:
        if self.bedrock.embedder == "bedrock" and (
            self.search.text_dimensions not in TITAN_V2_DIMENSIONS
        ):
            raise ValueError(
                f"search.text_dimensions must be one of {TITAN_V2_DIMENSIONS} with the Titan "
                f"V2 embedder (it is {self.search.text_dimensions})"
            )
        return self

    @property
    def removal_policy(self) -> RemovalPolicy:
        """Data (buckets, tables, keys, log groups) is retained outside dev."""
        return RemovalPolicy.RETAIN if self.retain_data else RemovalPolicy.DESTROY

    @property
    def log_retention(self) -> logs.RetentionDays:
        return _retention(self.log_retention_days)

    @property
    def resource_prefix(self) -> str:
        """``sightline-<env>``: the prefix of every physical name the app chooses."""
        return f"{c.SERVICE}-{self.name}"

    @property
    def tables_prefix(self) -> str:
        return self.table_prefix or f"{self.resource_prefix}-"

    @property
    def stage_id(self) -> str:
        return f"{c.APP_PREFIX}-{self.name}"


_RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    731: logs.RetentionDays.TWO_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def _retention(days: int) -> logs.RetentionDays:
    try:
        return _RETENTION[days]
    except KeyError:
        allowed = sorted(_RETENTION)
        raise ValueError(f"log_retention_days must be one of {allowed}, not {days}") from None


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_environments(
    environments: Mapping[str, Any] | None, defaults: Mapping[str, Any] | None = None
) -> dict[str, EnvironmentConfig]:
    """Every environment of ``sightline:environments``, merged over ``sightline:defaults``."""
    if not environments:
        raise ValueError(f"cdk.json context has no '{c.CONTEXT_ENVIRONMENTS}' object")
    out: dict[str, EnvironmentConfig] = {}
    for name, raw in environments.items():
        merged = _merge(defaults or {}, {**(raw or {}), "name": name})
        cfg = EnvironmentConfig.model_validate(merged)
        _retention(cfg.log_retention_days)
        out[name] = cfg
    return out
