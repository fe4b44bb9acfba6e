"""What one video-hour costs on AWS, broken down by service.

Every price is a constant in ``PRICES`` below: LIST PRICES, us-east-1, on-demand, as
recorded on ``PRICES_AS_OF`` from memory of the public AWS pricing pages, not fetched.
They change and differ by region: check them before quoting a figure. Quantities
(step times, tokens, bytes) are parameters of ``CostParams``; their defaults are labelled
estimates and should be replaced with measured values (step times from local runs,
scaled by ``lambda_time_scale``; token counts from the ``usage`` table).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

PRICES_AS_OF = "2026-11-22"
PRICES_NOTE = (
    f"list prices, us-east-1, on-demand, recorded {PRICES_AS_OF}; to be checked against the "
    "AWS pricing pages before use"
)


@dataclass(frozen=True)
class Prices:
    lambda_gb_s_arm64: float = 0.0000133334  # USD per GB-second
    lambda_gb_s_x86_64: float = 0.0000166667
    lambda_per_million_requests: float = 0.20
    sfn_standard_per_1k_transitions: float = 0.025
    sagemaker_g5_xlarge_per_hour: float = 1.408  # ml.g5.xlarge, real-time/async inference
    s3_standard_gb_month: float = 0.023
    opensearch_serverless_ocu_hour: float = 0.24
    # USD per 1,000 tokens: (input, output), on-demand.
    bedrock_per_1k_tokens: dict[str, tuple[float, float]] = field(
        default_factory=lambda: {
            "anthropic.claude-3-haiku-20240307-v1:0": (0.00025, 0.00125),
            "anthropic.claude-3-5-sonnet-20240620-v1:0": (0.003, 0.015),
            "amazon.nova-lite-v1:0": (0.00006, 0.00024),
            "amazon.nova-pro-v1:0": (0.0008, 0.0032),
            "amazon.titan-embed-text-v2:0": (0.00002, 0.0),
        }
    )

    def bedrock(self, model_id: str) -> tuple[float, float]:
        base = model_id.split("@", 1)[0]
        if base not in self.bedrock_per_1k_tokens:
            known = ", ".join(sorted(self.bedrock_per_1k_tokens))
            raise ValueError(f"no price for {base!r}; known: {known}")
        return self.bedrock_per_1k_tokens[base]


PRICES = Prices()

# Lambda memory per step (MB), as cdk/config.py sets them.
DEFAULT_MEMORY_MB = {
    "probe": 1024,
    "chunk": 3008,
    "encode": 512,
    "describe": 3008,
    "latent": 1024,
    "events": 512,
    "index": 2048,
    "finalize": 512,
}
PER_VIDEO_STEPS = ("probe", "chunk", "finalize")
PER_CHUNK_STEPS = ("encode", "describe", "latent", "events", "index")


def claude_image_tokens(width: int, height: int) -> int:
    """Anthropic's published estimate for an image: width × height / 750."""
    return math.ceil(width * height / 750)


