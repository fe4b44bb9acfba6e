"""What indexing H hours of video and running N searches costs on AWS, service by service.

Three inputs, each with its provenance carried into the answer:

* **Prices**: one file, ``aws_prices.json`` beside this module, with its date and a note per
  price saying whether it was checked against a pricing page or recorded unchecked.
* **Figures** (per-chunk resources): measured by the local benchmark. ``sightline bench
  --json`` stores its report at ``$SIGHTLINE_HOME/bench/pipeline.json``; when that file is
  absent, ``DEFAULT_FIGURES`` (the session-1 run on vtest.avi, recorded with its date and
  machine) stand in. The local figures are CPU seconds of the same handler code on this
  machine; Lambda time is derived from them by the Lambda CPU share (below).
* **Assumptions**: what no local run can measure (a Bedrock call's latency, GPU time per
  frame on an A10G, token counts of frames), each labelled as an estimate and its source.

A deployment (``Deployment``) is what ``cdk.json`` says for an environment (``--config ENV``:
Lambda memory and architecture, codec instance, search backend, Bedrock models) or, by
default, the CDK defaults. Nothing here calls AWS.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

PRICE_FILE = Path(__file__).with_name("aws_prices.json")
BENCH_FILE = Path("bench") / "pipeline.json"  # under SIGHTLINE_HOME
STATE_MACHINES = Path(__file__).resolve().parents[5] / "state_machines"
# A Lambda function gets one full vCPU at 1,769 MB and a proportional share below it.
LAMBDA_FULL_VCPU_MB = 1769
ITEMS = (
    "lambda",
    "stepfunctions",
    "sagemaker",
    "bedrock",
    "opensearch",
    "s3",
    "kvs",
    "dynamodb",
    "apigateway",
    "messaging",
    "cloudwatch",
)


# ----- prices --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PriceTable:
    as_of: str
    region: str
    basis: str
    prices: dict[str, float]
    instance_hour: dict[str, float]
    bedrock_per_1k: dict[str, tuple[float, float]]
    path: str = ""

    @classmethod
    def load(cls, path: Path = PRICE_FILE) -> PriceTable:
        raw = json.loads(path.read_text())
        return cls(
            as_of=raw["as_of"],
            region=raw["region"],
            basis=raw["basis"],
            prices={k: float(v["usd"]) for k, v in raw["prices"].items()},
            instance_hour={k: float(v["usd"]) for k, v in raw["sagemaker_instance_hour"].items()},
            bedrock_per_1k={
                k: (float(v["input"]), float(v["output"]))
                for k, v in raw["bedrock_per_1k_tokens"].items()
            },
            path=str(path),
        )

    def __getitem__(self, key: str) -> float:
        return self.prices[key]

    def bedrock(self, model_id: str) -> tuple[float, float]:
        """(input, output) USD per 1,000 tokens; ``model@dim`` and region prefixes allowed."""
        base = model_id.split("@", 1)[0]
        for prefix in ("us.", "eu.", "apac.", "global."):
            base = base.removeprefix(prefix)
        if base not in self.bedrock_per_1k:
            known = ", ".join(sorted(self.bedrock_per_1k))
            raise ValueError(f"no price for {base!r} in {self.path}; known: {known}")
        return self.bedrock_per_1k[base]

    def instance(self, instance_type: str) -> float:
        if instance_type not in self.instance_hour:
            known = ", ".join(sorted(self.instance_hour))
            raise ValueError(f"no price for {instance_type!r} in {self.path}; known: {known}")
        return self.instance_hour[instance_type]


@cache
def default_prices() -> PriceTable:
    return PriceTable.load()


# ----- the deployment ------------------------------------------------------------------------


# Lambda memory per function, as cdk/config.py sets it by default.
DEFAULT_MEMORY_MB = {
    "probe": 1024,
    "chunk": 3008,
    "encode": 512,
    "codec_callback": 1024,
    "describe": 3008,
    "latent": 1024,
    "events": 512,
    "index": 2048,
    "finalize": 512,
    "api": 1024,
    "authorizer": 512,
}


@dataclass(frozen=True)
class Deployment:
    """What varies between environments (cdk.json); defaults are the CDK defaults."""

    name: str = "defaults"
    lambda_architecture: str = "arm64"
    memory_mb: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_MEMORY_MB))
    codec_instance: str = "ml.g5.xlarge"
    codec_scale_in_cooldown_s: float = 600.0
    search_kind: str = "serverless"
    standby_replicas: bool = True
    describe_model_id: str = "amazon.nova-lite-v1:0"
    embed_model_id: str = "amazon.titan-embed-text-v2:0"
    frames_per_chunk: int = 4
    frame_max_side: int = 768
    chunk_seconds: float = 10.0
    kvs_retention_hours: float = 24.0

    @classmethod
    def from_cdk(cls, cfg: Any) -> Deployment:
        """From a ``cdk.config.EnvironmentConfig`` (duck-typed: the core layer has no CDK)."""
        memory = dict(DEFAULT_MEMORY_MB)
        for name in memory:
            memory[name] = int(cfg.pipeline.function(name).memory_mb)
        models = list(cfg.bedrock.model_ids)
        describe = next((m for m in models if "embed" not in m), cls.describe_model_id)
        embed = next((m for m in models if "embed" in m), cls.embed_model_id)
        return cls(
            name=cfg.name,
            lambda_architecture=cfg.pipeline.architecture,
            memory_mb=memory,
            codec_instance=cfg.codec.instance_type,
            codec_scale_in_cooldown_s=float(cfg.codec.scale_in_cooldown_seconds),
            search_kind=cfg.search.kind,
            standby_replicas=bool(cfg.search.standby_replicas),
            describe_model_id=describe,
            embed_model_id=embed,
            chunk_seconds=float(cfg.pipeline.chunk_seconds),
        )


# ----- measured figures ----------------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    """Per-chunk resource figures of the local benchmark, and where they come from."""

    source: str
    clip: str
    video_seconds: float
    chunks: int
    fps: float
    width: int
    height: int
    # Mean handler seconds per call on the benchmark machine: probe/chunk/finalize are one
    # call per video; the rest one per chunk.
    step_seconds: dict[str, float]
    step_calls: dict[str, int]
    # Stored bytes per second of video, by kind of object.
    bytes_per_video_second: dict[str, float]

    @classmethod
    def from_bench(cls, report: dict[str, Any], source: str) -> Figures:
        steps = report.get("steps") or {}
        clip = report.get("clip_info") or {}
        stored = report.get("stored_bytes") or {}
        seconds = float(report.get("video_seconds") or DEFAULT_FIGURES.video_seconds)
        return cls(
            source=source,
            clip=str(report.get("clip", "?")),
            video_seconds=seconds,
            chunks=int(report.get("chunks") or DEFAULT_FIGURES.chunks),
            fps=float(clip.get("fps") or DEFAULT_FIGURES.fps),
            width=int(clip.get("width") or DEFAULT_FIGURES.width),
            height=int(clip.get("height") or DEFAULT_FIGURES.height),
            # A step the report lacks keeps the recorded default.
            step_seconds={
                **DEFAULT_FIGURES.step_seconds,
                **{
                    k: float(v["mean_s"])
                    for k, v in steps.items()
                    if k in DEFAULT_FIGURES.step_seconds
                },
            },
            step_calls={k: int(v["calls"]) for k, v in steps.items()},
            bytes_per_video_second=(
                {k: float(v) / seconds for k, v in stored.items()}
                if stored
                else dict(DEFAULT_FIGURES.bytes_per_video_second)
            ),
        )


# The session-1 benchmark (`sightline bench --json` on vtest.avi, 2-core machine, quiet,
# 2026-11-22): probe 0.19 s, chunk 4.64 s for 8 chunks, latent 0.12 s / 8, events 0.01 s / 8,
# index 0.51 s / 8, finalize 0.003 s. Stored bytes: the source file's size (8,131,690 B for
# 79.5 s); the chunks re-encoded at about the source rate; tokens 0.0148 bpp at 768x576
# 10 fps (issue-3 RD table: stick 0.5); side info and JSON records by estimate.
DEFAULT_FIGURES = Figures(
    source="defaults: session-1 `sightline bench --json` on vtest.avi (2026-11-22, 2 cores); "
    "bytes from the clip's size and the codec's RD table",
    clip="vtest.avi",
    video_seconds=79.5,
    chunks=8,
    fps=10.0,
    width=768,
    height=576,
    step_seconds={
        "probe": 0.19,
        "chunk": 4.64,
        "latent": 0.015,
        "events": 0.00125,
        "index": 0.064,
        "finalize": 0.003,
    },
    step_calls={"probe": 1, "chunk": 1, "latent": 8, "events": 8, "index": 8, "finalize": 1},
    bytes_per_video_second={
        "source": 8_131_690 / 79.5,
        "chunks": 8_131_690 / 79.5,
        "tokens": 0.0148 * 768 * 576 * 10 / 8,
        "sideinfo": 2_000.0 / 10,
        "records": 6_000.0 / 10,
    },
)


def load_figures(home: Path | None) -> Figures:
    """The last stored benchmark report under ``home``, else the recorded defaults."""
    if home is not None:
        path = home / BENCH_FILE
        if path.is_file():
            report = json.loads(path.read_text())
            when = report.get("measured_at", "?")
            return Figures.from_bench(
                report, f"measured: {path} ({when}, {report.get('machine', '?')})"
            )
    return DEFAULT_FIGURES


# ----- assumptions (estimates, each with its reason) ------------------------------------------


@dataclass(frozen=True)
class Assumptions:
    # Codec on the GPU: the blueprint's encode target, 20 ms per 720p frame on a GPU (not
    # measured: no GPU here), scaled by pixels; T4 (g4dn) taken as half an A10G's speed.
    gpu_ms_per_720p_frame: float = 20.0
    gpu_relative_speed: dict[str, float] = field(
        default_factory=lambda: {"ml.g5.xlarge": 1.0, "ml.g6.xlarge": 0.9, "ml.g4dn.xlarge": 0.5}
    )
    gpu_busy_share: float = 0.8  # busy share of billed time while scaled out
    # After the backlog empties, target tracking waits the scale-in cooldown plus about five
    # minutes of alarm evaluation before the instance goes: billed idle, once per batch.
    scale_in_alarm_s: float = 300.0
    # Lambda time that no local step measures (network waits), seconds per call.
    invoke_endpoint_s: float = 0.3  # InvokeEndpointAsync + codec_jobs put + slot
    callback_store_s: float = 0.5  # S3 get output + 2 puts + manifest + SendTaskSuccess
    frame_sampling_s: float = 0.25  # 4 frames of a 10-s chunk (session-1, measured locally)
    converse_latency_s: float = 2.5  # one Converse call with 4 frames (estimate)
    titan_latency_s: float = 0.15  # one InvokeModel for an embedding (estimate)
    s3_mb_per_s: float = 90.0  # Lambda <-> S3 transfer rate (estimate)
    # Bedrock tokens: frames by Anthropic's published w×h/750 estimate (used for Nova too);
    # prompts by 4 characters per token from the prompt files; outputs by estimate.
    description_output_tokens: int = 150
    events_output_tokens: int = 220
    events_retry_rate: float = 0.05  # malformed tool output retried once
    embed_tokens_per_chunk: int = 150  # the description
    # Step Functions retries and Lambda retries.
    retry_fraction: float = 0.02
    # Writes and reads per chunk (jobs, slots, manifest, events, video, usage) and S3 calls.
    dynamodb_writes_per_chunk: float = 16.0
    dynamodb_reads_per_chunk: float = 12.0
    s3_puts_per_chunk: float = 7.0
    s3_gets_per_chunk: float = 12.0
    events_per_chunk: float = 2.0  # EventDetected on the bus
    log_bytes_per_invocation: float = 1_500.0
    log_bytes_per_transition: float = 3_000.0  # ALL-level logging with execution data
    # OpenSearch document: 384 + 1,024 float dimensions and about 2 KB of text and fields.
    index_bytes_per_chunk: float = (384 + 1024) * 4 + 2_000.0
    # A search request: API Lambda time, an authorizer call per 10 requests (its result is
    # cached), a query embedding, an audit write and a key read.
    search_api_s: float = 0.25
    search_authorizer_s: float = 0.05
    search_authorizer_share: float = 0.1
    search_embed_tokens: int = 12


@dataclass(frozen=True)
class Workload:
    hours: float = 1.0
    searches: int = 0
    # Share of the video that arrives from cameras through KVS (GetClip) rather than as
    # uploaded files (kept as the source object in S3).
    live_fraction: float = 1.0
    storage_months: float = 1.0
    # Video-hours indexed per month, which share the search collection's fixed capacity.
    video_hours_per_month: float = 500.0


# ----- the estimate --------------------------------------------------------------------------


def asl_transitions() -> tuple[int, int]:
    """(per video, per chunk) states entered on the success path, read from the ASL files:
    ingest_video's own states, and process_chunk's plus the Map iteration that starts it.
    (Step Functions bills each state entered, retries included.)"""

    def walk(machine: dict[str, Any]) -> int:
        states, name, count = machine["States"], machine["StartAt"], 0
        while name:
            state = states[name]
            count += 1
            for branch in state.get("Branches", []):
                count += walk(branch)
            name = state.get("Next") or state.get("Default")
        return count

    ingest_file = STATE_MACHINES / "ingest_video.asl.json"
    chunk_file = STATE_MACHINES / "process_chunk.asl.json"
    if not (ingest_file.is_file() and chunk_file.is_file()):
        return 5, 8  # the counts of the files as of 2026-11 (installed without them)
    ingest = json.loads(ingest_file.read_text())
    chunk = json.loads(chunk_file.read_text())
    iteration = walk(ingest["States"]["ProcessChunks"]["ItemProcessor"])
    return walk(ingest), walk(chunk) + iteration


def _prompt_tokens() -> tuple[int, int]:
    """(describe, events + tool schema) prompt tokens at 4 characters a token."""
    from sightline.prompts import load_prompt
    from sightline.providers.bedrock import events_tool_config

    describe = len(load_prompt("describe", "v1").text)
    events = len(load_prompt("events", "v1").text) + len(json.dumps(events_tool_config()))
    return math.ceil(describe / 4), math.ceil(events / 4)


def image_tokens(width: int, height: int, max_side: int) -> int:
    scale = min(1.0, max_side / max(width, height))
    return math.ceil(round(width * scale) * round(height * scale) / 750)


def estimate(
    workload: Workload,
    *,
    deployment: Deployment | None = None,
    figures: Figures = DEFAULT_FIGURES,
    assumptions: Assumptions | None = None,
    prices: PriceTable | None = None,
) -> dict[str, Any]:
    """USD by service for indexing ``workload.hours`` of video and ``workload.searches``."""
    d = deployment or Deployment()
    a = assumptions or Assumptions()
    p = prices or default_prices()
    if workload.hours <= 0 or d.chunk_seconds <= 0:
        raise ValueError("hours and chunk_seconds must be positive")
    video_s = workload.hours * 3600.0
    chunks = math.ceil(video_s / d.chunk_seconds)
    retry = 1.0 + a.retry_fraction
    bps = figures.bytes_per_video_second
    source_bytes = bps.get("source", 0.0) * video_s
    chunk_bytes = bps.get("chunks", 0.0) * video_s
    detail: dict[str, dict[str, Any]] = {}
    usd: dict[str, float] = dict.fromkeys(ITEMS, 0.0)

    # -- Lambda: local handler seconds scaled by the Lambda CPU share, plus network waits.
    def cpu(step: str, seconds: float) -> float:
        return seconds * max(1.0, LAMBDA_FULL_VCPU_MB / d.memory_mb[step])

    local = figures.step_seconds
    scale_chunk = d.chunk_seconds / (figures.video_seconds / max(1, figures.chunks))
    xfer = 1.0 / (a.s3_mb_per_s * 1e6)
    per_call = {
        # one call per video
        "probe": cpu("probe", local["probe"]) + source_bytes * xfer,
        "chunk": cpu("chunk", local["chunk"] / max(1, figures.chunks) * scale_chunk) * chunks
        + (source_bytes + chunk_bytes) * xfer,
        "finalize": cpu("finalize", local["finalize"]),
        # one call per chunk
        "encode": a.invoke_endpoint_s,
        "codec_callback": a.callback_store_s,
        "describe": a.frame_sampling_s
        + 2 * a.converse_latency_s * (1 + a.events_retry_rate / 2)
        + chunk_bytes / chunks * xfer,
        "latent": cpu("latent", local["latent"] * scale_chunk),
        "events": cpu("events", local["events"]),
        "index": cpu("index", local["index"]) + a.titan_latency_s,
    }
    gb_s_by_step = {}
    requests = 0.0
    for step, secs in per_call.items():
        calls = 1 if step in ("probe", "chunk", "finalize") else chunks
        gb_s_by_step[step] = calls * secs * d.memory_mb[step] / 1024 * retry
        requests += calls * retry
    gb_s_price = p[f"lambda.{d.lambda_architecture}_gb_second"]
    search_gb_s = workload.searches * (
        a.search_api_s * d.memory_mb["api"] / 1024
        + a.search_authorizer_share * a.search_authorizer_s * d.memory_mb["authorizer"] / 1024
    )
    search_requests = workload.searches * (1 + a.search_authorizer_share)
    gb_s = sum(gb_s_by_step.values()) + search_gb_s
    usd["lambda"] = gb_s * gb_s_price + (requests + search_requests) * p["lambda.request"]
    detail["lambda"] = {
        "gb_s": gb_s,
        "gb_s_by_step": gb_s_by_step,
        "seconds_per_call": per_call,
        "requests": requests + search_requests,
        "architecture": d.lambda_architecture,
        "search_gb_s": search_gb_s,
    }

    # -- Step Functions Standard: states entered, from the ASL files, plus retries.
    per_video_t, per_chunk_t = asl_transitions()
    transitions = (per_video_t + per_chunk_t * chunks) * retry
    usd["stepfunctions"] = transitions * p["stepfunctions.standard_transition"]
    detail["stepfunctions"] = {
        "transitions": transitions,
        "per_video": per_video_t,
        "per_chunk": per_chunk_t,
    }

    # -- SageMaker async: GPU time for the frames, billed at the busy share, plus the
    # scale-in tail of one batch.
    pixels = figures.width * figures.height / (1280 * 720)
    speed = a.gpu_relative_speed.get(d.codec_instance, 1.0)
    gpu_s = video_s * figures.fps * a.gpu_ms_per_720p_frame / 1000 * pixels / speed
    tail_s = d.codec_scale_in_cooldown_s + a.scale_in_alarm_s
    billed_h = (gpu_s / a.gpu_busy_share + tail_s) / 3600
    usd["sagemaker"] = billed_h * p.instance(d.codec_instance)
    detail["sagemaker"] = {
        "instance": d.codec_instance,
        "gpu_busy_hours": gpu_s / 3600,
        "billed_hours": billed_h,
        "scale_in_tail_hours": tail_s / 3600,
    }

    # -- Bedrock: the describe call (frames + prompt), the events call (the same
    # conversation + description + events prompt and tool schema), retries, embeddings.
    describe_prompt, events_prompt = _prompt_tokens()
    img = image_tokens(figures.width, figures.height, d.frame_max_side) * d.frames_per_chunk
    describe_in = img + describe_prompt
    events_in = describe_in + a.description_output_tokens + events_prompt
    retry_in = events_in + a.events_output_tokens + 80
    tokens_in = chunks * (describe_in + events_in + a.events_retry_rate * retry_in) * retry
    tokens_out = (
        chunks
        * (a.description_output_tokens + a.events_output_tokens * (1 + a.events_retry_rate))
        * retry
    )
    pin, pout = p.bedrock(d.describe_model_id)
    describe_usd = tokens_in / 1000 * pin + tokens_out / 1000 * pout
    embed_tokens = chunks * a.embed_tokens_per_chunk * retry
    search_embed = workload.searches * a.search_embed_tokens
    embed_usd = (embed_tokens + search_embed) / 1000 * p.bedrock(d.embed_model_id)[0]
    usd["bedrock"] = describe_usd + embed_usd
    detail["bedrock"] = {
        "describe_model_id": d.describe_model_id,
        "input_tokens": tokens_in,
        "output_tokens": tokens_out,
        "image_tokens_per_chunk": img,
        "describe_usd": describe_usd,
        "embed_model_id": d.embed_model_id,
        "embed_tokens": embed_tokens + search_embed,
        "embed_usd": embed_usd,
    }

    # -- OpenSearch: this batch's share of the collection's fixed capacity for the month,
    # plus the documents' storage.
    index_gb = chunks * a.index_bytes_per_chunk / 1e9
    if d.search_kind == "serverless":
        ocus = 2.0 if d.standby_replicas else 1.0  # 0.5 indexing + 0.5 search, ×2 with standby
        month_usd = ocus * p["opensearch_serverless.ocu_hour"] * 730
        share = workload.hours / workload.video_hours_per_month
        usd["opensearch"] = (
            month_usd * share
            + index_gb * workload.storage_months * p["opensearch_serverless.storage_gb_month"]
        )
        detail["opensearch"] = {"kind": "serverless", "ocus": ocus, "month_usd": month_usd}
    else:
        detail["opensearch"] = {"kind": "domain", "note": "domain instances are not priced"}
    detail["opensearch"].update(
        {"share_of_month": workload.hours / workload.video_hours_per_month, "index_gb": index_gb}
    )

    # -- S3: what stays (uploaded sources, chunks, tokens, side info, records) and requests.
    upload = 1.0 - workload.live_fraction
    kept = {
        "source": source_bytes * upload,
        "chunks": chunk_bytes,
        **{k: bps.get(k, 0.0) * video_s for k in ("tokens", "sideinfo", "records")},
    }
    s3_gb = sum(kept.values()) / 1e9
    s3_requests = chunks * (
        a.s3_puts_per_chunk * p["s3.put_request"] + a.s3_gets_per_chunk * p["s3.get_request"]
    )
    usd["s3"] = s3_gb * workload.storage_months * p["s3.standard_gb_month"] + s3_requests * retry
    detail["s3"] = {"gb": s3_gb, "gb_by_kind": {k: v / 1e9 for k, v in kept.items()}}

    # -- KVS: camera video ingested, kept for the stream's retention, read once by GetClip.
    kvs_gb = source_bytes * workload.live_fraction / 1e9
    usd["kvs"] = kvs_gb * (
        p["kvs.ingested_gb"]
        + p["kvs.stored_gb_month"] * d.kvs_retention_hours / 730
        + p["kvs.consumed_getclip_gb"]
    )
    detail["kvs"] = {"gb": kvs_gb, "retention_hours": d.kvs_retention_hours}

    # -- DynamoDB on demand.
    writes = chunks * a.dynamodb_writes_per_chunk * retry + workload.searches
    reads = chunks * a.dynamodb_reads_per_chunk * retry + workload.searches
    usd["dynamodb"] = (
        writes * p["dynamodb.write_request_unit"] + reads * p["dynamodb.read_request_unit"]
    )
    detail["dynamodb"] = {"write_units": writes, "read_units": reads}

    # -- API Gateway (searches), SNS (one codec notice per chunk), EventBridge, logs.
    usd["apigateway"] = workload.searches * p["apigateway.rest_request"]
    events = chunks * (a.events_per_chunk + 0) + 1
    usd["messaging"] = chunks * p["sns.publish"] + events * p["eventbridge.custom_event"]
    log_gb = (
        (requests + search_requests) * a.log_bytes_per_invocation
        + transitions * a.log_bytes_per_transition
    ) / 1e9
    usd["cloudwatch"] = log_gb * p["cloudwatch.logs_ingested_gb"]
    detail["apigateway"] = {"requests": workload.searches}
    detail["messaging"] = {"sns_publishes": chunks, "bus_events": events}
    detail["cloudwatch"] = {"log_gb": log_gb}

    # Searches' share, to report indexing per video-hour on its own.
    search_usd = (
        search_gb_s * gb_s_price
        + search_requests * p["lambda.request"]
        + search_embed / 1000 * p.bedrock(d.embed_model_id)[0]
        + workload.searches * (p["dynamodb.write_request_unit"] + p["dynamodb.read_request_unit"])
        + usd["apigateway"]
        + workload.searches
        * (1 + a.search_authorizer_share)
        * a.log_bytes_per_invocation
        / 1e9
        * p["cloudwatch.logs_ingested_gb"]
    )
    total = sum(usd.values())
    indexing = total - search_usd
    return {
        "hours": workload.hours,
        "searches": workload.searches,
        "total_usd": total,
        "per_video_hour_usd": indexing / workload.hours,
        "search_usd": search_usd,
        "per_1000_searches_usd": search_usd / workload.searches * 1000
        if workload.searches
        else None,
        "chunks": chunks,
        "items": usd,
        "details": detail,
        "deployment": asdict(d),
        "workload": asdict(workload),
        "figures": {"source": figures.source, "clip": figures.clip},
        "prices": {"as_of": p.as_of, "region": p.region, "file": p.path, "basis": p.basis},
    }


def with_overrides(deployment: Deployment, **overrides: Any) -> Deployment:
    return replace(deployment, **{k: v for k, v in overrides.items() if v is not None})


_LABELS = {
    "lambda": "Lambda (GB-s + requests)",
    "stepfunctions": "Step Functions Standard",
    "sagemaker": "SageMaker async codec",
    "bedrock": "Bedrock (describe, events, embed)",
    "opensearch": "OpenSearch (capacity share)",
    "s3": "S3 (storage + requests)",
    "kvs": "Kinesis Video Streams",
    "dynamodb": "DynamoDB on demand",
    "apigateway": "API Gateway (searches)",
    "messaging": "SNS + EventBridge",
    "cloudwatch": "CloudWatch Logs",
}


def _quantity(name: str, r: dict[str, Any]) -> str:
    c = r["details"].get(name, {})
    if name == "lambda":
        return f"{c['gb_s']:,.0f} GB-s ({c['architecture']}), {c['requests']:,.0f} requests"
    if name == "stepfunctions":
        return f"{c['transitions']:,.0f} transitions"
    if name == "sagemaker":
        return (
            f"{c['billed_hours']:.2f} h {c['instance']} (busy {c['gpu_busy_hours']:.2f} h, "
            f"scale-in tail {c['scale_in_tail_hours']:.2f} h)"
        )
    if name == "bedrock":
        return (
            f"{c['input_tokens']:,.0f} in / {c['output_tokens']:,.0f} out tokens "
            f"({c['describe_model_id']}), {c['embed_tokens']:,.0f} embed tokens"
        )
    if name == "opensearch" and c.get("kind") == "serverless":
        return f"{c['ocus']:g} OCU × {c['share_of_month']:.1%} of a month"
    if name == "s3":
        return f"{c['gb']:.2f} GB-month"
    if name == "kvs":
        return f"{c['gb']:.2f} GB in, {c['retention_hours']:g} h kept, read once"
    if name == "dynamodb":
        return f"{c['write_units']:,.0f} WRU, {c['read_units']:,.0f} RRU"
    if name == "apigateway":
        return f"{c['requests']:,} requests"
    if name == "messaging":
        return f"{c['sns_publishes']:,} notices, {c['bus_events']:,.0f} events"
    if name == "cloudwatch":
        return f"{c['log_gb'] * 1000:.1f} MB of logs"
    return ""


def format_cost_table(r: dict[str, Any]) -> str:
    """A fixed-width table of ``estimate``'s answer, for the CLI."""
    total = r["total_usd"] or 1.0
    head = f"{'item':<34} {'USD':>10} {'share':>6}  quantity"
    rows = [
        f"{r['hours']:g} video-hour(s), {r['searches']:,} searches, {r['chunks']:,} chunks; "
        f"deployment: {r['deployment']['name']}",
        head,
        "-" * 100,
    ]
    for name, value in sorted(r["items"].items(), key=lambda kv: -kv[1]):
        rows.append(
            f"{_LABELS.get(name, name):<34} {value:>10.4f} {value / total:>6.1%}  "
            f"{_quantity(name, r)}"
        )
    rows.append("-" * 100)
    rows.append(f"{'total':<34} {r['total_usd']:>10.4f}")
    rows.append(f"{'per video-hour (indexing)':<34} {r['per_video_hour_usd']:>10.4f}")
    if r["per_1000_searches_usd"] is not None:
        rows.append(f"{'per 1,000 searches':<34} {r['per_1000_searches_usd']:>10.4f}")
    rows.append(f"figures: {r['figures']['source']}")
    rows.append(
        f"prices: {r['prices']['file']} ({r['prices']['region']}, {r['prices']['as_of']}; "
        "each price says whether it was checked)"
    )
    return "\n".join(rows)
