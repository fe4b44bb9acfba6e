"""The client side of the SageMaker async contract, shared by both codec adapters.

Two ways to learn that an inference finished:

* ``CodecJobs`` (the pipeline): the Encode state is ``lambda:invoke.waitForTaskToken``;
  ``start`` records {InferenceId → task token, chunk} in the ``codec_jobs`` table, calls
  InvokeEndpointAsync and returns. The endpoint's success/error SNS topics (locally: the
  same notice on the local bus) trigger ``functions/codec_callback``, whose ``complete``
  stores the result and calls SendTaskSuccess / SendTaskFailure. No Lambda waits.
* ``wait_for_output``: a bounded wait for synchronous API requests (decode,
  ``POST /v1/ingest/chunk``), which must answer within one HTTP request anyway.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sightline.config import Settings
from sightline.errors import CodecError, NotFound, TransientError
from sightline.models import ChunkRef, StepPayload, utcnow
from sightline.ports import AsyncInvocation, BlobStore, Table, TaskTokens, TenantLimiter
from sightline.services.pipeline import Pipeline, encode_inference_id

logger = logging.getLogger(__name__)

JOBS_TABLE = "codec_jobs"
JOB_SK = "job"
# Bus detail types of the local codec's notices (the SNS topics' stand-ins).
NOTICE_SUCCEEDED = "CodecInferenceSucceeded"
NOTICE_FAILED = "CodecInferenceFailed"
# The Encode state's TimeoutSeconds (state_machines/process_chunk.asl.json): a job record
# older than this has no task waiting for it.
ENCODE_STATE_TIMEOUT_S = 3600


def wait_for_output(
    blobs: BlobStore, inv: AsyncInvocation, timeout_s: float, poll_s: float = 0.05
) -> bytes:
    """Wait until the output (success) or the failure object of ``inv`` exists.

    Raises CodecError with the endpoint's reason on failure, TransientError on timeout.
    Synchronous API requests only; the pipeline completes through ``CodecJobs``.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        if blobs.exists(inv.output_key):
            return blobs.get_bytes(inv.output_key)
        if inv.failure_key and blobs.exists(inv.failure_key):
            raise CodecError(
                f"codec inference {inv.inference_id} failed: "
                f"{failure_reason(blobs.get_bytes(inv.failure_key))}"
            )
        if time.monotonic() > deadline:
            raise TransientError(f"codec inference {inv.inference_id} timed out after {timeout_s}s")
        time.sleep(poll_s)


def failure_reason(raw: bytes) -> str:
    """The reason in a failure object: the local codec's ``{"reason"}``, a model server's
    ``{"message"}`` / ``{"errorMessage"}``, or the text itself."""
    text = raw[:4096].decode(errors="replace")
    try:
        body = json.loads(raw)
    except ValueError:
        return text.strip()
    if isinstance(body, dict):
        for field in ("reason", "message", "errorMessage", "error"):
            if body.get(field):
                return str(body[field])
    return text.strip()


# ----- the notice ---------------------------------------------------------------------------