@dataclass(frozen=True)
class CostParams:
    """Quantities for one video; defaults are estimates (labelled), not measurements."""

    video_seconds: float = 3600.0
    chunk_seconds: float = 10.0
    lambda_architecture: str = "arm64"
    memory_mb: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_MEMORY_MB))
    # Seconds per invocation (per-chunk steps) or per video (probe, finalize); "chunk" is
    # seconds per chunk cut. Estimates; replace with measured local times.
    step_seconds: dict[str, float] = field(
        default_factory=lambda: {
            "probe": 4.0,
            "chunk": 0.4,
            "encode": 2.0,  # plus the GPU encode time it waits for (below)
            # 0.25 s to sample 4 frames of a 10-s 768×576 chunk (measured locally) + two
            # Converse calls of ~3 s each (estimate).
            "describe": 7.0,
            "latent": 1.0,
            "events": 0.5,
            "index": 0.8,
            "finalize": 1.0,
        }
    )
    lambda_time_scale: float = 1.0  # Lambda time / local time for the same step
    encode_wait_in_lambda: bool = True  # the encode Lambda waits on the async endpoint
    # SageMaker async codec.
    encode_seconds_per_video_second: float = 0.25  # GPU seconds per video second (estimate)
    sagemaker_utilisation: float = 0.8  # busy share of billed instance time (scale to zero)
    # Step Functions Standard: states entered (ingest: Probe, Chunk, Map, Finalize, Done;
    # per chunk: the Map's ProcessChunk + Encode, Analyze, Describe, Latent, Collect,
    # Events, Index).
    transitions_per_video: int = 5
    transitions_per_chunk: int = 8
    retry_fraction: float = 0.02  # extra transitions and calls from retries
    # Bedrock.
    describe_model_id: str = "anthropic.claude-3-haiku-20240307-v1:0"
    embed_model_id: str = "amazon.titan-embed-text-v2:0@512"
    frames_per_chunk: int = 4
    tokens_per_image: int = claude_image_tokens(768, 432)  # 768-px frames of 16:9 video
    describe_prompt_tokens: int = 350  # prompt text + frame captions
    events_prompt_tokens: int = 900  # events prompt + tool schema
    description_output_tokens: int = 120
    events_output_tokens: int = 250
    events_retry_rate: float = 0.05  # share of chunks whose events call is repeated
    embed_tokens_per_chunk: int = 120
    # Storage and search.
    token_bytes_per_video_second: float = 32_000.0  # ≈ x264 crf28 on vtest (0.062 bpp)
    other_bytes_per_chunk: float = 16_000.0  # analysis + latent JSON, manifest
    storage_months: float = 1.0
    opensearch_ocus: float = 2.0  # minimum: 1 indexing + 1 search OCU
    video_hours_per_month: float = 500.0  # how many video-hours share the collection

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> CostParams:
        """Take what a ``Settings``-like object has (missing fields keep their defaults)."""
        values: dict[str, Any] = {}
        mapping = {
            "chunk_seconds": "chunk_seconds",
            "frames_per_chunk": "bedrock_frames_per_chunk",
            "describe_model_id": "bedrock_describe_model_id",
        }
        for ours, theirs in mapping.items():
            if getattr(settings, theirs, None) is not None:
                values[ours] = getattr(settings, theirs)
        model = getattr(settings, "bedrock_embed_model_id", None)
        dim = getattr(settings, "bedrock_embed_dimensions", None)
        if model and dim:
            values["embed_model_id"] = f"{model}@{dim}"
        side = getattr(settings, "bedrock_frame_max_side", None)
        if side:
            values["tokens_per_image"] = claude_image_tokens(side, round(side * 9 / 16))
        return replace(cls(), **{**values, **overrides})


