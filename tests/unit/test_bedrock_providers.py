"""Bedrock providers against botocore's Stubber: the real Converse and InvokeModel
request/response shapes (botocore validates both against the service model)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import boto3
import cv2
import numpy as np
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from sightline.adapters.local_tables import SqliteTableStore
from sightline.errors import TransientError
from sightline.models import ChunkRef, DetectedEvent
from sightline.ports import ClipDescription
from sightline.prompts import available, load_prompt
from sightline.providers.bedrock import (
    EVENTS_TOOL,
    BedrockDescriber,
    BedrockRequestError,
    EventReport,
    TitanEmbedder,
    events_tool_schema,
    split_description,
)
from sightline.providers.frames import (
    CONVERSE_IMAGE_LIMIT_BYTES,
    encode_jpeg,
    frame_positions,
    sample_frames,
)
from sightline.services.usage import TokenUsage, UsageRecorder

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
TENANT = "acme/site-1"


# ----- fixtures -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    out = tmp_path_factory.mktemp("clip") / "out.mp4"
    subprocess.run(
        [
            *("ffmpeg", "-v", "error", "-y", "-f", "lavfi"),
            *("-i", "testsrc2=size=160x120:rate=10", "-t", "2", "-pix_fmt", "yuv420p"),
            str(out),
        ],
        check=True,
    )
    return out


@pytest.fixture
def chunk() -> ChunkRef:
    return ChunkRef(tenant_id=TENANT, video_id="vid0001", index=3, t0=30.0, t1=32.0, key="k")


@pytest.fixture
def client() -> Any:
    return boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def usage(tmp_path: Path) -> UsageRecorder:
    return UsageRecorder(SqliteTableStore(tmp_path / "db.sqlite").table("usage"))


def capture(client: Any, operation: str) -> list[dict[str, Any]]:
    """Every request's parameters, as the caller passed them."""
    seen: list[dict[str, Any]] = []

    def handler(params: dict[str, Any], **_: Any) -> None:
        seen.append(params)

    client.meta.events.register(f"before-parameter-build.bedrock-runtime.{operation}", handler)
    return seen


def converse_reply(
    content: list[dict[str, Any]], *, stop: str = "end_turn", tokens: tuple[int, int] = (100, 20)
) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop,
        "usage": {
            "inputTokens": tokens[0],
            "outputTokens": tokens[1],
            "totalTokens": sum(tokens),
        },
        "metrics": {"latencyMs": 812},
    }


def tool_reply(data: Any, tokens: tuple[int, int] = (900, 60)) -> dict[str, Any]:
    block = {"toolUse": {"toolUseId": "tooluse_abc123", "name": EVENTS_TOOL, "input": data}}
    return converse_reply([block], stop="tool_use", tokens=tokens)


DESCRIPTION = converse_reply(
    [
        {
            "text": "Two people walk left to right across a plaza while a white van stays "
            "parked at the kerb.\nTags: person, vehicle, walking, outdoor"
        }
    ],
    tokens=(1200, 45),
)
GOOD_EVENTS = {
    "events": [
        {
            "type": "person",
            "start_s": 0.0,
            "end_s": 1.8,
            "confidence": 0.9,
            "bbox": [0.1, 0.2, 0.3, 0.9],
            "description": "two people walk across",
        },
        {"type": "Vehicle", "start_s": 0.0, "end_s": 2.0, "confidence": 0.7},
    ],
    "counts": {"person": 2, "vehicle": 1},
}


def describer(client: Any, usage: UsageRecorder | None = None, **kw: Any) -> BedrockDescriber:
    return BedrockDescriber(MODEL, client=client, usage=usage, frames_per_chunk=4, **kw)


# ----- frames and prompts ---------------------------------------------------------------


def test_frame_positions_are_evenly_spaced() -> None:
    assert frame_positions(20, 4) == [2, 7, 12, 17]
    assert frame_positions(3, 8) == [0, 1, 2]
    assert frame_positions(0, 4) == []