class _ResponseParameters(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    content_type: str | None = Field(None, alias="contentType")
    output_location: str | None = Field(None, alias="outputLocation")
    failure_location: str | None = Field(None, alias="failureLocation")


class CodecNotice(BaseModel):
    """SageMaker asynchronous inference's SNS message, success or error topic:

    ``{"awsRegion", "eventTime", "receivedTime", "invocationStatus": "Completed" | "Failed",
    "failureReason"?, "requestParameters": {"endpointName", "inputLocation", ...},
    "responseParameters": {"contentType", "outputLocation" | "failureLocation"},
    "inferenceId", "eventVersion": "1.0", "eventSource": "aws:sagemaker",
    "eventName": "InferenceResult"}``. The local codec publishes the same shape.
    """

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    inference_id: Annotated[str, Field(min_length=1, alias="inferenceId")]
    invocation_status: Annotated[str, Field(alias="invocationStatus")]
    failure_reason: Annotated[str | None, Field(alias="failureReason")] = None
    request_parameters: Annotated[dict[str, Any], Field(alias="requestParameters")] = {}
    response_parameters: Annotated[_ResponseParameters, Field(alias="responseParameters")] = (
        _ResponseParameters()
    )
    # Older error notices put the failure location at the top level.
    failure_location_top: Annotated[str | None, Field(alias="failureLocation")] = None

    @property
    def succeeded(self) -> bool:
        return self.invocation_status == "Completed"

    @property
    def output_location(self) -> str:
        return self.response_parameters.output_location or ""

    @property
    def failure_location(self) -> str:
        return self.response_parameters.failure_location or self.failure_location_top or ""


def notice_message(
    inference_id: str,
    *,
    endpoint: str,
    input_location: str,
    output_location: str | None = None,
    failure_location: str | None = None,
    reason: str | None = None,
    region: str = "local",
) -> dict[str, Any]:
    """A notice in SageMaker's own format (what the local codecs publish)."""
    now = utcnow().isoformat().replace("+00:00", "Z")
    msg: dict[str, Any] = {
        "awsRegion": region,
        "eventTime": now,
        "receivedTime": now,
        "invocationStatus": "Failed" if reason is not None else "Completed",
        "requestParameters": {
            "endpointName": endpoint,
            "inputLocation": input_location,
            "accept": "application/json",
        },
        "responseParameters": {"contentType": "application/json"},
        "inferenceId": inference_id,
        "eventVersion": "1.0",
        "eventSource": "aws:sagemaker",
        "eventName": "InferenceResult",
    }
    if reason is not None:
        msg["failureReason"] = reason
        if failure_location:
            msg["responseParameters"]["failureLocation"] = failure_location
    elif output_location:
        msg["responseParameters"]["outputLocation"] = output_location
    return msg


def notices_from_sns(event: dict[str, Any]) -> list[CodecNotice]:
    """The codec notices of an SNS-triggered Lambda event (one per record)."""
    out = []
    for record in event.get("Records") or []:
        message = (record.get("Sns") or {}).get("Message") or "{}"
        out.append(CodecNotice.model_validate(json.loads(message)))
    return out


def sns_event(message: dict[str, Any], topic_arn: str) -> dict[str, Any]:
    """The Lambda event SNS delivers for ``message`` (the local runtime's delivery)."""
    now = utcnow().isoformat().replace("+00:00", "Z")
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{topic_arn}:local",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": message.get("inferenceId", ""),
                    "TopicArn": topic_arn,
                    "Subject": None,
                    "Message": json.dumps(message),
                    "Timestamp": now,
                    "SignatureVersion": "1",
                    "Signature": "",
                    "SigningCertUrl": "",
                    "UnsubscribeUrl": "",
                    "MessageAttributes": {},
                },
            }
        ]
    }


# ----- the pipeline's encode: start, then complete on the notice ---------------------------


class EncodeTask(StepPayload):
    """The Encode state's Lambda payload: the chunk and the task token to complete."""

    chunk: ChunkRef
    task_token: Annotated[str, Field(min_length=1, max_length=1024)]


class EncodeStarted(BaseModel):
    """What the encode Lambda returns (Step Functions ignores it and waits for the token)."""

    status: Literal["started", "done"]
    inference_id: str


Outcome = Literal["succeeded", "failed", "unknown"]


