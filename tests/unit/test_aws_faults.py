"""The AWS side of recovery, against moto: Step Functions redrive (its request shape, with
botocore's Stubber, because moto 5.2.1 does not implement RedriveExecution), dead-letter
replay of the S3 upload trigger, and idempotency records that make a replayed upload
event or a replayed API call a no-op."""

from __future__ import annotations

import copy
import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from sightline import keys
from sightline.config import reset_settings
from sightline.models import Video, VideoStatus
from sightline_local.recovery import ReplayContext, redrive_failed_executions, replay_dead_letters
from tests.support.aws import create_tables

REGION = "us-east-1"
TENANT = "acme/plaza"
SM_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:sightline-ingest_video"


def _execution(name: str, redrives: int = 0) -> dict[str, Any]:
    return {
        "executionArn": f"arn:aws:states:us-east-1:123456789012:execution:x:{name}",
        "stateMachineArn": SM_ARN,
        "name": name,
        "status": "FAILED",
        "startDate": "2026-01-01T00:00:00Z",
        "redriveCount": redrives,
    }


class _Token:
    """Matches any client token and records it (Stubber compares parameters with ==)."""

    def __init__(self, sink: list[str]) -> None:
        self.sink = sink

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str) and 0 < len(other) <= 64:
            self.sink.append(other)
            return True
        return False

    __hash__ = None  # type: ignore[assignment]


def _listing(status: str) -> dict[str, str]:
    return {"stateMachineArn": SM_ARN, "statusFilter": status, "redriveFilter": "NOT_REDRIVEN"}


def _stub_one_pass(stub: Stubber, tokens: list[str]) -> list[dict[str, Any]]:
    failed = [_execution("a"), _execution("b", redrives=1)]
    stub.add_response("list_executions", {"executions": failed}, _listing("FAILED"))
    for item in failed:
        stub.add_response(
            "redrive_execution",
            {"redriveDate": "2026-01-02T00:00:00Z"},
            {"executionArn": item["executionArn"], "clientToken": _Token(tokens)},
        )
    stub.add_response("list_executions", {"executions": [_execution("c")]}, _listing("TIMED_OUT"))
    stub.add_client_error(
        "redrive_execution",
        service_error_code="ExecutionNotRedrivable",
        service_message="the execution ended more than 14 days ago",
    )
    stub.add_response("list_executions", {"executions": []}, _listing("ABORTED"))
    return failed


def test_redrive_asks_once_for_each_unsuccessful_execution_not_yet_redriven() -> None:
    sfn = boto3.client(
        "stepfunctions",
        region_name=REGION,
        aws_access_key_id="testing",  # Stubber answers; nothing is signed for real
        aws_secret_access_key="testing",
    )
    stub = Stubber(sfn)
    first: list[str] = []
    failed = _stub_one_pass(stub, first)
    with stub:
        out = redrive_failed_executions(sfn, SM_ARN)
        stub.assert_no_pending_responses()
    assert out["redriven"] == [e["executionArn"] for e in failed]
    assert out["not_redrivable"] == [_execution("c")["executionArn"]]
    # A retried call (the same listing) sends the same client tokens: one redrive each
    stub = Stubber(sfn)
    second: list[str] = []
    _stub_one_pass(stub, second)
    with stub:
        redrive_failed_executions(sfn, SM_ARN)
    assert first == second and len(set(first)) == 2


