"""Task-token completion of the codec (CodecJobs, functions/codec_callback) and the
per-tenant concurrency slots, over the local adapters and, for the DynamoDB limiter, moto."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from sightline import factory, handlers, keys
from sightline.adapters.aws import DynamoTenantLimiter
from sightline.adapters.local_limits import SqliteTenantLimiter
from sightline.errors import TenantThrottled, TransientError
from sightline.models import ChunkRef
from sightline.ports import AsyncInvocation
from sightline.services.codec_client import (
    JOB_SK,
    JOBS_TABLE,
    CodecJobs,
    CodecNotice,
    EncodeTask,
    notice_message,
    notices_from_sns,
)
from sightline.services.pipeline import _reason, encode_inference_id
from tests.conftest import EVENTS_DIR
from tests.support.aws import create_tables
from tests.support.fakes import FakeCodec, RecordingTaskTokens
from tests.support.media import synth_video


def chunk_of(tenant: str, video: str = "vtest0001", index: int = 0) -> ChunkRef:
    return ChunkRef(
        tenant_id=tenant,
        video_id=video,
        index=index,
        t0=index * 2.0,
        t1=index * 2.0 + 2.0,
        key=keys.chunk(tenant, video, index),
    )


class SilentCodec:
    """Accepts every request and never answers (a lost notice, a wedged endpoint)."""

    def __init__(self, *, error: Exception | None = None) -> None:
        self.invocations: list[str] = []
        self.error = error

    def invoke_async(
        self, input_key: str, *, inference_id: str, content_type: str
    ) -> AsyncInvocation:
        if self.error is not None:
            raise self.error
        self.invocations.append(inference_id)
        return AsyncInvocation(
            inference_id, input_key, f"codec/out/{inference_id}", f"codec/err/{inference_id}"
        )

    def wait(self, invocation: AsyncInvocation, timeout_s: float) -> bytes:
        raise AssertionError("the pipeline path must never wait")


@pytest.fixture
def env(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    tokens = RecordingTaskTokens()
    codec: dict[str, Any] = {"codec": SilentCodec()}
    monkeypatch.setattr(factory, "codec", lambda: codec["codec"])
    monkeypatch.setattr(factory, "task_tokens", lambda: tokens)
    handlers.pipeline.cache_clear()
    yield {"tokens": tokens, "codec": codec}
    handlers.pipeline.cache_clear()


def use_codec(env: dict[str, Any], codec: Any) -> None:
    env["codec"]["codec"] = codec
    handlers.pipeline.cache_clear()


def jobs() -> CodecJobs:
    return handlers.codec_jobs()


def seeded_chunk(tmp_path: Path, tenant: str = "acme/plaza", index: int = 0) -> ChunkRef:
    chunk = chunk_of(tenant, index=index)
    factory.blobs().upload_file(synth_video(tmp_path / f"c{index}.mp4", seconds=2.0), chunk.key)
    return chunk


# ----- the notice -------------------------------------------------------------------------


def test_sample_sns_events_parse_as_sagemaker_notices() -> None:
    ok = notices_from_sns(json.loads((EVENTS_DIR / "sns" / "codec_success.json").read_text()))
    err = notices_from_sns(json.loads((EVENTS_DIR / "sns" / "codec_error.json").read_text()))
    assert [n.succeeded for n in ok + err] == [True, False]
    assert ok[0].inference_id == err[0].inference_id == "vsample0001-c00000-65f7d780"
    assert ok[0].output_location.endswith(".out") and ok[0].output_location.startswith("s3://")
    assert err[0].failure_reason and "Received server error (500)" in err[0].failure_reason
    assert err[0].failure_location.startswith("s3://")
    # The local codecs publish the very same shape
    mine = CodecNotice.model_validate(
        notice_message("i-1", endpoint="e", input_location="s3://b/in", reason="boom")
    )
    assert (mine.succeeded, mine.failure_reason) == (False, "boom")


# ----- start / complete -------------------------------------------------------------------


def test_start_records_the_token_and_returns_without_waiting(env: dict[str, Any]) -> None:
    chunk = chunk_of("acme/plaza")
    out = jobs().start(EncodeTask(chunk=chunk, task_token="tok-1"))
    inference_id = encode_inference_id(chunk)
    assert (out.status, out.inference_id) == ("started", inference_id)
    assert env["codec"]["codec"].invocations == [inference_id]
    job = factory.tables().table(JOBS_TABLE).get(inference_id, JOB_SK)
    assert job is not None and job["task_token"] == "tok-1" and job["chunk"]["index"] == 0
    assert factory.limiter().holders("acme/plaza", "encode") == [inference_id]
    assert env["tokens"].succeeded == env["tokens"].failed == []


def test_success_notice_stores_the_result_and_sends_task_success(
    env: dict[str, Any], tmp_path: Path
) -> None:
    chunk = seeded_chunk(tmp_path)
    use_codec(env, FakeCodec(factory.blobs()))
    # The fake codec answers at once; its notice is handed to the callback here by hand
    seen: list[dict[str, Any]] = []
    factory.bus().subscribe(lambda kind, detail: seen.append(detail))
    jobs().start(EncodeTask(chunk=chunk, task_token="tok-ok"))
    [message] = seen
    assert jobs().complete(CodecNotice.model_validate(message)) == "succeeded"
    [(token, output)] = env["tokens"].succeeded
    assert token == "tok-ok" and output["manifest_id"] == chunk.chunk_id
    row = handlers.pipeline().repo.find_manifest(chunk.tenant_id, chunk.chunk_id)
    assert row is not None and row.hash.startswith("blake3:")
    # The job, the slot and the transfer object are gone; a duplicate notice changes nothing
    assert factory.tables().table(JOBS_TABLE).get(message["inferenceId"], JOB_SK) is None
    assert factory.limiter().holders(chunk.tenant_id, "encode") == []
    assert factory.blobs().list_keys("codec/output/") == []
    assert jobs().complete(CodecNotice.model_validate(message)) == "unknown"
    assert len(env["tokens"].succeeded) == 1


def test_rerun_of_an_encoded_chunk_completes_at_once(env: dict[str, Any], tmp_path: Path) -> None:
    chunk = seeded_chunk(tmp_path)
    codec = FakeCodec(factory.blobs())
    use_codec(env, codec)
    handlers.pipeline().encode(chunk)  # stored earlier (the synchronous API path)
    out = jobs().start(EncodeTask(chunk=chunk, task_token="tok-again"))
    assert out.status == "done" and len(codec.invocations) == 1
    [(token, output)] = env["tokens"].succeeded
    assert token == "tok-again" and output["manifest_id"] == chunk.chunk_id


def test_error_notice_fails_the_task_with_the_endpoints_reason(
    env: dict[str, Any], tmp_path: Path
) -> None:
    chunk = seeded_chunk(tmp_path)
    use_codec(env, FakeCodec(factory.blobs(), fail_with="CUDA error: out of memory"))
    seen: list[dict[str, Any]] = []
    factory.bus().subscribe(lambda kind, detail: seen.append(detail))
    jobs().start(EncodeTask(chunk=chunk, task_token="tok-bad"))
    assert jobs().complete(CodecNotice.model_validate(seen[0])) == "failed"
    [(token, error, cause)] = env["tokens"].failed
    assert (token, error) == ("tok-bad", "CodecError")
    assert cause.startswith(f"codec inference {encode_inference_id(chunk)} failed: ")
    assert "out of memory" in cause
    assert factory.limiter().holders(chunk.tenant_id, "encode") == []
    assert handlers.pipeline().repo.list_manifests(chunk.tenant_id, chunk.video_id) == []


def test_malformed_or_missing_output_fails_instead_of_hanging(env: dict[str, Any]) -> None:
    blobs = factory.blobs()
    for i, body in enumerate([b"{not json", json.dumps({"token_blob_b64": "!!"}).encode(), None]):
        chunk = chunk_of("acme/plaza", index=i)
        jobs().start(EncodeTask(chunk=chunk, task_token=f"tok-{i}"))
        inference_id = encode_inference_id(chunk)
        key = f"codec/out/{inference_id}"
        if body is not None:
            blobs.put_bytes(key, body)
        notice = notice_message(
            inference_id,
            endpoint="e",
            input_location=blobs.uri(chunk.key),
            output_location=blobs.uri(key),
        )
        assert jobs().complete(CodecNotice.model_validate(notice)) == "failed"
    assert [(t, e) for t, e, _ in env["tokens"].failed] == [
        ("tok-0", "CodecError"),
        ("tok-1", "CodecError"),
        ("tok-2", "CodecError"),
    ]
    assert "is missing" in env["tokens"].failed[2][2]


def test_a_failed_invocation_leaves_no_job_and_no_slot(env: dict[str, Any]) -> None:
    use_codec(env, SilentCodec(error=TransientError("endpoint sightline-codec: Throttling")))
    chunk = chunk_of("acme/plaza")
    with pytest.raises(TransientError):
        jobs().start(EncodeTask(chunk=chunk, task_token="tok"))
    assert factory.tables().table(JOBS_TABLE).get(encode_inference_id(chunk), JOB_SK) is None
    assert factory.limiter().holders("acme/plaza", "encode") == []


# ----- per-tenant concurrency --------------------------------------------------------------


def test_tenant_b_proceeds_while_tenant_a_is_at_its_limit(
    env: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIGHTLINE_TENANT_ENCODE_LIMIT", "2")
    from sightline.config import get_settings

    get_settings.cache_clear()
    handlers.pipeline.cache_clear()
    # Given tenant A with two encodes in flight (its limit)
    for i in range(2):
        jobs().start(EncodeTask(chunk=chunk_of("org/a", index=i), task_token=f"a{i}"))
    # When A queues a third, it is throttled (the ASL retries it with backoff) ...
    with pytest.raises(TenantThrottled, match="limit 2"):
        jobs().start(EncodeTask(chunk=chunk_of("org/a", index=2), task_token="a2"))
    # ... while tenant B's chunk goes straight to the codec
    out = jobs().start(EncodeTask(chunk=chunk_of("org/b"), task_token="b0"))
    assert out.status == "started"
    assert len(env["codec"]["codec"].invocations) == 3
    # A retry of one of A's running chunks keeps its slot instead of needing a second one
    jobs().start(EncodeTask(chunk=chunk_of("org/a", index=1), task_token="a1-retry"))
    # When one of A's notices arrives, A's third chunk gets the freed slot
    first = encode_inference_id(chunk_of("org/a", index=0))
    factory.blobs().put_bytes(f"codec/err/{first}", b'{"reason": "x"}')
    jobs().complete(
        CodecNotice.model_validate(
            notice_message(first, endpoint="e", input_location="s3://b/k", reason="x")
        )
    )
    jobs().start(EncodeTask(chunk=chunk_of("org/a", index=2), task_token="a2"))
    assert len(factory.limiter().holders("org/a", "encode")) == 2


def test_describe_takes_and_returns_a_slot(
    env: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sightline.models import ChunkWork
    from tests.support.fakes import FakeDescriber

    describer = FakeDescriber()
    monkeypatch.setattr(factory, "describer", lambda: describer)
    monkeypatch.setenv("SIGHTLINE_TENANT_DESCRIBE_LIMIT", "1")
    from sightline.config import get_settings

    get_settings.cache_clear()
    handlers.pipeline.cache_clear()
    chunk = seeded_chunk(tmp_path)
    # Another describe of the tenant holds the only slot: this one is throttled
    factory.limiter().acquire(chunk.tenant_id, "describe", "busy", limit=1, lease_s=60)
    with pytest.raises(TenantThrottled):
        handlers.pipeline().describe(ChunkWork(chunk=chunk))
    assert describer.calls == 0
    factory.limiter().release(chunk.tenant_id, "describe", "busy")
    handlers.pipeline().describe(ChunkWork(chunk=chunk))
    assert describer.calls == 1
    # ... and gave its slot back
    assert factory.limiter().holders(chunk.tenant_id, "describe") == []


TABLE = "limits-test-tenant_limits"


@pytest.fixture(params=["sqlite", "dynamodb"])
def limiter(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    clock = {"t": 1_000_000.0}
    if request.param == "sqlite":
        yield SqliteTenantLimiter(tmp_path / "db.sqlite", now=lambda: clock["t"]), clock
        return
    with mock_aws():
        ddb = boto3.resource("dynamodb", region_name="us-east-1")
        create_tables(ddb, TABLE)
        yield DynamoTenantLimiter(TABLE, resource=ddb, now=lambda: clock["t"]), clock


def test_limiter_contract(limiter: Any) -> None:
    lim, clock = limiter
    lim.acquire("org/a", "encode", "h1", limit=2, lease_s=60)
    lim.acquire("org/a", "encode", "h2", limit=2, lease_s=60)
    with pytest.raises(TenantThrottled):
        lim.acquire("org/a", "encode", "h3", limit=2, lease_s=60)
    # Other tenants and other steps have their own slots
    lim.acquire("org/b", "encode", "h3", limit=2, lease_s=60)
    lim.acquire("org/a", "describe", "h3", limit=2, lease_s=60)
    # Re-acquiring is idempotent (a retried step) and renews the lease
    lim.acquire("org/a", "encode", "h1", limit=2, lease_s=60)
    assert lim.holders("org/a", "encode") == ["h1", "h2"]
    # A lease that ends frees its slot even if never released (a lost notice)
    clock["t"] += 61
    lim.acquire("org/a", "encode", "h4", limit=2, lease_s=60)
    assert lim.holders("org/a", "encode") == ["h4"]
    lim.release("org/a", "encode", "h4")
    lim.release("org/a", "encode", "nobody")
    assert lim.holders("org/a", "encode") == []
    lim.acquire("org/a", "encode", "h5", limit=0, lease_s=60)  # 0: no limit
    assert lim.holders("org/a", "encode") == []


# ----- the ASL under the local engine: timeouts and late notices ----------------------------


def test_a_lost_notice_times_out_as_a_failed_chunk_with_the_reason(
    env: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sightline_local.runtime import _Engine, local_task_tokens, render_asl, substitutions

    # Given process_chunk with a 1-s Encode timeout and a codec that never answers
    definition = json.loads(render_asl("process_chunk", substitutions()))
    definition["States"]["Encode"]["TimeoutSeconds"] = 1
    engine = _Engine.get()
    name = f"process-chunk-timeout-{time.monotonic_ns()}"
    arn = engine.sfn.create_state_machine(
        name=name,
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/sightline-local",
    )["stateMachineArn"]
    monkeypatch.setattr(factory, "task_tokens", local_task_tokens)
    chunk = chunk_of("acme/plaza")
    ex = engine.sfn.start_execution(
        stateMachineArn=arn, input=json.dumps({"chunk": chunk.model_dump(mode="json")})
    )["executionArn"]
    deadline = time.monotonic() + 30
    while (desc := engine.sfn.describe_execution(executionArn=ex))["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # Then the chunk fails with a reason the user can read
    assert desc["status"] == "FAILED"
    reason = _reason({"Error": desc["error"], "Cause": desc["cause"]})
    assert reason.startswith("CodecTimeout: the codec endpoint sent no success or error")
    history = engine.sfn.get_execution_history(executionArn=ex)["events"]
    scheduled = [e for e in history if e["type"] == "TaskScheduled"]
    assert scheduled[0]["taskScheduledEventDetails"]["resource"] == "invoke.waitForTaskToken"
    # A notice arriving after the timeout is harmless: no task waits, the job is dropped
    inference_id = encode_inference_id(chunk)
    late = notice_message(inference_id, endpoint="e", input_location="x", reason="late")
    assert jobs().complete(CodecNotice.model_validate(late)) == "failed"
    assert factory.tables().table(JOBS_TABLE).get(inference_id, JOB_SK) is None
    assert factory.limiter().holders("acme/plaza", "encode") == []


# ----- the AWS path: moto for S3 and DynamoDB, Stubber for the two APIs moto cannot run ------


def test_aws_path_from_invoke_endpoint_async_to_send_task_success() -> None:
    from botocore.stub import ANY, Stubber

    from sightline.adapters.aws import (
        DynamoTableStore,
        S3BlobStore,
        SageMakerAsyncCodec,
        StepFunctionsTaskTokens,
    )
    from sightline.config import Settings
    from sightline.services.pipeline import Pipeline
    from sightline.services.repository import Repository

    with mock_aws():
        region = "us-east-1"
        s3 = boto3.client("s3", region_name=region)
        s3.create_bucket(Bucket="awspath-data")
        ddb = boto3.resource("dynamodb", region_name=region)
        create_tables(
            ddb, *(f"awspath-{n}" for n in ("videos", "manifests", "codec_jobs", "tenant_limits"))
        )
        blobs = S3BlobStore("awspath-data", client=s3)
        tables = DynamoTableStore("awspath-", resource=ddb)
        runtime = boto3.client("sagemaker-runtime", region_name=region)
        sfn = boto3.client("stepfunctions", region_name=region)
        pipeline = Pipeline(
            settings=Settings(),
            blobs=blobs,
            repo=Repository(tables),
            codec=SageMakerAsyncCodec(
                "sightline-dev-codec",
                blobs,
                client=runtime,
                request_ttl_s=2400,
                invocation_timeout_s=900,
            ),
            describer=None,  # type: ignore[arg-type]
            embedder=None,  # type: ignore[arg-type]
            index=None,  # type: ignore[arg-type]
            bus=None,  # type: ignore[arg-type]
        )
        jobs = CodecJobs(
            pipeline=pipeline,
            jobs=tables.table(JOBS_TABLE),
            tokens=StepFunctionsTaskTokens(client=sfn),
            limiter=DynamoTenantLimiter("awspath-tenant_limits", resource=ddb),
        )
        chunk = chunk_of("acme/plaza")
        inference_id = encode_inference_id(chunk)
        output_key = f"codec/async-output/{inference_id}.out"
        with Stubber(runtime) as rt, Stubber(sfn) as states:
            # When the Encode state's Lambda runs: one InvokeEndpointAsync, input in S3
            rt.add_response(
                "invoke_endpoint_async",
                {
                    "InferenceId": inference_id,
                    "OutputLocation": f"s3://awspath-data/{output_key}",
                    "FailureLocation": f"s3://awspath-data/codec/async-failure/{inference_id}.out",
                },
                {
                    "EndpointName": "sightline-dev-codec",
                    "InputLocation": f"s3://awspath-data/{chunk.key}",
                    "ContentType": "video/mp4",
                    "Accept": "application/json",
                    "InferenceId": inference_id,
                    "RequestTTLSeconds": 2400,
                    "InvocationTimeoutSeconds": 900,
                },
            )
            assert jobs.start(EncodeTask(chunk=chunk, task_token="tok-aws")).status == "started"
            rt.assert_no_pending_responses()
            # Then the endpoint writes its output and SNS delivers the success notice
            blobs.put_bytes(chunk.key, b"chunk bytes")
            blobs.put_bytes(output_key, FakeCodec(blobs).answer(chunk.key))
            states.add_response("send_task_success", {}, {"taskToken": "tok-aws", "output": ANY})
            event = {
                "Records": [
                    {
                        "Sns": {
                            "Message": json.dumps(
                                notice_message(
                                    inference_id,
                                    endpoint="sightline-dev-codec",
                                    input_location=f"s3://awspath-data/{chunk.key}",
                                    output_location=f"s3://awspath-data/{output_key}",
                                    region=region,
                                )
                            )
                        }
                    }
                ]
            }
            [notice] = notices_from_sns(event)
            assert jobs.complete(notice) == "succeeded"
            states.assert_no_pending_responses()
        # The manifest row is in DynamoDB, the tokens in S3, the transfer object gone
        row = pipeline.repo.find_manifest(chunk.tenant_id, chunk.chunk_id)
        assert row is not None and blobs.exists(keys.tokens(chunk.tenant_id, chunk.video_id, 0))
        assert not blobs.exists(output_key)
        assert tables.table(JOBS_TABLE).get(inference_id, JOB_SK) is None
        assert jobs.limiter is not None and jobs.limiter.holders("acme/plaza", "encode") == []
