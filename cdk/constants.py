"""Every construct id, resource name part, path and environment-variable name of the CDK app.

Kept in one place so that stacks, tests and the runtime configuration
(``layers/core/python/sightline/config.py``) agree on spelling.
"""

from __future__ import annotations

from pathlib import Path

SERVICE = "sightline"
APP_PREFIX = "Sightline"

# ----- paths (all relative to the repository root) -------------------------------------------
REPO_ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = REPO_ROOT / "functions"
CORE_LAYER_DIR = REPO_ROOT / "layers" / "core"
STATE_MACHINES_DIR = REPO_ROOT / "state_machines"
CODEC_PACKAGE_DIR = REPO_ROOT / "sagemaker_models"
CODEC_WEIGHTS_DIR = CODEC_PACKAGE_DIR / "codec" / "weights"
CORE_LIBRARY_DIR = CORE_LAYER_DIR / "python" / "sightline"
DEFAULT_LAYER_BUILD_DIR = "build/layers"
DEFAULT_MODEL_BUILD_DIR = "build/model"
INGEST_ASL = STATE_MACHINES_DIR / "ingest_video.asl.json"
PROCESS_CHUNK_ASL = STATE_MACHINES_DIR / "process_chunk.asl.json"

# ----- cdk.json context keys -----------------------------------------------------------------
CONTEXT_ENVIRONMENTS = "sightline:environments"
CONTEXT_DEFAULTS = "sightline:defaults"
CONTEXT_SELECTED_ENV = "env"

# ----- stacks (ids inside a stage; the stack name is "<Stage>-<Id>") -------------------------
STORAGE_STACK = "Storage"
SEARCH_STACK = "Search"
MODELS_STACK = "Models"
PIPELINE_STACK = "Pipeline"
API_STACK = "Api"
LIVE_STACK = "Live"
OBSERVABILITY_STACK = "Observability"

# ----- storage ------------------------------------------------------------------------------
# Logical table names; the DynamoDB table is "<table_prefix><name>" (adapters/aws.py).
TABLES = ("videos", "manifests", "events", "cameras", "idempotency", "audit", "api_keys")
PIPELINE_TABLES = ("videos", "manifests", "events")
PARTITION_KEY = "pk"
SORT_KEY = "sk"
TTL_ATTRIBUTE = "expires_at"
TTL_TABLES = ("idempotency",)
# Source uploads land at "<org>/<project>/videos/<video_id>/source/<file>" (sightline.keys).
SOURCE_KEY_WILDCARD = "*/videos/*/source/*"
# SageMaker async transfer objects: written by the endpoint, deleted by the encode step.
CODEC_TRANSFER_PREFIX = "codec/"
CODEC_OUTPUT_PREFIX = "codec/async-output/"
CODEC_FAILURE_PREFIX = "codec/async-failure/"

# ----- pipeline -----------------------------------------------------------------------------
LAMBDA_HANDLER = "handler.lambda_handler"
# One Lambda per folder in functions/ (the step handlers the ASL files call).
PIPELINE_STEPS = (
    "probe",
    "chunk",
    "encode",
    "describe",
    "latent",
    "events",
    "index",
    "finalize",
    "fail",
)
INGEST_STEPS = ("probe", "chunk", "finalize", "fail")
PROCESS_CHUNK_STEPS = ("encode", "describe", "latent", "events", "index")
S3_TRIGGER_FUNCTION = "s3_trigger"
INDEX_BOOTSTRAP_FUNCTION = "index_bootstrap"
API_FUNCTION = "api"
AUTHORIZER_FUNCTION = "authorizer"

# ASL DefinitionSubstitutions: ${<Step>FunctionArn} and the nested state machine.
PROCESS_CHUNK_SUBSTITUTION = "ProcessChunkStateMachineArn"


def function_substitution(step: str) -> str:
    """``probe`` -> ``ProbeFunctionArn`` (the placeholder the ASL files use)."""
    return f"{step.capitalize()}FunctionArn"


