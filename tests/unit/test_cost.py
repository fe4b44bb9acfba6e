"""The cost model: its arithmetic on round numbers, the price file, the benchmark figures it
reads, and the CLI's JSON interface."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from sightline.services.cost import (
    BENCH_FILE,
    DEFAULT_FIGURES,
    ITEMS,
    PRICE_FILE,
    Assumptions,
    Deployment,
    Figures,
    PriceTable,
    Workload,
    asl_transitions,
    default_prices,
    estimate,
    format_cost_table,
    image_tokens,
    load_figures,
)

STEPS = ("probe", "chunk", "latent", "events", "index", "finalize")


def round_prices() -> PriceTable:
    prices = dict.fromkeys(default_prices().prices, 0.0)
    prices.update(
        {
            "lambda.arm64_gb_second": 0.00001,
            "lambda.x86_64_gb_second": 0.00002,
            "lambda.request": 0.0,
            "stepfunctions.standard_transition": 0.001,
            "opensearch_serverless.ocu_hour": 1.0,
            "s3.standard_gb_month": 0.02,
            "kvs.ingested_gb": 0.01,
            "kvs.consumed_getclip_gb": 0.01,
            "apigateway.rest_request": 0.001,
        }
    )
    return PriceTable(
        as_of="2000-01-01",
        region="test",
        basis="round",
        prices=prices,
        instance_hour={"gpu": 3.6},
        bedrock_per_1k={"m": (0.001, 0.002), "e": (0.0001, 0.0)},
    )


FIGS = Figures(
    source="test",
    clip="c",
    video_seconds=100.0,
    chunks=10,  # 10-s chunks
    fps=10.0,
    width=1280,
    height=720,
    step_seconds=dict.fromkeys(STEPS, 1.0),
    step_calls={},
    bytes_per_video_second={"source": 1000.0, "chunks": 1000.0, "tokens": 100.0},
)
DEPLOY = Deployment(
    memory_mb={k: 1769 for k in Deployment().memory_mb},  # one full vCPU: no CPU scaling
    codec_instance="gpu",
    codec_scale_in_cooldown_s=0.0,
    describe_model_id="m",
    embed_model_id="e",
    frames_per_chunk=1,
    frame_max_side=1280,
)
ZERO = Assumptions(
    gpu_ms_per_720p_frame=100.0,
    gpu_relative_speed={"gpu": 1.0},
    gpu_busy_share=1.0,
    scale_in_alarm_s=0.0,
    invoke_endpoint_s=0.0,
    callback_store_s=0.0,
    frame_sampling_s=0.0,
    converse_latency_s=0.0,
    titan_latency_s=0.0,
    s3_mb_per_s=1e12,
    description_output_tokens=0,
    events_output_tokens=0,
    events_retry_rate=0.0,
    embed_tokens_per_chunk=0,
    retry_fraction=0.0,
    dynamodb_writes_per_chunk=0.0,
    dynamodb_reads_per_chunk=0.0,
    s3_puts_per_chunk=0.0,
    s3_gets_per_chunk=0.0,
    events_per_chunk=0.0,
    log_bytes_per_invocation=0.0,
    log_bytes_per_transition=0.0,
    index_bytes_per_chunk=0.0,
    search_api_s=0.0,
    search_authorizer_s=0.0,
    search_embed_tokens=0,
)


def run(workload: Workload, **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "deployment": DEPLOY,
        "figures": FIGS,
        "assumptions": ZERO,
        "prices": round_prices(),
    }
    args.update(kw)
    return estimate(workload, **args)


def test_arithmetic_on_round_numbers() -> None:
    # Given two video-hours (720 chunks) and round prices
    r = run(Workload(hours=2.0, live_fraction=0.5, video_hours_per_month=100.0))
    items, d = r["items"], r["details"]
    assert r["chunks"] == 720
    # Lambda: probe and finalize 1 s each; chunk 1 s for the benchmark's 10 chunks, so 72 s
    # for 720; latent/events/index 1 s per chunk; at 1769 MB (1.7275 GB), $0.00001 per GB-s
    gb_s = (1 + 1 + 72 + 3 * 720) * 1769 / 1024
    assert d["lambda"]["gb_s"] == pytest.approx(gb_s)
    assert items["lambda"] == pytest.approx(gb_s * 0.00001)
    # Step Functions: the ASL's states per video and per chunk at $0.001
    per_video, per_chunk = asl_transitions()
    assert items["stepfunctions"] == pytest.approx((per_video + per_chunk * 720) * 0.001)
    # SageMaker: 7200 s × 10 fps × 0.1 GPU-s per 720p frame = 2 GPU-hours at $3.6
    assert d["sagemaker"]["billed_hours"] == pytest.approx(2.0)
    assert items["sagemaker"] == pytest.approx(7.2)
    # OpenSearch: 2 OCU × $1 × 730 h, 2 of 100 video-hours per month
    assert items["opensearch"] == pytest.approx(2 * 730 * 0.02)
    # S3: half the sources (uploads) + chunks + tokens, 1 month at $0.02/GB
    gb = (0.5 * 1000 + 1000 + 100) * 7200 / 1e9
    assert d["s3"]["gb"] == pytest.approx(gb)
    assert items["s3"] == pytest.approx(gb * 0.02)
    # KVS: the other half of the source bytes, ingested and read once at $0.01/GB each
    assert items["kvs"] == pytest.approx(0.5 * 1000 * 7200 / 1e9 * 0.02)
    assert r["total_usd"] == pytest.approx(sum(items.values()))
    assert r["per_video_hour_usd"] == pytest.approx(r["total_usd"] / 2)
    assert set(items) == set(ITEMS)


def test_bedrock_tokens_follow_frames_prompts_and_retries() -> None:
    base = run(Workload(hours=1.0))["details"]["bedrock"]
    # One 1280x720 frame at 1280 px: 1229 image tokens (w*h/750)
    assert base["image_tokens_per_chunk"] == image_tokens(1280, 720, 1280) == 1229
    two = run(Workload(hours=1.0), deployment=replace(DEPLOY, frames_per_chunk=2))
    # Each extra frame is sent twice (describe call and the events turn) per chunk
    extra = two["details"]["bedrock"]["input_tokens"] - base["input_tokens"]
    assert extra == pytest.approx(360 * 2 * 1229)
    retried = run(Workload(hours=1.0), assumptions=replace(ZERO, events_retry_rate=1.0))
    assert retried["details"]["bedrock"]["input_tokens"] > base["input_tokens"] * 1.4
    with pytest.raises(ValueError, match="no price"):
        run(Workload(hours=1.0), deployment=replace(DEPLOY, describe_model_id="unknown"))


def test_searches_are_costed_apart_from_indexing() -> None:
    a = run(Workload(hours=1.0))
    b = run(Workload(hours=1.0, searches=1000))
    assert b["items"]["apigateway"] == pytest.approx(1.0)
    assert b["search_usd"] == pytest.approx(1.0)
    assert b["per_video_hour_usd"] == pytest.approx(a["per_video_hour_usd"])
    assert b["per_1000_searches_usd"] == pytest.approx(1.0)


def test_lambda_time_scales_with_the_cpu_share_and_architecture() -> None:
    half = {k: 1769 // 2 for k in DEPLOY.memory_mb}
    r = run(Workload(hours=1.0), deployment=replace(DEPLOY, memory_mb=half))
    full = run(Workload(hours=1.0))
    # Half the memory, half the CPU: twice the seconds at half the GB: the same GB-s
    assert r["details"]["lambda"]["gb_s"] == pytest.approx(full["details"]["lambda"]["gb_s"], 1e-3)
    x86 = run(Workload(hours=1.0), deployment=replace(DEPLOY, lambda_architecture="x86_64"))
    assert x86["items"]["lambda"] == pytest.approx(2 * full["items"]["lambda"])


def test_the_scale_in_tail_is_paid_once_per_batch() -> None:
    tail = replace(DEPLOY, codec_scale_in_cooldown_s=3600.0)
    one = run(Workload(hours=1.0), deployment=tail)["details"]["sagemaker"]["billed_hours"]
    ten = run(Workload(hours=10.0), deployment=tail)["details"]["sagemaker"]["billed_hours"]
    assert one == pytest.approx(1.0 + 1.0) and ten == pytest.approx(10.0 + 1.0)


def test_price_file_is_dated_and_every_price_has_a_note() -> None:
    raw = json.loads(PRICE_FILE.read_text())
    assert raw["as_of"] == default_prices().as_of and raw["region"] == "us-east-1"
    groups = ("prices", "sagemaker_instance_hour", "bedrock_per_1k_tokens")
    notes = [v["note"] for group in groups for v in raw[group].values()]
    assert all(n.startswith(("checked", "unchecked")) for n in notes)
    p = default_prices()
    assert p.bedrock("us.amazon.nova-lite-v1:0") == p.bedrock("amazon.nova-lite-v1:0")
    assert p.bedrock("amazon.titan-embed-text-v2:0@512")[1] == 0.0
    with pytest.raises(ValueError, match="no price"):
        p.instance("ml.p5.48xlarge")


def test_asl_transitions_follow_the_state_machines() -> None:
    per_video, per_chunk = asl_transitions()
    # ingest: Probe, Chunk, ProcessChunks, Finalize, Done; per chunk: the Map iteration's
    # ProcessChunk and process_chunk's Encode, Analyze, Describe, Latent, Collect, Events, Index
    assert (per_video, per_chunk) == (5, 8)


def test_figures_come_from_the_last_benchmark_under_home(tmp_path: Path) -> None:
    assert load_figures(tmp_path) is DEFAULT_FIGURES
    report = {
        "clip": "plaza.mp4",
        "video_seconds": 40.0,
        "chunks": 4,
        "machine": "x86_64, 2 cores",
        "measured_at": "2026-11-22T04:00:00Z",
        "clip_info": {"fps": 25.0, "width": 1280, "height": 720},
        "steps": {
            "probe": {"calls": 1, "total_s": 0.3, "mean_s": 0.3},
            "chunk": {"calls": 1, "total_s": 2.0, "mean_s": 2.0},
            "index": {"calls": 4, "total_s": 0.4, "mean_s": 0.1},
            "encode": {"calls": 4, "total_s": 90.0, "mean_s": 22.5},
        },
        "stored_bytes": {"source": 4_000_000, "chunks": 3_000_000, "tokens": 40_000},
    }
    (tmp_path / BENCH_FILE).parent.mkdir(parents=True)
    (tmp_path / BENCH_FILE).write_text(json.dumps(report))
    f = load_figures(tmp_path)
    assert f.source.startswith("measured: ") and "2026-11-22T04:00:00Z" in f.source
    assert (f.fps, f.width, f.height, f.chunks) == (25.0, 1280, 720, 4)
    assert f.step_seconds["index"] == 0.1 and "encode" not in f.step_seconds
    assert f.bytes_per_video_second["source"] == 100_000.0
    r = estimate(Workload(hours=1.0), figures=f)
    assert r["figures"]["source"] == f.source


def test_defaults_give_a_labelled_estimate() -> None:
    r = estimate(Workload(hours=1.0))
    assert r["chunks"] == 360
    assert 0.3 < r["per_video_hour_usd"] < 10  # sanity, not a quote
    assert r["prices"]["as_of"] == default_prices().as_of
    text = format_cost_table(r)
    assert "per video-hour" in text and "figures: defaults" in text
    assert text.splitlines()[3].split()[0] in {"OpenSearch", "SageMaker", "Bedrock"}


def test_cli_json_interface(capsys: pytest.CaptureFixture[str], home: Path) -> None:
    from sightline_local.cli import main

    assert main(["cost", "--hours", "2", "--searches", "500", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["hours"] == 2.0 and out["searches"] == 500
    assert set(out["items"]) >= {"lambda", "stepfunctions", "sagemaker", "bedrock"}
    assert set(out["items"]) >= {"opensearch", "s3", "kvs"}
    assert out["total_usd"] == pytest.approx(sum(out["items"].values()), abs=1e-3)
    assert out["total_usd"] == pytest.approx(
        2 * out["per_video_hour_usd"] + out["search_usd"], abs=1e-3
    )


def test_cli_reads_a_cdk_environment(capsys: pytest.CaptureFixture[str], home: Path) -> None:
    from sightline_local.cli import main

    assert main(["cost", "--hours", "1", "--config", "dev", "--json"]) == 0
    dev = json.loads(capsys.readouterr().out)
    assert dev["deployment"] == "dev"
    assert dev["details"]["sagemaker"]["instance"] == "ml.g4dn.xlarge"
    assert dev["details"]["opensearch"]["ocus"] == 1.0  # no standby replicas in dev
    assert main(["cost", "--config", "nope"]) == 1
