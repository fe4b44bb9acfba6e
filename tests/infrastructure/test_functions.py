"""The two functions the CDK app adds: the index bootstrap and the S3 upload trigger."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from functions.index_bootstrap import handler as bootstrap
from functions.s3_trigger import handler as trigger


class Context:
    function_name = "sightline-test"
    aws_request_id = "req-1"
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:sightline-test"
    memory_limit_in_mb = 256
    function_version = "$LATEST"


class FakeIndices:
    def __init__(self) -> None:
        self.bodies: dict[str, dict[str, Any]] = {}
        self.mapping_updates = 0

    def exists(self, index: str) -> bool:
        return index in self.bodies

    def create(self, index: str, body: dict[str, Any]) -> None:
        self.bodies[index] = body

    def put_mapping(self, index: str, body: dict[str, Any]) -> None:
        self.mapping_updates += 1


def cfn_event(request_type: str) -> dict[str, Any]:
    return {
        "RequestType": request_type,
        "ResponseURL": "http://127.0.0.1:9/unused",
        "StackId": "stack",
        "RequestId": "req",
        "LogicalResourceId": "Index",
        "ResourceProperties": {
            "Endpoint": "https://abc.eu-west-1.aoss.example",
            "Service": "aoss",
            "IndexName": "chunks",
            "TextDimensions": "384",
            "LatentDimensions": "1024",
        },
    }


def test_bootstrap_creates_the_index_once_and_is_safe_to_run_again() -> None:
    # Given a cluster without the index
    client = SimpleNamespace(indices=FakeIndices())
    factory = lambda endpoint, service: client  # noqa: E731
    # When Create runs, then Update runs again
    first = bootstrap.handle(cfn_event("Create"), factory)
    second = bootstrap.handle(cfn_event("Update"), factory)
    # Then the index was created once with knn_vector mappings, and the re-run only
    # re-applied the (additive) mappings
    assert first["Result"] == "created" and second["Result"] == "exists"
    body = client.indices.bodies["chunks"]
    assert body["settings"]["index"]["knn"] is True
    text = body["mappings"]["properties"]["text_embedding"]
    assert text["type"] == "knn_vector" and text["dimension"] == 384
    assert text["method"]["engine"] == "faiss"
    assert body["mappings"]["properties"]["latent_embedding"]["dimension"] == 1024
    assert body["mappings"]["properties"]["tenant_id"] == {"type": "keyword"}
    assert client.indices.mapping_updates == 1


def test_bootstrap_keeps_the_index_on_delete() -> None:
    def no_client(endpoint: str, service: str) -> Any:
        raise AssertionError("Delete must not touch the cluster")

    assert bootstrap.handle(cfn_event("Delete"), no_client)["Result"] == "retained"


def test_bootstrap_retries_while_the_access_policy_propagates() -> None:
    class Forbidden(Exception):
        status_code = 403

    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise Forbidden("not yet")
        return "created"

    assert bootstrap.with_retries(flaky, sleep=lambda s: None) == "created"
    with pytest.raises(ValueError):
        bootstrap.with_retries(
            lambda: (_ for _ in ()).throw(ValueError("bad")), sleep=lambda s: None
        )


def test_bootstrap_reports_failure_to_cloudformation(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[tuple[str, str]] = []
    monkeypatch.setattr(
        bootstrap,
        "send_response",
        lambda event, status, reason, data: sent.append((status, reason)),
    )
    monkeypatch.setattr(
        bootstrap, "handle", lambda event: (_ for _ in ()).throw(RuntimeError("boom"))
    )
    bootstrap.lambda_handler(cfn_event("Create"), Context())
    assert sent == [("FAILED", "RuntimeError: boom")]


S3_EVENT = {
    "version": "0",
    "id": "17793124-05d4-b198-2fde-7ededc63b103",
    "detail-type": "Object Created",
    "source": "aws.s3",
    "account": "123456789012",
    "time": "2021-11-12T00:00:00Z",
    "region": "eu-west-1",
    "resources": ["arn:aws:s3:::sightline-dev-data"],
    "detail": {
        "version": "0",
        "bucket": {"name": "sightline-dev-data"},
        "object": {
            "key": "acme/plaza/videos/v0123/source/clip.mp4",
            "size": 5,
            "etag": "b1946ac92492d2347c6235b4d2611184",
            "sequencer": "617f08299329d189",
        },
        "request-id": "N4N7GDK58NMKJ12R",
        "requester": "123456789012",
        "source-ip-address": "1.2.3.4",
        "reason": "PutObject",
    },
}


def test_trigger_hands_the_uploaded_key_to_the_ingest_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[str] = []

    class FakeIngest:
        def on_object_created(self, key: str) -> Any:
            seen.append(key)
            video = SimpleNamespace(video_id="v0123")
            return SimpleNamespace(video=video, execution_id="arn:exec", reused=False)

    monkeypatch.setattr(trigger, "ingest_service", lambda: FakeIngest())
    out = trigger.lambda_handler(S3_EVENT, Context())
    assert seen == ["acme/plaza/videos/v0123/source/clip.mp4"]
    assert out == {"video_id": "v0123", "execution_id": "arn:exec", "reused": False}
