"""cost_per_video_hour: the arithmetic, checked by hand on round numbers."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest

from sightline.services.cost import (
    PRICES,
    PRICES_AS_OF,
    CostParams,
    Prices,
    claude_image_tokens,
    cost_per_video_hour,
    format_cost_table,
)

STEPS = ("probe", "chunk", "finalize", "encode", "describe", "latent", "events", "index")

ROUND_PRICES = Prices(
    lambda_gb_s_arm64=0.00001,
    lambda_gb_s_x86_64=0.00002,
    lambda_per_million_requests=0.2,
    sfn_standard_per_1k_transitions=0.025,
    sagemaker_g5_xlarge_per_hour=1.0,
    s3_standard_gb_month=0.02,
    opensearch_serverless_ocu_hour=0.25,
    bedrock_per_1k_tokens={"m": (0.001, 0.002), "e": (0.0001, 0.0)},
)


def round_params(**kw: Any) -> CostParams:
    base = CostParams(
        video_seconds=7200.0,  # two hours: results are per hour, so halves
        chunk_seconds=100.0,  # 72 chunks
        memory_mb=dict.fromkeys(STEPS, 1024),
        step_seconds=dict.fromkeys(STEPS, 1.0),
        lambda_time_scale=2.0,
        encode_wait_in_lambda=False,
        encode_seconds_per_video_second=0.5,
        sagemaker_utilisation=1.0,
        transitions_per_video=5,
        transitions_per_chunk=8,
        retry_fraction=0.0,
        describe_model_id="m",
        embed_model_id="e@256",
        frames_per_chunk=2,
        tokens_per_image=100,
        describe_prompt_tokens=50,
        events_prompt_tokens=30,
        description_output_tokens=10,
        events_output_tokens=20,
        events_retry_rate=0.0,
        embed_tokens_per_chunk=10,
        token_bytes_per_video_second=1000.0,
        other_bytes_per_chunk=0.0,
        storage_months=1.0,
        opensearch_ocus=2.0,
        video_hours_per_month=100.0,
    )
    return replace(base, **kw)


def test_arithmetic_on_round_numbers() -> None:
    r = cost_per_video_hour(round_params(), ROUND_PRICES)
    c = r["components"]
    assert r["chunks"] == 72
    # Lambda: probe + finalize 1 s each, chunk 1 s × 72 chunks, 5 per-chunk steps × 72;
    # all × 2 (time scale) at 1 GB.
    gb_s = (1 + 1 + 72 + 5 * 72) * 2.0
    requests = 3 + 5 * 72
    assert c["lambda"]["gb_s"] == pytest.approx(gb_s)
    assert c["lambda"]["requests"] == requests
    assert c["lambda"]["usd"] == pytest.approx((gb_s * 0.00001 + requests * 0.2 / 1e6) / 2)
    # Step Functions: 5 + 8 × 72 transitions.
    assert c["step_functions"]["usd"] == pytest.approx((5 + 8 * 72) / 1000 * 0.025 / 2)
    # SageMaker: 0.5 GPU-s per video-s × 7200 s = 1 GPU-hour at $1.
    assert c["sagemaker"]["gpu_hours"] == pytest.approx(1.0)
    assert c["sagemaker"]["usd"] == pytest.approx(0.5)
    # Bedrock: describe in = 2×100 + 50 = 250; events in = 250 + 10 + 30 = 290.
    tin, tout = 72 * (250 + 290), 72 * (10 + 20)
    assert c["bedrock_describe"]["input_tokens"] == tin
    assert c["bedrock_describe"]["output_tokens"] == tout
    assert c["bedrock_describe"]["usd"] == pytest.approx((tin * 0.001 + tout * 0.002) / 1000 / 2)
    assert c["bedrock_embed"]["usd"] == pytest.approx(72 * 10 * 0.0001 / 1000 / 2)
    # S3: 1000 B/s × 7200 s = 7.2 GB for a month at $0.02.
    assert c["s3"]["gb"] == pytest.approx(0.0072)
    assert c["s3"]["usd"] == pytest.approx(0.0072 * 0.02 / 2)
    # OpenSearch: 2 OCU × $0.25 × 730 h shared by 100 video-hours.
    assert c["opensearch"]["usd"] == pytest.approx(2 * 0.25 * 730 / 100)
    assert r["total_usd"] == pytest.approx(sum(x["usd"] for x in c.values()))


def test_encode_wait_retries_and_x86() -> None:
    base = cost_per_video_hour(round_params(), ROUND_PRICES)["components"]
    r = cost_per_video_hour(round_params(encode_wait_in_lambda=True), ROUND_PRICES)
    # The encode Lambda waits 0.5 × 100 s per chunk for the GPU.
    extra = r["components"]["lambda"]["gb_s_by_step"]["encode"]
    assert extra - base["lambda"]["gb_s_by_step"]["encode"] == pytest.approx(72 * 50)
    x86 = cost_per_video_hour(round_params(lambda_architecture="x86_64"), ROUND_PRICES)
    assert x86["components"]["lambda"]["usd"] > base["lambda"]["usd"]
    retried = cost_per_video_hour(round_params(retry_fraction=0.1), ROUND_PRICES)
    assert retried["components"]["step_functions"]["usd"] == pytest.approx(
        base["step_functions"]["usd"] * 1.1
    )
    r2 = cost_per_video_hour(round_params(events_retry_rate=1.0), ROUND_PRICES)
    # Every chunk repeats the events call: input 290 + 20 (bad reply) + 60 (error text).
    assert r2["components"]["bedrock_describe"]["input_tokens"] == 72 * (250 + 290 + 370)


def test_per_video_hour_is_independent_of_video_length_for_per_chunk_costs() -> None:
    one = cost_per_video_hour(round_params(video_seconds=3600.0), ROUND_PRICES)
    two = cost_per_video_hour(round_params(video_seconds=7200.0), ROUND_PRICES)
    for name in ("sagemaker", "bedrock_describe", "s3", "opensearch"):
        assert one["components"][name]["usd"] == pytest.approx(two["components"][name]["usd"])


def test_defaults_and_prices_are_labelled() -> None:
    r = cost_per_video_hour()
    assert r["chunks"] == 360 and r["per"] == "video-hour"
    assert PRICES_AS_OF in r["prices_note"] and "list prices" in r["prices_note"]
    assert 0.5 < r["total_usd"] < 10  # sanity, not a quote
    assert claude_image_tokens(768, 432) == 443
    with pytest.raises(ValueError, match="no price"):
        cost_per_video_hour(CostParams(describe_model_id="unknown.model"), PRICES)


def test_from_settings_reads_what_is_there() -> None:
    s = SimpleNamespace(
        chunk_seconds=5.0,
        bedrock_frames_per_chunk=6,
        bedrock_describe_model_id="amazon.nova-lite-v1:0",
        bedrock_embed_model_id="amazon.titan-embed-text-v2:0",
        bedrock_embed_dimensions=1024,
        bedrock_frame_max_side=512,
    )
    p = CostParams.from_settings(s, storage_months=12.0)
    assert (p.chunk_seconds, p.frames_per_chunk, p.storage_months) == (5.0, 6, 12.0)
    assert p.embed_model_id == "amazon.titan-embed-text-v2:0@1024"
    assert p.tokens_per_image == claude_image_tokens(512, 288)
    assert CostParams.from_settings(SimpleNamespace()) == CostParams()


def test_format_cost_table() -> None:
    text = format_cost_table(cost_per_video_hour(round_params(), ROUND_PRICES))
    lines = text.splitlines()
    assert lines[0].startswith("component") and "USD/video-h" in lines[0]
    assert any(line.startswith("SageMaker async") and "0.5000" in line for line in lines)
    assert any(line.startswith("total") for line in lines)
    assert "to be checked" in lines[-1]