# The layers a function loads, by name: "core" is layers/core; the others are built by
# cdk/build_layers.py. Lambda caps a function and its layers at 250 MiB unzipped.
LAYER_CORE = "core"
LAYER_DEPS = "deps"
LAYER_MEDIA = "media"
LAYER_VISION = "vision"
LAYER_EMBED = "embed"
LAYER_SEARCH = "search"
BUILT_LAYERS = (LAYER_DEPS, LAYER_MEDIA, LAYER_VISION, LAYER_EMBED, LAYER_SEARCH)
FUNCTION_LAYERS: dict[str, tuple[str, ...]] = {
    "probe": (LAYER_CORE, LAYER_DEPS, LAYER_MEDIA),
    "chunk": (LAYER_CORE, LAYER_DEPS, LAYER_MEDIA),
    "encode": (LAYER_CORE, LAYER_DEPS),
    "describe": (LAYER_CORE, LAYER_DEPS, LAYER_VISION),
    "latent": (LAYER_CORE, LAYER_DEPS),
    "events": (LAYER_CORE, LAYER_DEPS),
    "index": (LAYER_CORE, LAYER_DEPS, LAYER_EMBED, LAYER_SEARCH),
    "finalize": (LAYER_CORE, LAYER_DEPS),
    "fail": (LAYER_CORE, LAYER_DEPS),
    S3_TRIGGER_FUNCTION: (LAYER_CORE, LAYER_DEPS),
    INDEX_BOOTSTRAP_FUNCTION: (LAYER_CORE, LAYER_DEPS, LAYER_SEARCH),
    API_FUNCTION: (LAYER_CORE, LAYER_DEPS),
    AUTHORIZER_FUNCTION: (LAYER_CORE, LAYER_DEPS),
}

# ----- environment variables (read by sightline.config.Settings and Powertools) ---------------
ENV_BLOBS = "SIGHTLINE_BLOBS"
ENV_TABLES = "SIGHTLINE_TABLES"
ENV_ORCHESTRATOR = "SIGHTLINE_ORCHESTRATOR"
ENV_CODEC = "SIGHTLINE_CODEC"
ENV_BUS = "SIGHTLINE_BUS"
ENV_HOME = "SIGHTLINE_HOME"
ENV_REGION = "SIGHTLINE_REGION"
ENV_BUCKET = "SIGHTLINE_BUCKET"
ENV_TABLE_PREFIX = "SIGHTLINE_TABLE_PREFIX"
ENV_CODEC_ENDPOINT_NAME = "SIGHTLINE_CODEC_ENDPOINT_NAME"
ENV_EVENT_BUS_NAME = "SIGHTLINE_EVENT_BUS_NAME"
ENV_INGEST_STATE_MACHINE_ARN = "SIGHTLINE_INGEST_STATE_MACHINE_ARN"
ENV_CHUNK_SECONDS = "SIGHTLINE_CHUNK_SECONDS"
ENV_CODEC_TIMEOUT_SECONDS = "SIGHTLINE_CODEC_TIMEOUT_SECONDS"
ENV_FFMPEG = "SIGHTLINE_FFMPEG"
ENV_FFPROBE = "SIGHTLINE_FFPROBE"
ENV_THREADS = "SIGHTLINE_THREADS"
ENV_UPLOAD_MODE = "SIGHTLINE_UPLOAD_MODE"
ENV_JWT_ISSUER = "SIGHTLINE_JWT_ISSUER"
ENV_JWT_AUDIENCE = "SIGHTLINE_JWT_AUDIENCE"
ENV_JWKS_URL = "SIGHTLINE_JWKS_URL"
ENV_SEARCH_ENDPOINT = "SIGHTLINE_SEARCH_ENDPOINT"
ENV_SEARCH_INDEX = "SIGHTLINE_SEARCH_INDEX"
ENV_SEARCH_SERVICE = "SIGHTLINE_SEARCH_SERVICE"
ENV_BEDROCK_MODEL_IDS = "SIGHTLINE_BEDROCK_MODEL_IDS"
ENV_POWERTOOLS_SERVICE_NAME = "POWERTOOLS_SERVICE_NAME"
ENV_POWERTOOLS_LOG_LEVEL = "POWERTOOLS_LOG_LEVEL"
ENV_POWERTOOLS_METRICS_NAMESPACE = "POWERTOOLS_METRICS_NAMESPACE"
# Index bootstrap (functions/index_bootstrap).
ENV_INDEX_DIMENSIONS = "SIGHTLINE_INDEX_DIMENSIONS"
# Lambda's writable folder; Settings.home must point there.
LAMBDA_HOME = "/tmp/sightline"
LAYER_BIN = "/opt/bin"

# ----- search -------------------------------------------------------------------------------
SEARCH_INDEX = "chunks"
TEXT_EMBEDDING_FIELD = "text_embedding"
LATENT_EMBEDDING_FIELD = "latent_embedding"

# ----- Step Functions .sync:2 -----------------------------------------------------------------
# The managed rule Step Functions creates to watch nested executions it started.
SFN_SYNC_RULE = "StepFunctionsGetEventsForStepFunctionsExecutionRule"

# ----- observability ------------------------------------------------------------------------
METRICS_NAMESPACE = "Sightline"
