"""The embedded default's orchestrator: the ASL files in ``state_machines/`` executed by
moto's interpreter, with Lambda tasks dispatched to the handlers in ``functions/``.
"""

from __future__ import annotations

import importlib
import json
import logging
import threading
import time
import traceback
import uuid
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from sightline.adapters.aws import StepFunctionsTaskTokens
from sightline.errors import NotFound
from sightline.models import IngestInput, LiveClipInput
from sightline.services.codec_client import NOTICE_FAILED, NOTICE_SUCCEEDED, sns_event
from sightline_local import faults, moto_sfn, recovery

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
STATE_MACHINES = REPO_ROOT / "state_machines"
REGION = "us-east-1"
ACCOUNT = "123456789012"
FUNCTIONS = (
    "probe",
    "chunk",
    "encode",
    "describe",
    "latent",
    "events",
    "index",
    "finalize",
    "fail",
    "live_plan",
    "live_fetch",
    "live_commit",
    "codec_callback",
)
STATE_MACHINES_LOCAL = ("process_chunk", "ingest_video", "live_clip")


def function_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:sightline-{name}"


def substitutions() -> dict[str, str]:
    """The local values of the ASL DefinitionSubstitutions (the CDK sets the AWS ones)."""
    subs = {f"{_camel(name)}FunctionArn": function_arn(name) for name in FUNCTIONS}
    subs["ProcessChunkStateMachineArn"] = (
        f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:sightline-process_chunk"
    )
    return subs


def _camel(name: str) -> str:
    """``live_plan`` → ``LivePlan``: the substitution names the CDK uses too."""
    return "".join(part.capitalize() for part in name.split("_"))


def render_asl(name: str, subs: dict[str, str]) -> str:
    text = (STATE_MACHINES / f"{name}.asl.json").read_text()
    for key, value in subs.items():
        text = text.replace("${" + key + "}", value)
    if "${" in text:
        raise ValueError(f"{name}.asl.json has an unresolved substitution")
    json.loads(text)
    return text


@dataclass
class _LambdaContext:
    function_name: str
    aws_request_id: str
    invoked_function_arn: str
    memory_limit_in_mb: int = 3008
    function_version: str = "$LATEST"
    log_group_name: str = "/local/sightline"
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


class StepTimes:
    """Wall time spent in each step's handler (for the pipeline benchmark)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seconds: dict[str, list[float]] = {}

    def add(self, step: str, seconds: float) -> None:
        with self._lock:
            self.seconds.setdefault(step, []).append(seconds)

    def reset(self) -> None:
        with self._lock:
            self.seconds.clear()

    def snapshot(self) -> dict[str, list[float]]:
        with self._lock:
            return {k: list(v) for k, v in self.seconds.items()}


STEP_TIMES = StepTimes()


def dispatch(function: str, payload: bytes) -> tuple[Any, dict[str, str] | None]:
    """Call the handler named by a Lambda ARN, as Lambda would."""
    name = function.rsplit(":", 1)[-1].removeprefix("sightline-")
    if name not in FUNCTIONS:
        return None, {
            "errorType": "ResourceNotFoundException",
            "errorMessage": f"no local function {function}",
        }
    handler = importlib.import_module(f"functions.{name}.handler").lambda_handler
    context = _LambdaContext(
        function_name=f"sightline-{name}",
        aws_request_id=str(uuid.uuid4()),
        invoked_function_arn=function_arn(name),
    )
    started = time.perf_counter()
    try:
        event = json.loads(payload)
        injected = faults.PLAN.check(name, event)  # None unless a test armed a fault
        if injected is not None:
            return None, injected
        return handler(event, context), None
    except Exception as exc:  # Lambda turns any exception into an error payload
        logger.info("local function %s failed: %s: %s", name, type(exc).__name__, exc)
        return None, {
            "errorType": type(exc).__name__,
            "errorMessage": str(exc),
            "stackTrace": traceback.format_exception(exc)[-3:],
        }
    finally:
        STEP_TIMES.add(name, time.perf_counter() - started)


class _Engine:
    """One moto Step Functions backend per process, holding both state machines."""

    _lock = threading.Lock()
    _instance: _Engine | None = None

    def __init__(self) -> None:
        self._mock = mock_aws(config=moto_sfn.mock_config())
        self._mock.start()
        moto_sfn.install(dispatch)
        self.sfn = boto3.client("stepfunctions", region_name=REGION)
        subs = substitutions()
        self.arns: dict[str, str] = {}
        for name in STATE_MACHINES_LOCAL:
            resp = self.sfn.create_state_machine(
                name=f"sightline-{name}",
                definition=render_asl(name, subs),
                roleArn=f"arn:aws:iam::{ACCOUNT}:role/sightline-local",
            )
            self.arns[name] = resp["stateMachineArn"]

    @classmethod
    def get(cls) -> _Engine:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance


# The codec endpoint's SNS topics on one machine: bus detail type -> topic ARN.
CODEC_TOPICS = {
    NOTICE_SUCCEEDED: f"arn:aws:sns:{REGION}:{ACCOUNT}:sightline-codec-success",
    NOTICE_FAILED: f"arn:aws:sns:{REGION}:{ACCOUNT}:sightline-codec-error",
}
_subscribed_buses: weakref.WeakSet[Any] = weakref.WeakSet()


def deliver_codec_notice(detail_type: str, detail: dict[str, Any]) -> None:
    """The topics' Lambda subscription: a codec notice on the local bus becomes the SNS
    event that triggers ``functions/codec_callback``, exactly as on AWS. Runs in the
    publisher's thread (the codec worker)."""
    topic = CODEC_TOPICS.get(detail_type)
    if topic is None:
        return
    event = sns_event(detail, topic)
    _, error = dispatch(function_arn("codec_callback"), json.dumps(event).encode())
    if error is not None:
        logger.warning("codec_callback failed for %s: %s", detail.get("inferenceId"), error)