@dataclass
class CodecJobs:
    pipeline: Pipeline
    jobs: Table
    tokens: TaskTokens
    limiter: TenantLimiter | None = None

    @property
    def settings(self) -> Settings:
        return self.pipeline.settings

    def start(self, task: EncodeTask) -> EncodeStarted:
        """Queue the chunk on the codec and return; the notice completes the task.

        A chunk whose tokens are already stored (a re-run) completes at once. Raises
        TenantThrottled when the tenant already has its limit of encodes in flight.
        """
        chunk = task.chunk
        inference_id = encode_inference_id(chunk)
        done = self.pipeline.encoded(chunk)
        if done is not None:
            self.tokens.succeed(task.task_token, done.model_dump(mode="json"))
            return EncodeStarted(status="done", inference_id=inference_id)
        s = self.settings
        if self.limiter is not None:
            # Held until the notice (or the lease's end, if the notice never comes).
            self.limiter.acquire(
                chunk.tenant_id,
                "encode",
                inference_id,
                limit=s.tenant_encode_limit,
                lease_s=s.tenant_encode_lease_seconds,
            )
        # Recorded before the invocation: a fast endpoint may notify before we return.
        self.jobs.put(
            inference_id,
            JOB_SK,
            {
                "task_token": task.task_token,
                "chunk": chunk.model_dump(mode="json"),
                "started_at": utcnow().isoformat(),
                "expires_at": int(time.time()) + ENCODE_STATE_TIMEOUT_S + 3600,
            },
        )
        try:
            self.pipeline.invoke_codec(chunk)
        except Exception:
            self._forget(inference_id, chunk)
            raise
        return EncodeStarted(status="started", inference_id=inference_id)

    def complete(self, notice: CodecNotice) -> Outcome:
        """Store the result of a finished inference and resume the task that waits for it.

        Non-retryable problems (a failed inference, malformed output, a hash mismatch) fail
        the task with the reason; TransientError propagates so the notice is redelivered.
        Notices of inferences nobody waits for (decode requests, duplicates) are ignored.
        """
        job = self.jobs.get(notice.inference_id, JOB_SK)
        if job is None:
            logger.info("codec notice for %s: no waiting encode", notice.inference_id)
            return "unknown"
        chunk = ChunkRef.model_validate(job["chunk"])
        token = str(job["task_token"])
        outcome: Outcome
        if notice.succeeded:
            try:
                output_key = self._key(notice.output_location)
                raw = self.pipeline.blobs.get_bytes(output_key)
                out = self.pipeline.store_encoded(chunk, raw, output_key=output_key)
            except TransientError:
                raise
            except NotFound:
                self.tokens.fail(
                    token,
                    "CodecError",
                    f"codec inference {notice.inference_id}: output object "
                    f"{notice.output_location} is missing",
                )
                outcome = "failed"
            except Exception as exc:  # malformed output, hash mismatch, a bug: fail, don't hang
                self.tokens.fail(token, type(exc).__name__, str(exc))
                outcome = "failed"
            else:
                self.tokens.succeed(token, out.model_dump(mode="json"))
                outcome = "succeeded"
        else:
            reason = notice.failure_reason or f"invocation {notice.invocation_status}"
            detail = self._failure_detail(notice.failure_location)
            if detail and detail not in reason:
                reason = f"{reason} ({detail})"
            self.tokens.fail(
                token, "CodecError", f"codec inference {notice.inference_id} failed: {reason}"
            )
            outcome = "failed"
        self._forget(notice.inference_id, chunk)
        return outcome

    def _forget(self, inference_id: str, chunk: ChunkRef) -> None:
        self.jobs.delete(inference_id, JOB_SK)
        if self.limiter is not None:
            self.limiter.release(chunk.tenant_id, "encode", inference_id)

    def _key(self, location: str) -> str:
        """The blob key of an S3 (or local file) URI in the data store."""
        prefix = self.pipeline.blobs.uri("_")[:-1]
        if not location.startswith(prefix):
            raise CodecError(f"codec output {location!r} is outside the data store")
        return location[len(prefix) :]

    def _failure_detail(self, location: str) -> str:
        """The model's own error text from the failure object (then dropped: a transfer)."""
        if not location:
            return ""
        try:
            key = self._key(location)
            detail = failure_reason(self.pipeline.blobs.get_bytes(key))
            self.pipeline.blobs.delete_prefix(key)
        except (CodecError, NotFound):
            return ""
        return detail[:1000]
