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
# The web page's static files (served locally by `sightline up`, on AWS from S3).
WEB_DIR = REPO_ROOT / "sightline_local" / "web"
DEFAULT_LAYER_BUILD_DIR = "build/layers"
DEFAULT_MODEL_BUILD_DIR = "build/model"
INGEST_ASL = STATE_MACHINES_DIR / "ingest_video.asl.json"
PROCESS_CHUNK_ASL = STATE_MACHINES_DIR / "process_chunk.asl.json"
LIVE_CLIP_ASL = STATE_MACHINES_DIR / "live_clip.asl.json"

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
WEB_STACK = "Web"

# ----- storage ------------------------------------------------------------------------------
# Logical table names; the DynamoDB table is "<table_prefix><name>" (adapters/aws.py).
TABLES = (
    "videos",
    "manifests",
    "events",
    "cameras",
    "camera_windows",
    "idempotency",
    "audit",
    "api_keys",
    *("usage", "codec_jobs", "tenant_limits"),
)
# Written only by the pipeline's workers: Bedrock token use per call and tenant, the codec
# jobs waiting for their notice (InferenceId -> task token), per-tenant concurrency slots.
WORKER_TABLES = ("usage", "codec_jobs", "tenant_limits")
PIPELINE_TABLES = ("videos", "manifests", "events")
PARTITION_KEY = "pk"
SORT_KEY = "sk"
TTL_ATTRIBUTE = "expires_at"
TTL_TABLES = ("idempotency", "codec_jobs", "tenant_limits")
# Source uploads land at "<org>/<project>/videos/<video_id>/source/<file>" (sightline.keys).
SOURCE_KEY_WILDCARD = "*/videos/*/source/*"
# A camera's clips are its chunks: "<org>/<project>/videos/cam_<id>/derived/chunks/<n>.mp4"
# (sightline.keys.chunk with the camera id as the video id); live_fetch writes only these.
LIVE_CHUNK_KEY_WILDCARD = "*/videos/cam_*/derived/chunks/*"
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
# Subscribed to the codec endpoint's success/error SNS topics; completes the Encode task.
CODEC_CALLBACK_FUNCTION = "codec_callback"
# The steps of live_clip (cdk/stacks/live.py), started by the cameras' schedules.
LIVE_STEPS = ("live_plan", "live_fetch", "live_commit")

# ASL DefinitionSubstitutions: ${<Step>FunctionArn} and the nested state machine.
PROCESS_CHUNK_SUBSTITUTION = "ProcessChunkStateMachineArn"


def function_substitution(step: str) -> str:
    """``probe`` -> ``ProbeFunctionArn``, ``live_plan`` -> ``LivePlanFunctionArn``: the
    placeholder the ASL files use (``sightline_local.runtime._camel`` renders them locally)."""
    return "".join(part.capitalize() for part in step.split("_")) + "FunctionArn"


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
    # fail removes a video's documents from the index.
    "fail": (LAYER_CORE, LAYER_DEPS, LAYER_SEARCH),
    S3_TRIGGER_FUNCTION: (LAYER_CORE, LAYER_DEPS),
    INDEX_BOOTSTRAP_FUNCTION: (LAYER_CORE, LAYER_DEPS, LAYER_SEARCH),
    # The API searches the OpenSearch index (opensearch-py is in the search layer).
    API_FUNCTION: (LAYER_CORE, LAYER_DEPS, LAYER_SEARCH),
    AUTHORIZER_FUNCTION: (LAYER_CORE, LAYER_DEPS),
    CODEC_CALLBACK_FUNCTION: (LAYER_CORE, LAYER_DEPS),
    "live_plan": (LAYER_CORE, LAYER_DEPS),
    # ffmpeg joins the pieces of a window whose codec changed mid-window.
    "live_fetch": (LAYER_CORE, LAYER_DEPS, LAYER_MEDIA),
    "live_commit": (LAYER_CORE, LAYER_DEPS),
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
# Live cameras: the cameras API creates schedules that start live_clip.
ENV_SCHEDULER = "SIGHTLINE_SCHEDULER"
ENV_LIVE_CLIP_STATE_MACHINE_ARN = "SIGHTLINE_LIVE_CLIP_STATE_MACHINE_ARN"
ENV_LIVE_SCHEDULER_GROUP = "SIGHTLINE_LIVE_SCHEDULER_GROUP"
ENV_LIVE_SCHEDULER_ROLE_ARN = "SIGHTLINE_LIVE_SCHEDULER_ROLE_ARN"
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
# Which provider serves each model port on AWS (sightline.config.Settings).
ENV_DESCRIBER = "SIGHTLINE_DESCRIBER"
ENV_EMBEDDER = "SIGHTLINE_EMBEDDER"
ENV_INDEX = "SIGHTLINE_INDEX"
ENV_BEDROCK_DESCRIBE_MODEL_ID = "SIGHTLINE_BEDROCK_DESCRIBE_MODEL_ID"
ENV_BEDROCK_EMBED_MODEL_ID = "SIGHTLINE_BEDROCK_EMBED_MODEL_ID"
ENV_BEDROCK_EMBED_DIMENSIONS = "SIGHTLINE_BEDROCK_EMBED_DIMENSIONS"
ENV_SEARCH_TEXT_DIMENSIONS = "SIGHTLINE_SEARCH_TEXT_DIMENSIONS"
ENV_SEARCH_LATENT_DIMENSIONS = "SIGHTLINE_SEARCH_LATENT_DIMENSIONS"
# The codec's async requests and the per-tenant concurrency limits.
ENV_CODEC_REQUEST_TTL_SECONDS = "SIGHTLINE_CODEC_REQUEST_TTL_SECONDS"
ENV_TENANT_ENCODE_LIMIT = "SIGHTLINE_TENANT_ENCODE_LIMIT"
ENV_TENANT_DESCRIBE_LIMIT = "SIGHTLINE_TENANT_DESCRIBE_LIMIT"
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