def local_task_tokens() -> StepFunctionsTaskTokens:
    """SendTaskSuccess/Failure against the embedded engine (moto's interpreter)."""
    return StepFunctionsTaskTokens(client=_Engine.get().sfn)


class LocalOrchestrator:
    """The Orchestrator port on one machine."""

    def __init__(self) -> None:
        self._engine = _Engine.get()
        from sightline import factory

        bus = factory.bus()
        if hasattr(bus, "subscribe") and bus not in _subscribed_buses:
            bus.subscribe(deliver_codec_notice)
            _subscribed_buses.add(bus)

    def start_ingest(self, payload: IngestInput) -> str:
        resp = self._engine.sfn.start_execution(
            stateMachineArn=self._engine.arns["ingest_video"],
            # The name carries this process's lease, so that a later process can tell an
            # execution that died with its process from one still running elsewhere.
            name=recovery.execution_name(payload.video_id),
            input=payload.model_dump_json(),
        )
        return str(resp["executionArn"])

    def start_live_clip(self, payload: LiveClipInput) -> str:
        resp = self._engine.sfn.start_execution(
            stateMachineArn=self._engine.arns["live_clip"],
            name=f"{payload.camera_id}-{uuid.uuid4().hex[:12]}",
            input=payload.model_dump_json(),
        )
        return str(resp["executionArn"])

    def is_running(self, execution_id: str) -> bool:
        try:
            desc = self._engine.sfn.describe_execution(executionArn=execution_id)
        except self._engine.sfn.exceptions.ExecutionDoesNotExist:
            return False
        return desc["status"] == "RUNNING"

    def wait(self, execution_id: str, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                desc = self._engine.sfn.describe_execution(executionArn=execution_id)
            except self._engine.sfn.exceptions.ExecutionDoesNotExist as exc:
                raise NotFound(f"execution {execution_id} not found") from exc
            if desc["status"] != "RUNNING" or time.monotonic() > deadline:
                return {
                    "status": desc["status"],
                    "output": json.loads(desc.get("output") or "null"),
                    "error": desc.get("error"),
                    "cause": desc.get("cause"),
                }
            time.sleep(0.2)

    def history(self, execution_id: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = self._engine.sfn.get_execution_history(
            executionArn=execution_id, maxResults=1000
        )["events"]
        return events


def resume_unfinished(video_ids: set[str] | None = None) -> list[dict[str, Any]]:
    """Resume the ingests a dead process left unfinished (call once when a process starts);
    see ``sightline_local.recovery``."""
    return recovery.resume_unfinished(video_ids)
