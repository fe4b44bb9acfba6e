"""AWS adapters (boto3). Tested against moto; the same ports as the local adapters."""

from __future__ import annotations

import json
import random
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from sightline.errors import Conflict, NotFound, TenantThrottled, TransientError
from sightline.models import IngestInput, LiveClipInput
from sightline.ports import AsyncInvocation

# The attribute DynamoDB's TTL deletes by (cdk/constants.py TTL_ATTRIBUTE).
TTL_ATTRIBUTE = "expires_at"

_THROTTLING = {
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "SlowDown",
    "ServiceUnavailable",
    "InternalServerError",
}


def _raise_mapped(err: ClientError, what: str) -> None:
    code = err.response.get("Error", {}).get("Code", "")
    if code in ("NoSuchKey", "404", "NotFound", "ResourceNotFoundException"):
        raise NotFound(f"{what} not found") from err
    if code in _THROTTLING:
        # Retried with backoff by the state machine, not here.
        raise TransientError(f"{what}: {code}") from err
    raise err


class S3BlobStore:
    def __init__(self, bucket: str, *, client: Any = None, kms_key_id: str | None = None) -> None:
        self.bucket = bucket
        self.s3 = client or boto3.client("s3")
        self._sse = (
            {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_id} if kms_key_id else {}
        )

    def put_bytes(
        self, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> str:
        try:
            self.s3.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, **self._sse
            )
        except ClientError as err:
            _raise_mapped(err, key)
        return self.uri(key)

    def get_bytes(self, key: str, byte_range: tuple[int, int] | None = None) -> bytes:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if byte_range is not None:
            kwargs["Range"] = f"bytes={byte_range[0]}-{byte_range[1]}"
        try:
            return self.s3.get_object(**kwargs)["Body"].read()
        except ClientError as err:
            _raise_mapped(err, key)
            raise  # unreachable; keeps type checkers honest

    def upload_file(
        self, path: Path, key: str, content_type: str = "application/octet-stream"
    ) -> str:
        extra = {"ContentType": content_type, **self._sse}
        self.s3.upload_file(str(path), self.bucket, key, ExtraArgs=extra)
        return self.uri(key)

    def download_file(self, key: str, path: Path) -> None:
        try:
            self.s3.download_file(self.bucket, key, str(path))
        except ClientError as err:
            _raise_mapped(err, key)

    def exists(self, key: str) -> bool:
        try:
            self.s3.head_object(Bucket=self.bucket, Key=key)
            return True
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def size(self, key: str) -> int:
        try:
            return int(self.s3.head_object(Bucket=self.bucket, Key=key)["ContentLength"])
        except ClientError as err:
            _raise_mapped(err, key)
            raise

    def list_keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        ):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return keys

    def delete_prefix(self, prefix: str) -> int:
        keys = self.list_keys(prefix)
        for start in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[start : start + 1000]]
            self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
        return len(keys)

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def presign_put(self, key: str, *, expires_s: int = 3600) -> str:
        """A presigned PUT for a browser or client upload straight to S3."""
        params = {"Bucket": self.bucket, "Key": key, **self._sse}
        return str(self.s3.generate_presigned_url("put_object", Params=params, ExpiresIn=expires_s))


def _to_dynamo(value: Any) -> Any:
    # DynamoDB has no float type; round-trip through JSON turns floats into Decimals.
    return json.loads(json.dumps(value, default=str), parse_float=Decimal)


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    return value