S3_EVENT: dict[str, Any] = {
    "version": "0",
    "id": "17793124-05d4-b198-2fde-7ededc63b103",
    "detail-type": "Object Created",
    "source": "aws.s3",
    "account": "123456789012",
    "time": "2026-01-01T00:00:00Z",
    "region": REGION,
    "resources": [],
    "detail": {
        "version": "0",
        "bucket": {"name": ""},
        "object": {"key": "", "size": 5, "etag": "b1946ac92492d2347c6235b4d2611184"},
        "request-id": "N4N7GDK58NMKJ12R",
        "requester": "123456789012",
        "reason": "PutObject",
    },
}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The AWS adapters over moto: a bucket, the tables, a state machine and a DLQ, under
    names of their own (moto's backends may be shared with the local runtime's)."""
    suffix = uuid.uuid4().hex[:8]
    bucket, prefix = f"sl-faults-{suffix}", f"slf{suffix}-"
    with mock_aws():
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=bucket)
        ddb = boto3.client("dynamodb", region_name=REGION)
        create_tables(
            ddb, *(f"{prefix}{t}" for t in ("videos", "manifests", "events", "idempotency"))
        )
        sfn = boto3.client("stepfunctions", region_name=REGION)
        arn = sfn.create_state_machine(
            name=f"ingest-{suffix}",
            roleArn="arn:aws:iam::123456789012:role/x",
            definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
        )["stateMachineArn"]
        sqs = boto3.client("sqs", region_name=REGION)
        dlq = sqs.create_queue(QueueName=f"s3-trigger-rule-dlq-{suffix}")["QueueUrl"]
        for name, value in {
            "SIGHTLINE_BLOBS": "aws",
            "SIGHTLINE_TABLES": "aws",
            "SIGHTLINE_ORCHESTRATOR": "aws",
            "SIGHTLINE_BUCKET": bucket,
            "SIGHTLINE_TABLE_PREFIX": prefix,
            "SIGHTLINE_INGEST_STATE_MACHINE_ARN": arn,
            "SIGHTLINE_REGION": REGION,
        }.items():
            monkeypatch.setenv(name, value)
        _reset_cached()
        yield {"bucket": bucket, "arn": arn, "sfn": sfn, "sqs": sqs, "dlq": dlq}
        for name in list(os.environ):
            if name.startswith("SIGHTLINE_") and name != "SIGHTLINE_HOME":
                monkeypatch.delenv(name, raising=False)
    _reset_cached()


def _reset_cached() -> None:
    from functions.s3_trigger import handler as s3_trigger
    from sightline.api import idempotency

    reset_settings()
    s3_trigger.ingest_service.cache_clear()
    idempotency.persistence.cache_clear()


def _pending_upload(bucket: str) -> tuple[str, dict[str, Any]]:
    from sightline import factory
    from sightline.services.repository import Repository

    video_id = "v" + uuid.uuid4().hex[:20]
    key = keys.source(TENANT, video_id, "clip.mp4")
    Repository(factory.tables()).put_video(
        Video(
            tenant_id=TENANT,
            video_id=video_id,
            filename="clip.mp4",
            source_key=key,
            status=VideoStatus.PENDING,
        )
    )
    factory.blobs().put_bytes(key, b"video")
    event = copy.deepcopy(S3_EVENT)
    event["resources"] = [f"arn:aws:s3:::{bucket}"]
    event["detail"]["bucket"]["name"] = bucket
    event["detail"]["object"]["key"] = key
    return video_id, event


def test_a_replayed_upload_event_from_the_dlq_is_a_no_op(aws: dict[str, Any]) -> None:
    from functions.s3_trigger.handler import lambda_handler

    # Given an upload whose event was handled (the ingest started), and then also landed
    # in the rule's DLQ (a delivery that timed out and was retried)
    video_id, event = _pending_upload(aws["bucket"])
    first = lambda_handler(event, ReplayContext())
    assert first["video_id"] == video_id and not first["reused"]
    aws["sqs"].send_message(QueueUrl=aws["dlq"], MessageBody=json.dumps(event))
    # And a dead letter for a key that is not a video source at all
    stray = copy.deepcopy(event)
    stray["detail"]["object"]["key"] = f"{TENANT}/not-a-video.txt"
    aws["sqs"].send_message(QueueUrl=aws["dlq"], MessageBody=json.dumps(stray))
    # When the DLQ is replayed through the trigger
    out = replay_dead_letters(aws["sqs"], aws["dlq"], lambda_handler, visibility_s=0)
    # (visibility 0: a message that fails comes straight back, and is not tried twice)
    # Then the known upload answers with its existing execution and starts nothing new
    assert out["replayed"] == 1 and out["failed"] == 1
    assert out["results"][0] == {**first, "reused": True}
    executions = aws["sfn"].list_executions(stateMachineArn=aws["arn"])["executions"]
    assert [e["executionArn"] for e in executions] == [first["execution_id"]]
    # And the message that failed again is still in the queue; the replayed one is gone
    left = aws["sqs"].receive_message(QueueUrl=aws["dlq"], MaxNumberOfMessages=10)
    assert [json.loads(m["Body"]) for m in left["Messages"]] == [stray]


def test_a_replayed_api_call_with_the_same_idempotency_key_is_a_no_op(
    aws: dict[str, Any],
) -> None:
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyValidationError,
    )

    from sightline.api.idempotency import run_idempotent

    calls: list[int] = []

    def create() -> dict[str, Any]:
        calls.append(1)
        return {"video": {"video_id": f"v{len(calls)}"}, "status_code": 201}

    body = {"filename": "a.mp4"}
    args = {
        "tenant_id": TENANT,
        "route": "POST /v1/videos",
        "key": "k-1",
        "body": body,
        "lambda_context": ReplayContext(),
    }
    first = run_idempotent(**args, fn=create)
    # A replay (a client retry after a lost answer) gets the first answer; nothing runs
    assert run_idempotent(**args, fn=create) == first
    assert calls == [1]
    # The record lives in DynamoDB (the AWS persistence layer), keyed by tenant and key
    items = boto3.client("dynamodb", region_name=REGION).scan(
        TableName=f"{os.environ['SIGHTLINE_TABLE_PREFIX']}idempotency"
    )["Items"]
    assert len(items) == 1 and items[0]["status"]["S"] == "COMPLETED"
    # The same key with another body is refused, not run
    with pytest.raises(IdempotencyValidationError):
        run_idempotent(**{**args, "body": {"filename": "b.mp4"}}, fn=create)
    # Another tenant's same key is its own request
    run_idempotent(**{**args, "tenant_id": "other/tenant"}, fn=create)
    assert calls == [1, 1]