def cost_per_video_hour(params: CostParams | None = None, prices: Prices = PRICES) -> dict:
    """USD per video-hour by service, with the quantities behind each figure."""
    p = params or CostParams()
    if p.video_seconds <= 0 or p.chunk_seconds <= 0:
        raise ValueError("video_seconds and chunk_seconds must be positive")
    hours = p.video_seconds / 3600.0
    chunks = math.ceil(p.video_seconds / p.chunk_seconds)
    retry = 1.0 + p.retry_fraction

    # Lambda: GB-seconds per step.
    gb_s_price = (
        prices.lambda_gb_s_arm64 if p.lambda_architecture == "arm64" else prices.lambda_gb_s_x86_64
    )
    encode_gpu_s_per_chunk = p.encode_seconds_per_video_second * p.chunk_seconds
    gb_s: dict[str, float] = {}
    requests = 0.0
    for step in PER_VIDEO_STEPS + PER_CHUNK_STEPS:
        secs = p.step_seconds[step] * p.lambda_time_scale
        if step == "encode" and p.encode_wait_in_lambda:
            secs += encode_gpu_s_per_chunk
        if step == "chunk":
            n, secs = 1, secs * chunks  # one invocation cuts every chunk
        else:
            n = 1 if step in PER_VIDEO_STEPS else chunks
        gb_s[step] = n * secs * p.memory_mb[step] / 1024 * retry
        requests += n * retry
    lambda_gb_s = sum(gb_s.values())
    lambda_usd = lambda_gb_s * gb_s_price + requests / 1e6 * prices.lambda_per_million_requests

    # Step Functions Standard.
    transitions = (p.transitions_per_video + p.transitions_per_chunk * chunks) * retry
    sfn_usd = transitions / 1000 * prices.sfn_standard_per_1k_transitions

    # SageMaker async GPU time (billed instance time = busy time / utilisation).
    gpu_hours = p.encode_seconds_per_video_second * p.video_seconds / 3600 / p.sagemaker_utilisation
    sagemaker_usd = gpu_hours * prices.sagemaker_g5_xlarge_per_hour

    # Bedrock: describe call, events call (the same frames again, plus the description),
    # events retries (the events input again plus the bad reply), embeddings.
    image_tokens = p.frames_per_chunk * p.tokens_per_image
    describe_in = image_tokens + p.describe_prompt_tokens
    events_in = describe_in + p.description_output_tokens + p.events_prompt_tokens
    retry_in = events_in + p.events_output_tokens + 60
    in_tokens = chunks * (describe_in + events_in + p.events_retry_rate * retry_in) * retry
    out_tokens = (
        chunks
        * (p.description_output_tokens + p.events_output_tokens * (1 + p.events_retry_rate))
        * retry
    )
    price_in, price_out = prices.bedrock(p.describe_model_id)
    describe_usd = in_tokens / 1000 * price_in + out_tokens / 1000 * price_out
    embed_tokens = chunks * p.embed_tokens_per_chunk * retry
    embed_usd = embed_tokens / 1000 * prices.bedrock(p.embed_model_id)[0]

    # S3: tokens and derived records kept for storage_months.
    stored_gb = p.token_bytes_per_video_second * p.video_seconds + p.other_bytes_per_chunk * chunks
    stored_gb /= 1e9
    s3_usd = stored_gb * p.storage_months * prices.s3_standard_gb_month

    # OpenSearch Serverless: this video's share of the collection's month.
    ocu_month_usd = p.opensearch_ocus * prices.opensearch_serverless_ocu_hour * 730
    opensearch_usd = ocu_month_usd * hours / p.video_hours_per_month

    components: dict[str, dict[str, Any]] = {
        "lambda": {
            "usd": lambda_usd,
            "gb_s": lambda_gb_s,
            "gb_s_by_step": gb_s,
            "requests": requests,
        },
        "step_functions": {"usd": sfn_usd, "transitions": transitions},
        "sagemaker": {"usd": sagemaker_usd, "gpu_hours": gpu_hours, "instance": "ml.g5.xlarge"},
        "bedrock_describe": {
            "usd": describe_usd,
            "model_id": p.describe_model_id,
            "input_tokens": in_tokens,
            "output_tokens": out_tokens,
            "image_tokens_per_chunk": image_tokens,
        },
        "bedrock_embed": {"usd": embed_usd, "model_id": p.embed_model_id, "tokens": embed_tokens},
        "s3": {"usd": s3_usd, "gb": stored_gb, "months": p.storage_months},
        "opensearch": {
            "usd": opensearch_usd,
            "ocus": p.opensearch_ocus,
            "video_hours_per_month": p.video_hours_per_month,
        },
    }
    # Normalise to one video-hour.
    for c in components.values():
        c["usd"] = c["usd"] / hours
    total = sum(c["usd"] for c in components.values())
    return {
        "per": "video-hour",
        "video_seconds": p.video_seconds,
        "chunks": chunks,
        "components": components,
        "total_usd": total,
        "prices_note": PRICES_NOTE,
        "params": asdict(p),
    }


_LABELS = {
    "lambda": "Lambda (GB-s + requests)",
    "step_functions": "Step Functions Standard",
    "sagemaker": "SageMaker async (ml.g5.xlarge)",
    "bedrock_describe": "Bedrock describe + events",
    "bedrock_embed": "Bedrock embeddings",
    "s3": "S3 storage",
    "opensearch": "OpenSearch Serverless share",
}


def _quantity(name: str, c: dict[str, Any]) -> str:
    if name == "lambda":
        return f"{c['gb_s']:,.0f} GB-s, {c['requests']:,.0f} requests"
    if name == "step_functions":
        return f"{c['transitions']:,.0f} transitions"
    if name == "sagemaker":
        return f"{c['gpu_hours']:.3f} GPU-h"
    if name == "bedrock_describe":
        return f"{c['input_tokens']:,.0f} in / {c['output_tokens']:,.0f} out tokens"
    if name == "bedrock_embed":
        return f"{c['tokens']:,.0f} tokens"
    if name == "s3":
        return f"{c['gb']:.3f} GB × {c['months']:g} month"
    if name == "opensearch":
        return f"{c['ocus']:g} OCU / {c['video_hours_per_month']:g} video-h per month"
    return ""


def format_cost_table(result: dict) -> str:
    """A fixed-width table of ``cost_per_video_hour``'s result, for the CLI."""
    total = result["total_usd"] or 1.0
    rows = [f"{'component':<32} {'USD/video-h':>12} {'share':>6}  quantity (per video)"]
    rows.append("-" * len(rows[0]) + "-" * 24)
    for name, c in result["components"].items():
        rows.append(
            f"{_LABELS.get(name, name):<32} {c['usd']:>12.4f} {c['usd'] / total:>6.1%}  "
            f"{_quantity(name, c)}"
        )
    rows.append("-" * len(rows[1]))
    rows.append(f"{'total':<32} {result['total_usd']:>12.4f} {1:>6.0%}")
    rows.append(f"{result['chunks']} chunks; prices: {result['prices_note']}")
    return "\n".join(rows)
