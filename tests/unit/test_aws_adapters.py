"""The AWS adapters against moto: the same port contracts as the local adapters."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

from sightline.adapters.aws import (
    DynamoTableStore,
    EventBridgeBus,
    S3BlobStore,
    SageMakerAsyncCodec,
    StepFunctionsOrchestrator,
    StepFunctionsTaskTokens,
)
from sightline.errors import CodecError, NotFound, TransientError
from sightline.models import IngestInput
from sightline.ports import AsyncInvocation
from tests.support.aws import create_tables

REGION = "us-east-1"


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def test_s3_blob_store(aws: None, tmp_path: Path) -> None:
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="data")
    store = S3BlobStore("data", client=boto3.client("s3", region_name=REGION))
    assert store.put_bytes("org/p/a.bin", b"0123456789") == "s3://data/org/p/a.bin"
    assert store.get_bytes("org/p/a.bin", (3, 4)) == b"34"
    assert store.exists("org/p/a.bin") and not store.exists("org/p/b.bin")
    assert store.size("org/p/a.bin") == 10
    src = tmp_path / "f"
    src.write_bytes(b"file")
    store.upload_file(src, "org/p/f")
    store.download_file("org/p/f", tmp_path / "g")
    assert (tmp_path / "g").read_bytes() == b"file"
    assert store.list_keys("org/p/") == ["org/p/a.bin", "org/p/f"]
    assert store.delete_prefix("org/p/") == 2
    with pytest.raises(NotFound):
        store.get_bytes("org/p/a.bin")


def test_dynamo_table_store(aws: None) -> None:
    ddb = boto3.resource("dynamodb", region_name=REGION)
    create_tables(ddb, "sl-videos")
    t = DynamoTableStore("sl-", resource=ddb).table("videos")
    t.put("org/a", "v1", {"video_id": "v1", "duration_s": 12.5, "chunks": 2, "tags": ["x"]})
    t.put("org/a", "v2", {"video_id": "v2"})
    assert t.get("org/a", "v1") == {
        "video_id": "v1",
        "duration_s": 12.5,
        "chunks": 2,
        "tags": ["x"],
    }
    assert [i["video_id"] for i in t.query("org/a", "v")] == ["v1", "v2"]
    assert t.update("org/a", "v1", {"chunks": 3, "status": "completed"})["chunks"] == 3
    assert t.update("org/a", "nope", {"chunks": 3}) is None
    t.delete("org/a", "v1")
    assert t.get("org/a", "v1") is None


def test_eventbridge_bus(aws: None) -> None:
    client = boto3.client("events", region_name=REGION)
    client.create_event_bus(Name="sl")
    EventBridgeBus("sl", client=client).publish("VideoProcessed", {"video_id": "v1"})


def test_sagemaker_async_codec_contract(aws: None) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="data")
    blobs = S3BlobStore("data", client=s3)
    blobs.put_bytes("in/chunk.mp4", b"video")
    codec = SageMakerAsyncCodec(
        "codec", blobs, client=boto3.client("sagemaker-runtime", region_name=REGION)
    )
    inv = codec.invoke_async("in/chunk.mp4", inference_id="m-1", content_type="video/mp4")
    assert inv.output_key and inv.inference_id == "m-1"
    # The endpoint writes its answer where InvokeEndpointAsync said it would.
    blobs.put_bytes(inv.output_key, b'{"ok": true}')
    assert json.loads(codec.wait(inv, timeout_s=5)) == {"ok": True}
    failed = AsyncInvocation("m-2", "in/chunk.mp4", "out/m-2.out", "err/m-2.err")
    blobs.put_bytes(failed.failure_key, b'{"reason": "CUDA out of memory"}')
    with pytest.raises(CodecError, match="CUDA out of memory"):
        codec.wait(failed, timeout_s=5)


def test_step_functions_orchestrator_starts_ingest(aws: None) -> None:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    arn = sfn.create_state_machine(
        name="ingest",
        roleArn="arn:aws:iam::123456789012:role/x",
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
    )["stateMachineArn"]
    orch = StepFunctionsOrchestrator(arn, client=sfn)
    payload = IngestInput(tenant_id="org/p", video_id="vabc123", source_key="org/p/x.mp4")
    execution = orch.start_ingest(payload)
    desc = sfn.describe_execution(executionArn=execution)
    assert json.loads(desc["input"])["video_id"] == "vabc123"
    assert orch.wait(execution, timeout_s=5)["status"] in {"SUCCEEDED", "RUNNING"}


# ----- the codec on SageMaker and the task tokens, on the real request shapes (Stubber) -----


def _client(service: str) -> Any:
    return boto3.client(
        service,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def test_invoke_endpoint_async_request_and_response_shapes() -> None:
    rt = _client("sagemaker-runtime")
    blobs = S3BlobStore("data", client=_client("s3"))
    codec = SageMakerAsyncCodec(
        "sightline-dev-codec", blobs, client=rt, request_ttl_s=2400, invocation_timeout_s=900
    )
    with Stubber(rt) as stub:
        stub.add_response(
            "invoke_endpoint_async",
            {
                "InferenceId": "v1-c00000-abcd1234",
                "OutputLocation": "s3://data/codec/async-output/6d1c.out",
                "FailureLocation": "s3://data/codec/async-failure/6d1c-error.out",
            },
            {
                "EndpointName": "sightline-dev-codec",
                "InputLocation": "s3://data/org/p/videos/v1/derived/chunks/00000.mp4",
                "ContentType": "video/mp4",
                "Accept": "application/json",
                "InferenceId": "v1-c00000-abcd1234",
                "RequestTTLSeconds": 2400,
                "InvocationTimeoutSeconds": 900,
            },
        )
        inv = codec.invoke_async(
            "org/p/videos/v1/derived/chunks/00000.mp4",
            inference_id="v1-c00000-abcd1234",
            content_type="video/mp4",
        )
        stub.assert_no_pending_responses()
    assert inv.output_key == "codec/async-output/6d1c.out"
    assert inv.failure_key == "codec/async-failure/6d1c-error.out"


@pytest.mark.parametrize(
    ("code", "status", "raised"),
    [
        ("ThrottlingException", 400, TransientError),
        ("ServiceUnavailable", 503, TransientError),
        ("InternalFailure", 500, TransientError),
        ("ValidationError", 400, ClientError),
    ],
)
def test_invoke_endpoint_async_errors(code: str, status: int, raised: type[Exception]) -> None:
    rt = _client("sagemaker-runtime")
    codec = SageMakerAsyncCodec("codec", S3BlobStore("data", client=_client("s3")), client=rt)
    with Stubber(rt) as stub:
        # Throttling and 5xx are retried by the Encode state's Retry (TransientError), never
        # here; a bad request is not retried at all.
        stub.add_client_error("invoke_endpoint_async", code, "no", http_status_code=status)
        with pytest.raises(raised):
            codec.invoke_async("k", inference_id="i", content_type="video/mp4")


def test_task_tokens_request_shapes_and_a_gone_task() -> None:
    sfn = _client("stepfunctions")
    tokens = StepFunctionsTaskTokens(client=sfn)
    with Stubber(sfn) as stub:
        stub.add_response(
            "send_task_success", {}, {"taskToken": "tok", "output": '{"manifest_id": "m"}'}
        )
        stub.add_response(
            "send_task_failure",
            {},
            {"taskToken": "tok", "error": "CodecError", "cause": "x" * 32768},
        )
        stub.add_client_error("send_task_success", "TaskTimedOut", "timed out")
        stub.add_client_error("send_task_failure", "InvalidToken", "bad token")
        stub.add_client_error("send_task_success", "ThrottlingException", "slow down")
        assert tokens.succeed("tok", {"manifest_id": "m"}) is True
        assert tokens.fail("tok", "CodecError", "x" * 40000) is True  # cut to the API's limit
        # A task that timed out or was completed already: not an error, just nobody waiting
        assert tokens.succeed("tok", {}) is False
        assert tokens.fail("tok", "CodecError", "late") is False
        with pytest.raises(TransientError):
            tokens.succeed("tok", {})
        stub.assert_no_pending_responses()


def test_dynamo_items_with_expires_at_carry_the_ttl_attribute(aws: None) -> None:
    ddb = boto3.resource("dynamodb", region_name=REGION)
    create_tables(ddb, "ttl-codec_jobs")
    t = DynamoTableStore("ttl-", resource=ddb).table("codec_jobs")
    t.put("inf-1", "job", {"task_token": "tok", "expires_at": 1_900_000_000})
    raw = ddb.Table("ttl-codec_jobs").get_item(Key={"pk": "inf-1", "sk": "job"})["Item"]
    assert raw["expires_at"] == 1_900_000_000
    assert t.get("inf-1", "job") == {"task_token": "tok", "expires_at": 1_900_000_000}