class DynamoTable:
    def __init__(self, table: Any) -> None:
        self._t = table

    def put(self, pk: str, sk: str, item: dict[str, Any]) -> None:
        record: dict[str, Any] = {"pk": pk, "sk": sk, "item": _to_dynamo(item)}
        # DynamoDB's TTL reads a top-level number: an item that carries "expires_at" (epoch
        # seconds) gets it there too, so tables with TTL on (codec_jobs) clean themselves.
        if isinstance(item.get(TTL_ATTRIBUTE), int | float):
            record[TTL_ATTRIBUTE] = int(item[TTL_ATTRIBUTE])
        self._t.put_item(Item=record)

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        got = self._t.get_item(Key={"pk": pk, "sk": sk}, ConsistentRead=True).get("Item")
        return _from_dynamo(got["item"]) if got else None

    def query(self, pk: str, sk_prefix: str = "") -> list[dict[str, Any]]:
        from boto3.dynamodb.conditions import Key

        cond = Key("pk").eq(pk)
        if sk_prefix:
            cond = cond & Key("sk").begins_with(sk_prefix)
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"KeyConditionExpression": cond, "ConsistentRead": True}
        while True:
            page = self._t.query(**kwargs)
            items.extend(_from_dynamo(i["item"]) for i in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def delete(self, pk: str, sk: str) -> None:
        self._t.delete_item(Key={"pk": pk, "sk": sk})

    def update(
        self, pk: str, sk: str, changes: dict[str, Any], *, expect: dict[str, Any] | None = None
    ) -> dict[str, Any] | None:
        names = {f"#f{i}": k for i, k in enumerate(changes)}
        values = {f":v{i}": _to_dynamo(v) for i, v in enumerate(changes.values())}
        sets = ", ".join(f"#item.#f{i} = :v{i}" for i in range(len(changes)))
        condition = "attribute_exists(pk)"
        for i, (field, want) in enumerate((expect or {}).items()):
            names[f"#c{i}"] = field
            if want is None:
                condition += f" AND (attribute_not_exists(#item.#c{i}) OR #item.#c{i} = :null)"
                values[":null"] = None
            else:
                condition += f" AND #item.#c{i} = :c{i}"
                values[f":c{i}"] = _to_dynamo(want)
        try:
            got = self._t.update_item(
                Key={"pk": pk, "sk": sk},
                UpdateExpression=f"SET {sets}",
                ConditionExpression=condition,
                ExpressionAttributeNames={"#item": "item", **names},
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as err:
            if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            if expect and "Item" in err.response:
                raise Conflict(f"{pk}/{sk} changed: expected {expect}") from err
            return None
        return _from_dynamo(got["Attributes"]["item"])


class DynamoTableStore:
    """Logical table ``name`` lives in the DynamoDB table ``<prefix><name>`` (pk, sk strings)."""

    def __init__(self, prefix: str, *, resource: Any = None) -> None:
        self.prefix = prefix
        self._ddb = resource or boto3.resource("dynamodb")

    def table(self, name: str) -> DynamoTable:
        return DynamoTable(self._ddb.Table(f"{self.prefix}{name}"))


class EventBridgeBus:
    source = "sightline"

    def __init__(self, bus_name: str, *, client: Any = None) -> None:
        self.bus_name = bus_name
        self._eb = client or boto3.client("events")

    def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        resp = self._eb.put_events(
            Entries=[
                {
                    "Source": self.source,
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail, default=str),
                    "EventBusName": self.bus_name,
                }
            ]
        )
        if resp.get("FailedEntryCount"):
            raise TransientError(f"EventBridge rejected {detail_type}: {resp['Entries']}")


# InvokeEndpointAsync's retryable answers: throttling and the service's 5xx.
_SAGEMAKER_TRANSIENT = {"ThrottlingException", "InternalFailure", "ServiceUnavailable"}


class SageMakerAsyncCodec:
    """InvokeEndpointAsync with input and output in S3.

    Completion is not awaited here on the pipeline path: the endpoint's success/error SNS
    topics trigger ``functions/codec_callback``, which resumes the state machine with the
    task token (services.codec_client.CodecJobs). ``wait`` serves only synchronous API
    requests (POST /v1/ingest/chunk, decode).
    """

    def __init__(
        self,
        endpoint_name: str,
        blobs: Any,
        *,
        client: Any = None,
        request_ttl_s: int | None = None,
        invocation_timeout_s: int | None = None,
    ) -> None:
        self.endpoint_name = endpoint_name
        self.blobs = blobs
        self._rt = client or boto3.client("sagemaker-runtime")
        self.request_ttl_s = request_ttl_s
        self.invocation_timeout_s = invocation_timeout_s

    def invoke_async(
        self, input_key: str, *, inference_id: str, content_type: str
    ) -> AsyncInvocation:
        extra: dict[str, Any] = {}
        if self.request_ttl_s:
            extra["RequestTTLSeconds"] = int(self.request_ttl_s)
        if self.invocation_timeout_s:
            extra["InvocationTimeoutSeconds"] = int(self.invocation_timeout_s)
        try:
            resp = self._rt.invoke_endpoint_async(
                EndpointName=self.endpoint_name,
                InputLocation=self.blobs.uri(input_key),
                ContentType=content_type,
                Accept="application/json",
                InferenceId=inference_id,
                **extra,
            )
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            if code in _SAGEMAKER_TRANSIENT:
                # Retried with backoff and jitter by the Encode state's Retry, not here.
                raise TransientError(f"endpoint {self.endpoint_name}: {code}") from err
            _raise_mapped(err, f"endpoint {self.endpoint_name}")
            raise
        return AsyncInvocation(
            inference_id=inference_id,
            input_key=input_key,
            output_key=_key_of(resp["OutputLocation"]),
            failure_key=_key_of(resp.get("FailureLocation", "")),
        )

    def wait(self, invocation: AsyncInvocation, timeout_s: float) -> bytes:
        from sightline.services.codec_client import wait_for_output

        return wait_for_output(self.blobs, invocation, timeout_s, poll_s=2.0)


def _key_of(uri: str) -> str:
    if not uri:
        return ""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3 URI: {uri}")
    return uri.split("/", 3)[3]


# SendTaskSuccess/Failure answers that mean "no task waits on this token any more".
_TOKEN_GONE = {"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"}


class StepFunctionsTaskTokens:
    """SendTaskSuccess / SendTaskFailure for ``.waitForTaskToken`` states."""

    def __init__(self, *, client: Any = None) -> None:
        self._sfn = client or boto3.client("stepfunctions")

    def succeed(self, token: str, output: dict[str, Any]) -> bool:
        return self._send(
            "SendTaskSuccess",
            lambda: self._sfn.send_task_success(
                taskToken=token, output=json.dumps(output, default=str)
            ),
        )

    def fail(self, token: str, error: str, cause: str) -> bool:
        # The service's limits: error 256 characters, cause 32,768.
        return self._send(
            "SendTaskFailure",
            lambda: self._sfn.send_task_failure(
                taskToken=token, error=error[:256], cause=cause[:32768]
            ),
        )

    @staticmethod
    def _send(what: str, call: Any) -> bool:
        try:
            call()
        except ClientError as err:
            if err.response.get("Error", {}).get("Code", "") in _TOKEN_GONE:
                return False
            _raise_mapped(err, what)
            raise
        return True


class DynamoTenantLimiter:
    """The TenantLimiter port on DynamoDB: ``limit`` slot items per (tenant, step).

    pk ``<tenant>#<step>``, sk ``slot#NNNN``, attributes ``holder`` and ``expires_at`` (epoch
    seconds; the table's TTL attribute, though correctness never waits for TTL deletion).
    A slot is taken by a conditional PutItem that succeeds only if it is free, expired or
    already this holder's, so two Lambdas can never hold one slot; a retried step finds
    its own slot first and renews the lease instead of taking a second one.
    """

    def __init__(self, table_name: str, *, resource: Any = None, now: Any = time.time) -> None:
        self._t = (resource or boto3.resource("dynamodb")).Table(table_name)
        self._now = now

    @staticmethod
    def _pk(tenant_id: str, step: str) -> str:
        return f"{tenant_id}#{step}"

    def _slots(self, pk: str) -> list[dict[str, Any]]:
        from boto3.dynamodb.conditions import Key

        try:
            items = self._t.query(KeyConditionExpression=Key("pk").eq(pk), ConsistentRead=True)
        except ClientError as err:
            _raise_mapped(err, "tenant limits")
            raise
        return list(items.get("Items", []))

    def acquire(
        self, tenant_id: str, step: str, holder: str, *, limit: int, lease_s: float
    ) -> None:
        if limit <= 0:
            return
        pk, now = self._pk(tenant_id, step), self._now()
        expires = int(now + lease_s) + 1
        slots = self._slots(pk)
        live = [i for i in slots if float(i.get("expires_at", 0)) > now]
        taken = {i["sk"] for i in live}
        candidates = [i["sk"] for i in live if i.get("holder") == holder]
        if not candidates:
            if len(live) >= limit:
                raise TenantThrottled(
                    f"tenant {tenant_id} has {len(live)} {step} steps running (limit {limit})"
                )
            candidates = [f"slot#{n:04d}" for n in range(limit) if f"slot#{n:04d}" not in taken]
            random.shuffle(candidates)  # concurrent acquirers spread over the free slots
        for sk in candidates:
            try:
                self._t.put_item(
                    Item={"pk": pk, "sk": sk, "holder": holder, TTL_ATTRIBUTE: expires},
                    ConditionExpression="attribute_not_exists(pk) OR #exp <= :now OR holder = :me",
                    ExpressionAttributeNames={"#exp": TTL_ATTRIBUTE},
                    ExpressionAttributeValues={":now": Decimal(str(now)), ":me": holder},
                )
                return
            except ClientError as err:
                if err.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                    continue  # another holder took it between the query and the write
                _raise_mapped(err, "tenant limits")
                raise
        raise TenantThrottled(f"tenant {tenant_id} has no free {step} slot (limit {limit})")

    def release(self, tenant_id: str, step: str, holder: str) -> None:
        pk = self._pk(tenant_id, step)
        for item in self._slots(pk):
            if item.get("holder") != holder:
                continue
            try:
                self._t.delete_item(
                    Key={"pk": pk, "sk": item["sk"]},
                    ConditionExpression="holder = :me",
                    ExpressionAttributeValues={":me": holder},
                )
            except ClientError as err:
                if err.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    _raise_mapped(err, "tenant limits")
                    raise

    def holders(self, tenant_id: str, step: str) -> list[str]:
        now = self._now()
        return sorted(
            str(i["holder"])
            for i in self._slots(self._pk(tenant_id, step))
            if float(i.get(TTL_ATTRIBUTE, 0)) > now
        )


class StepFunctionsOrchestrator:
    def __init__(self, ingest_arn: str, *, live_clip_arn: str = "", client: Any = None) -> None:
        self.ingest_arn = ingest_arn
        self.live_clip_arn = live_clip_arn
        self._sfn = client or boto3.client("stepfunctions")

    def start_live_clip(self, payload: LiveClipInput) -> str:
        """On AWS the camera's schedule starts live_clip; this starts one run by hand."""
        try:
            resp = self._sfn.start_execution(
                stateMachineArn=self.live_clip_arn, input=payload.model_dump_json()
            )
        except ClientError as err:
            _raise_mapped(err, "live_clip state machine")
            raise
        return str(resp["executionArn"])

    def start_ingest(self, payload: IngestInput) -> str:
        # The execution name makes a replayed trigger for the same content a no-op.
        name = f"{payload.video_id}-{int(time.time())}"[:80]
        try:
            resp = self._sfn.start_execution(
                stateMachineArn=self.ingest_arn, name=name, input=payload.model_dump_json()
            )
        except ClientError as err:
            _raise_mapped(err, "ingest state machine")
            raise
        return str(resp["executionArn"])

    def wait(self, execution_id: str, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            desc = self._sfn.describe_execution(executionArn=execution_id)
            if desc["status"] != "RUNNING" or time.monotonic() > deadline:
                return {
                    "status": desc["status"],
                    "output": json.loads(desc.get("output") or "null"),
                    "error": desc.get("error"),
                    "cause": desc.get("cause"),
                }
            time.sleep(1.0)