def test_sample_frames_from_synthetic_mp4(clip: Path) -> None:
    frames = sample_frames(clip, 4, max_side=128)
    assert [f.index for f in frames] == [2, 7, 12, 17]
    assert [f.t_s for f in frames] == [0.2, 0.7, 1.2, 1.7]
    for f in frames:
        assert (f.width, f.height) == (128, 96)
        img = cv2.imdecode(np.frombuffer(f.jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert img is not None and img.shape[:2] == (96, 128)
    # Different frames of a moving test pattern differ.
    assert len({f.jpeg for f in frames}) == 4


def test_encode_jpeg_resizes_to_long_side_and_byte_limit() -> None:
    noise = np.random.default_rng(0).integers(0, 255, (3000, 4000, 3), dtype=np.uint8)
    data, w, h = encode_jpeg(noise)
    assert (w, h) == (1568, 1176)
    assert len(data) < CONVERSE_IMAGE_LIMIT_BYTES
    small, w2, h2 = encode_jpeg(noise, max_bytes=200_000)
    assert len(small) <= 200_000 and w2 < 1568 and h2 < 1176
    _, w3, h3 = encode_jpeg(noise[:100, :50])  # never enlarged
    assert (w3, h3) == (50, 100)


def test_prompts_load_by_name_and_version() -> None:
    p = load_prompt("describe", "v1")
    assert p.id == "describe_v1" and "Tags:" in p.text
    assert "{{" not in p.render(frames=4, duration=10.0)
    assert {"describe_v1", "events_v1"} <= set(available())
    with pytest.raises(FileNotFoundError):
        load_prompt("describe", "v999")
    with pytest.raises(ValueError):
        load_prompt("../etc", "v1")


def test_split_description_and_tags() -> None:
    text = "A van is parked.\n\n**Tags:** Vehicle, parked, vehicle, outdoor."
    assert split_description(text) == ("A van is parked.", ["vehicle", "parked", "outdoor"])
    assert split_description("Nothing moves.") == ("Nothing moves.", [])


def test_events_tool_schema_comes_from_the_pydantic_model() -> None:
    schema = events_tool_schema()
    event = schema["properties"]["events"]["items"]
    assert "$ref" not in json.dumps(schema) and "prefixItems" not in json.dumps(schema)
    assert set(event["required"]) == {"type", "start_s", "end_s", "confidence"}
    assert "person" in event["properties"]["type"]["enum"]
    assert event["properties"]["bbox"]["type"] == "array"
    # Validation uses the very model the pipeline stores.
    report = EventReport.model_validate(GOOD_EVENTS)
    assert all(isinstance(e, DetectedEvent) for e in report.events)
    assert report.events[1].type == "vehicle"


# ----- describer ------------------------------------------------------------------------


def test_describe_sends_frames_and_forced_tool_and_records_usage(
    client: Any, clip: Path, chunk: ChunkRef, usage: UsageRecorder
) -> None:
    seen = capture(client, "Converse")
    with Stubber(client) as stub:
        stub.add_response(
            "converse",
            DESCRIPTION,
            {"modelId": MODEL, "messages": ANY, "inferenceConfig": ANY},
        )
        stub.add_response(
            "converse",
            tool_reply(GOOD_EVENTS),
            {"modelId": MODEL, "messages": ANY, "inferenceConfig": ANY, "toolConfig": ANY},
        )
        desc = describer(client, usage).describe(clip, chunk)
        stub.assert_no_pending_responses()

    first = seen[0]["messages"]
    assert len(first) == 1 and first[0]["role"] == "user"
    images = [b["image"] for b in first[0]["content"] if "image" in b]
    assert len(images) == 4
    assert all(i["format"] == "jpeg" and i["source"]["bytes"][:2] == b"\xff\xd8" for i in images)
    texts = [b["text"] for b in first[0]["content"] if "text" in b]
    assert texts[0] == "Frame at t=0.20 s:" and "2.0-second clip" in texts[-1]

    second = seen[1]
    assert [m["role"] for m in second["messages"]] == ["user", "assistant", "user"]
    assert second["toolConfig"]["toolChoice"] == {"tool": {"name": EVENTS_TOOL}}
    spec = second["toolConfig"]["tools"][0]["toolSpec"]
    assert spec["name"] == EVENTS_TOOL and spec["inputSchema"]["json"] == events_tool_schema()

    assert isinstance(desc, ClipDescription)
    assert desc.description.startswith("Two people walk")
    assert desc.tags == ["person", "vehicle", "walking", "outdoor"]
    assert [(e.type, e.confidence) for e in desc.events] == [("person", 0.9), ("vehicle", 0.7)]
    assert desc.events[0].bbox == (0.1, 0.2, 0.3, 0.9)
    assert desc.counts == {"person": 2, "vehicle": 1}
    assert desc.model == MODEL
    assert desc.details["input_tokens"] == 2100 and desc.details["output_tokens"] == 105
    assert desc.details["prompts"] == ["describe_v1", "events_v1"]
    assert "failure_reason" not in desc.details
    # What the pipeline stores round-trips into the events step's model.
    stored = json.loads(json.dumps([e.model_dump() for e in desc.events]))
    assert [DetectedEvent.model_validate(e) for e in stored] == desc.events

    totals = usage.totals(TENANT)
    ((day, model),) = totals
    assert model == MODEL and totals[(day, model)] == TokenUsage(2100, 105)
    calls = usage.table.query(TENANT)
    assert [c["call_id"] for c in calls] == ["vid0001-c00003#describe", "vid0001-c00003#events"]


@pytest.mark.parametrize(
    "bad",
    [
        '{"events": [{"type": "person", "start_s": 0',  # bad JSON in the tool input
        {"counts": {"person": 1}},  # missing events
        {"events": [{"type": "person", "start_s": 0, "end_s": 1}]},  # missing confidence
        {"events": [{"type": "person", "start_s": 0, "end_s": 1, "confidence": "high"}]},
        {"events": "none"},  # wrong type
        {"events": [{"type": "spaceship", "start_s": 0, "end_s": 1, "confidence": 0.5}]},
        {"events": [{"type": "person", "start_s": 2, "end_s": 1, "confidence": 1.5}]},
    ],
)
def test_malformed_events_are_retried_once_with_the_error(
    client: Any, clip: Path, chunk: ChunkRef, usage: UsageRecorder, bad: Any
) -> None:
    seen = capture(client, "Converse")
    with Stubber(client) as stub:
        stub.add_response("converse", DESCRIPTION)
        stub.add_response("converse", tool_reply(bad))
        stub.add_response("converse", tool_reply(GOOD_EVENTS))
        desc = describer(client, usage).describe(clip, chunk)
        stub.assert_no_pending_responses()
    retry = seen[2]["messages"]
    assert [m["role"] for m in retry] == ["user", "assistant", "user", "assistant", "user"]
    result = retry[-1]["content"][0]["toolResult"]
    assert result["toolUseId"] == "tooluse_abc123" and result["status"] == "error"
    assert "Invalid input" in result["content"][0]["text"]
    assert len(desc.events) == 2 and desc.details["events_attempts"] == 2
    assert "failure_reason" not in desc.details
    assert len(usage.table.query(TENANT)) == 3  # describe, events, events-retry


def test_events_malformed_twice_become_a_failure_reason_not_a_crash(
    client: Any, clip: Path, chunk: ChunkRef
) -> None:
    with Stubber(client) as stub:
        stub.add_response("converse", DESCRIPTION)
        stub.add_response("converse", tool_reply({"events": [{"type": "person"}]}))
        stub.add_response("converse", converse_reply([{"text": "I cannot do that."}]))
        desc = describer(client).describe(clip, chunk)
        stub.assert_no_pending_responses()
    assert desc.events == [] and desc.counts == {}
    assert desc.description.startswith("Two people walk")  # the description survives
    assert desc.details["failure_reason"].startswith("events: the reply did not call the tool")
    assert desc.details["events_attempts"] == 2


def test_detector_events_are_merged_with_model_events(
    client: Any, clip: Path, chunk: ChunkRef
) -> None:
    class FakeDetector:
        model = "fake-detector"

        def describe(self, clip: Path, chunk: ChunkRef) -> ClipDescription:
            return ClipDescription(
                description="det",
                tags=["motion"],
                events=[
                    DetectedEvent(type="person", start_s=0.5, end_s=2.0, confidence=0.6),
                    DetectedEvent(type="motion", start_s=0.0, end_s=2.0, confidence=0.8),
                ],
                counts={"person": 3},
                model="fake-detector",
                details={"frames_analysed": 4},
            )

    with Stubber(client) as stub:
        stub.add_response("converse", DESCRIPTION)
        stub.add_response("converse", tool_reply(GOOD_EVENTS))
        desc = describer(client, detector=FakeDetector()).describe(clip, chunk)
    by_type = {e.type: e for e in desc.events}
    assert sorted(by_type) == ["motion", "person", "vehicle"] and len(desc.events) == 3
    assert (by_type["person"].start_s, by_type["person"].end_s) == (0.0, 2.0)
    assert by_type["person"].confidence == 0.9
    assert desc.counts == {"person": 3, "vehicle": 1}
    assert "motion" in desc.tags and desc.details["detector"]["model"] == "fake-detector"


@pytest.mark.parametrize(
    "code", ["ThrottlingException", "ServiceUnavailableException", "ModelTimeoutException"]
)
def test_throttling_and_timeouts_are_transient(
    client: Any, clip: Path, chunk: ChunkRef, code: str
) -> None:
    with Stubber(client) as stub:
        stub.add_client_error("converse", service_error_code=code, http_status_code=429)
        with pytest.raises(TransientError, match=code):
            describer(client).describe(clip, chunk)


def test_throttled_events_call_is_transient_too(client: Any, clip: Path, chunk: ChunkRef) -> None:
    with Stubber(client) as stub:
        stub.add_response("converse", DESCRIPTION)
        stub.add_client_error("converse", service_error_code="ThrottlingException")
        with pytest.raises(TransientError):
            describer(client).describe(clip, chunk)


@pytest.mark.parametrize(
    ("code", "hint"),
    [("AccessDeniedException", "model access"), ("ValidationException", "invalid")],
)
def test_access_and_validation_errors_are_not_retryable(
    client: Any, clip: Path, chunk: ChunkRef, code: str, hint: str
) -> None:
    with Stubber(client) as stub:
        stub.add_client_error("converse", service_error_code=code, service_message="nope")
        with pytest.raises(BedrockRequestError, match=hint) as info:
            describer(client).describe(clip, chunk)
    assert not isinstance(info.value, TransientError) and info.value.code == code


def test_describer_rejects_bad_settings() -> None:
    with pytest.raises(ValueError):
        BedrockDescriber(MODEL, client=object(), frames_per_chunk=0)
    with pytest.raises(ValueError):
        BedrockDescriber(MODEL, client=object(), frame_max_side=4000)


# ----- embeddings -----------------------------------------------------------------------


def titan_body(vec: list[float], tokens: int = 7) -> dict[str, Any]:
    data = json.dumps({"embedding": vec, "inputTextTokenCount": tokens}).encode()
    return {"body": StreamingBody(io.BytesIO(data), len(data)), "contentType": "application/json"}


def test_titan_embedder_request_shape_and_model_id(client: Any) -> None:
    emb = TitanEmbedder(dim=256, client=client)
    assert emb.model_id == "amazon.titan-embed-text-v2:0@256" and emb.dim == 256
    vec = [0.0625] * 256
    with Stubber(client) as stub:
        for text in ("a person walks", "."):
            stub.add_response(
                "invoke_model",
                titan_body(vec),
                {
                    "modelId": "amazon.titan-embed-text-v2:0",
                    "body": json.dumps(
                        {"inputText": text, "dimensions": 256, "normalize": True}
                    ).encode(),
                    "contentType": "application/json",
                    "accept": "application/json",
                },
            )
        out = emb.embed(["a person walks", "   "])
        stub.assert_no_pending_responses()
    assert out == [vec, vec] and emb.input_tokens == 14
    assert emb.embed([]) == []


def test_titan_dimension_and_response_checks(client: Any) -> None:
    with pytest.raises(ValueError):
        TitanEmbedder(dim=384, client=client)
    emb = TitanEmbedder(dim=512, client=client)
    with Stubber(client) as stub:
        stub.add_response("invoke_model", titan_body([0.1] * 256))
        with pytest.raises(BedrockRequestError, match="expected 512"):
            emb.embed(["x"])


@pytest.mark.parametrize(
    ("code", "exc"),
    [
        ("ThrottlingException", TransientError),
        ("ServiceUnavailableException", TransientError),
        ("ModelTimeoutException", TransientError),
        ("AccessDeniedException", BedrockRequestError),
        ("ValidationException", BedrockRequestError),
    ],
)
def test_titan_error_mapping(client: Any, code: str, exc: type[Exception]) -> None:
    emb = TitanEmbedder(dim=1024, client=client)
    with Stubber(client) as stub:
        stub.add_client_error("invoke_model", service_error_code=code)
        with pytest.raises(exc):
            emb.embed(["x"])


# ----- usage ----------------------------------------------------------------------------


def test_usage_recorder_is_per_call_idempotent_and_sums_per_day_and_model(
    usage: UsageRecorder,
) -> None:
    d1, d2 = date(2026, 11, 1), date(2026, 11, 2)
    usage.record(TENANT, "m1", TokenUsage(10, 2), call_id="c1#describe", day=d1)
    usage.record(TENANT, "m1", TokenUsage(10, 2), call_id="c1#describe", day=d1)  # re-run
    usage.record(TENANT, "m1", TokenUsage(5, 1), call_id="c2#describe", day=d1)
    usage.record(TENANT, "m2", TokenUsage(7, 0), call_id="c1#embed", day=d2)
    usage.record("other/tenant", "m1", TokenUsage(99, 9), call_id="c1#describe", day=d1)
    assert usage.totals(TENANT) == {
        ("2026-11-01", "m1"): TokenUsage(15, 3),
        ("2026-11-02", "m2"): TokenUsage(7, 0),
    }
    assert usage.totals(TENANT, "2026-11-02") == {("2026-11-02", "m2"): TokenUsage(7, 0)}
    item = usage.table.get(TENANT, "2026-11-01#m1#c2#describe")
    assert item is not None and item["input_tokens"] == 5
    with pytest.raises(ValueError):
        usage.record(TENANT, "m1", TokenUsage(), call_id="")
    assert TokenUsage.from_converse({"inputTokens": 3, "outputTokens": 4}) == TokenUsage(3, 4)
