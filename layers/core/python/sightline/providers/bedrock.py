"""Amazon Bedrock providers: a Converse describer (frames + versioned prompts + tool use
for structured events) and Titan Text Embeddings V2, behind the same ports as the local
providers.

Errors: throttling, unavailability and model timeouts become ``TransientError`` (the
state machine retries them with backoff; the client makes a single attempt so that the
backoff lives in one place); access and validation failures become
``BedrockRequestError``, which is not retried. Malformed structured output is asked for
once more with the validation error, then recorded in ``details["failure_reason"]`` with
no events, so a confused model never fails the pipeline.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sightline.errors import SightlineError, TransientError
from sightline.models import ChunkRef, DetectedEvent, EventType
from sightline.ports import ClipDescription, Describer
from sightline.prompts import load_prompt
from sightline.providers.frames import MAX_LONG_SIDE, Frame, sample_frames
from sightline.services.event_merge import merge_events
from sightline.services.usage import TokenUsage, UsageRecorder

DEFAULT_DESCRIBE_MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
DEFAULT_EMBED_MODEL = "amazon.titan-embed-text-v2:0"
TITAN_V2_DIMENSIONS = (256, 512, 1024)
TITAN_V2_MAX_CHARS = 50_000
EVENTS_TOOL = "record_events"

_TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "ServiceUnavailableException",
        "ServiceUnavailable",
        "ModelTimeoutException",
        "ModelNotReadyException",
        "InternalServerException",
        "ServiceQuotaExceededException",
    }
)
_HINTS = {
    "AccessDeniedException": (
        "check that model access is enabled for this account and region and that the role "
        "may call bedrock:InvokeModel on it"
    ),
    "ValidationException": "the request was rejected as invalid (model id, input size, schema)",
    "ResourceNotFoundException": "no such model in this region",
}


class BedrockRequestError(SightlineError):
    """A Bedrock call that will fail the same way if retried (access, validation, model id)."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


def map_bedrock_error(err: Exception, what: str) -> SightlineError:
    """The domain error for a failed Bedrock call (raise it ``from err``)."""
    if isinstance(err, ReadTimeoutError | ConnectTimeoutError | EndpointConnectionError):
        return TransientError(f"{what}: {type(err).__name__}")
    if isinstance(err, ConnectionClosedError):
        return TransientError(f"{what}: connection closed")
    if isinstance(err, ClientError):
        code = err.response.get("Error", {}).get("Code", "")
        message = err.response.get("Error", {}).get("Message", "")
        if code in _TRANSIENT_CODES:
            return TransientError(f"{what}: {code}")
        hint = _HINTS.get(code, "")
        text = f"{what}: {code}: {message}" + (f" ({hint})" if hint else "")
        return BedrockRequestError(text, code)
    return BedrockRequestError(f"{what}: {err}")


def bedrock_client(region: str | None = None) -> Any:
    # One attempt: retries with backoff belong to the state machine (TransientError).
    cfg = Config(
        retries={"mode": "standard", "total_max_attempts": 1},
        connect_timeout=10,
        read_timeout=120,
    )
    return boto3.client("bedrock-runtime", region_name=region, config=cfg)


# ----- structured events ---------------------------------------------------------------

_EVENT_TYPES = tuple(t.value for t in EventType)


class EventReport(BaseModel):
    """What the events tool returns; each event is the pipeline's own ``DetectedEvent``."""

    model_config = ConfigDict(extra="ignore")

    events: list[DetectedEvent]
    counts: dict[str, int] = Field(default_factory=dict)

    @field_validator("events")
    @classmethod
    def _check_events(cls, events: list[DetectedEvent]) -> list[DetectedEvent]:
        for i, e in enumerate(events):
            e.type = e.type.strip().lower()
            if e.type not in _EVENT_TYPES:
                raise ValueError(f"events[{i}].type {e.type!r} is not one of {_EVENT_TYPES}")
            if not 0.0 <= e.confidence <= 1.0:
                raise ValueError(f"events[{i}].confidence {e.confidence} is not in [0, 1]")
            if e.start_s < 0 or e.end_s < e.start_s:
                raise ValueError(f"events[{i}] needs 0 <= start_s <= end_s")
        return events


def _simplify(node: Any, defs: dict[str, Any]) -> Any:
    """Inline ``$ref``s and reduce pydantic's schema to the JSON Schema subset that tool
    specs handle everywhere (no ``prefixItems``, no ``anyOf [X, null]``)."""
    if isinstance(node, list):
        return [_simplify(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _simplify(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
    any_of = node.get("anyOf")
    if any_of and len(any_of) == 2 and {"type": "null"} in any_of:
        (inner,) = [s for s in any_of if s != {"type": "null"}]
        rest = {k: v for k, v in node.items() if k not in ("anyOf", "default")}
        return _simplify({**inner, **rest}, defs)
    out = {k: _simplify(v, defs) for k, v in node.items() if k not in ("$defs", "default")}
    if "prefixItems" in out:
        items = out.pop("prefixItems")
        out["items"] = items[0] if items else {}
    return out


def events_tool_schema() -> dict[str, Any]:
    raw = EventReport.model_json_schema()
    schema = _simplify(raw, raw.get("$defs", {}))
    event = schema["properties"]["events"]["items"]
    event["properties"]["type"]["enum"] = list(_EVENT_TYPES)
    event["properties"]["confidence"].update(minimum=0, maximum=1)
    event["properties"]["start_s"]["minimum"] = 0
    schema["properties"]["counts"]["additionalProperties"] = {"type": "integer", "minimum": 0}
    schema["required"] = ["events"]
    schema["description"] = "The discrete events seen in the clip and the object counts."
    return schema


def events_tool_config() -> dict[str, Any]:
    return {
        "tools": [
            {
                "toolSpec": {
                    "name": EVENTS_TOOL,
                    "description": "Record the discrete events seen in the clip.",
                    "inputSchema": {"json": events_tool_schema()},
                }
            }
        ],
        "toolChoice": {"tool": {"name": EVENTS_TOOL}},
    }


def parse_events_reply(message: dict[str, Any]) -> tuple[EventReport | None, str, str | None]:
    """(report, error, toolUseId) from a Converse output message."""
    tool_use = next(
        (
            b["toolUse"]
            for b in message.get("content", [])
            if "toolUse" in b and b["toolUse"].get("name") == EVENTS_TOOL
        ),
        None,
    )
    if tool_use is None:
        return None, f"the reply did not call the tool {EVENTS_TOOL}", None
    data = tool_use.get("input")
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError as exc:
            return None, f"the tool input is not valid JSON: {exc}", tool_use.get("toolUseId")
    try:
        return EventReport.model_validate(data), "", tool_use.get("toolUseId")
    except ValidationError as exc:
        errors = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in exc.errors()
        )
        return (
            None,
            f"the tool input does not match the schema: {errors}",
            tool_use.get("toolUseId"),
        )


_TAGS_LINE = re.compile(r"^[\s*_#`>-]*tags?[\s*_`]*:\s*(.*)$", re.IGNORECASE)


def split_description(text: str) -> tuple[str, list[str]]:
    """The description and the tags from a reply ending in ``Tags: a, b``."""
    lines = text.strip().splitlines()
    tags: list[str] = []
    body: list[str] = []
    for line in lines:
        m = _TAGS_LINE.match(line)
        if m:
            tags = [t.strip(" *_`.#\"'").lower() for t in m.group(1).split(",")]
        else:
            body.append(line)
    description = " ".join(" ".join(body).split())
    seen: list[str] = []
    for t in tags:
        if t and t not in seen and len(t) <= 40:
            seen.append(t)
    return description, seen[:12]


def _bbox_ok(b: Any) -> Any:
    if b is None:
        return None
    x1, y1, x2, y2 = (min(max(float(v), 0.0), 1.0) for v in b)
    return (x1, y1, x2, y2) if x2 > x1 and y2 > y1 else None


# ----- describer ------------------------------------------------------------------------


class BedrockDescriber:
    """Describe a chunk with a Converse model: one call for the text, one forced tool call
    (continuing the conversation, so the same frames ground it) for the events."""

    def __init__(
        self,
        model_id: str = DEFAULT_DESCRIBE_MODEL,
        *,
        client: Any = None,
        region: str | None = None,
        frames_per_chunk: int = 4,
        frame_max_side: int = 768,
        describe_prompt: str = "v1",
        events_prompt: str = "v1",
        max_tokens: int = 1024,
        usage: UsageRecorder | None = None,
        detector: Describer | None = None,
    ) -> None:
        if not 1 <= frames_per_chunk <= 20:
            raise ValueError("frames_per_chunk must be 1..20 (Converse takes 20 images)")
        if not 16 <= frame_max_side <= MAX_LONG_SIDE:
            raise ValueError(f"frame_max_side must be 16..{MAX_LONG_SIDE}")
        self.model = model_id
        self._client = client
        self._region = region
        self.frames_per_chunk = frames_per_chunk
        self.frame_max_side = frame_max_side
        self.describe_prompt = load_prompt("describe", describe_prompt)
        self.events_prompt = load_prompt("events", events_prompt)
        self.max_tokens = max_tokens
        self.usage = usage
        self.detector = detector

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = bedrock_client(self._region)
        return self._client

    def _converse(self, chunk: ChunkRef, call: str, **kwargs: Any) -> dict[str, Any]:
        try:
            resp = self.client.converse(
                modelId=self.model,
                inferenceConfig={"maxTokens": self.max_tokens, "temperature": 0.0},
                **kwargs,
            )
        except Exception as exc:
            raise map_bedrock_error(exc, f"Bedrock Converse ({self.model}, {call})") from exc
        if self.usage is not None:
            self.usage.record(
                chunk.tenant_id,
                self.model,
                TokenUsage.from_converse(resp.get("usage")),
                call_id=f"{chunk.chunk_id}#{call}",
            )
        return resp

    def frame_blocks(self, frames: Sequence[Frame]) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        for f in frames:
            blocks.append({"text": f"Frame at t={f.t_s:.2f} s:"})
            blocks.append({"image": {"format": "jpeg", "source": {"bytes": f.jpeg}}})
        return blocks

    def describe(self, clip: Path, chunk: ChunkRef) -> ClipDescription:
        duration = round(chunk.t1 - chunk.t0, 3)
        frames = sample_frames(clip, self.frames_per_chunk, max_side=self.frame_max_side)
        prompt = self.describe_prompt.render(frames=len(frames), duration=duration)
        user = [*self.frame_blocks(frames), {"text": prompt}]
        messages: list[dict[str, Any]] = [{"role": "user", "content": user}]
        total = TokenUsage()

        resp = self._converse(chunk, "describe", messages=list(messages))
        total = total + TokenUsage.from_converse(resp.get("usage"))
        reply = resp["output"]["message"]
        text = "\n".join(b["text"] for b in reply.get("content", []) if "text" in b)
        description, tags = split_description(text)
        stops = [resp.get("stopReason", "")]

        messages += [
            {"role": "assistant", "content": [{"text": text or "(no description)"}]},
            {
                "role": "user",
                "content": [
                    {
                        "text": self.events_prompt.render(
                            tool=EVENTS_TOOL, types=", ".join(_EVENT_TYPES), duration=duration
                        )
                    }
                ],
            },
        ]
        tool_config = events_tool_config()
        report: EventReport | None = None
        error = ""
        attempts = 0
        for call in ("events", "events-retry"):
            attempts += 1
            resp = self._converse(chunk, call, messages=list(messages), toolConfig=tool_config)
            total = total + TokenUsage.from_converse(resp.get("usage"))
            stops.append(resp.get("stopReason", ""))
            out = resp["output"]["message"]
            report, error, tool_use_id = parse_events_reply(out)
            if report is not None:
                break
            # Once more, with the validation error as the tool's result.
            messages.append({"role": "assistant", "content": out.get("content") or []})
            if tool_use_id:
                feedback: dict[str, Any] = {
                    "toolResult": {
                        "toolUseId": tool_use_id,
                        "content": [{"text": f"Invalid input: {error}. Call the tool again."}],
                        "status": "error",
                    }
                }
            else:
                feedback = {"text": f"{error}. Call the tool {EVENTS_TOOL} now."}
            messages.append({"role": "user", "content": [feedback]})

        details: dict[str, Any] = {
            "prompts": [self.describe_prompt.id, self.events_prompt.id],
            "frames": [f.t_s for f in frames],
            "frame_size": [frames[0].width, frames[0].height],
            "input_tokens": total.input_tokens,
            "output_tokens": total.output_tokens,
            "stop_reasons": stops,
            "events_attempts": attempts,
            "duration_s": duration,
        }
        events: list[DetectedEvent] = []
        counts: dict[str, int] = {}
        if report is None:
            details["failure_reason"] = f"events: {error}"[:1000]
        else:
            events = [e.model_copy(update={"bbox": _bbox_ok(e.bbox)}) for e in report.events]
            counts = {k.lower(): max(0, int(v)) for k, v in report.counts.items()}
        if self.detector is not None:
            det = self.detector.describe(clip, chunk)
            events = merge_events(det.events, events)
            for k, v in det.counts.items():
                counts[k] = max(counts.get(k, 0), v)
            tags += [t for t in det.tags if t not in tags]
            details["detector"] = {"model": getattr(self.detector, "model", ""), **det.details}
        for t in sorted({e.type for e in events}):
            if t not in tags:
                tags.append(t)
        return ClipDescription(
            description=description,
            tags=tags,
            events=events,
            counts=counts,
            model=self.model,
            details=details,
        )


# ----- embeddings -----------------------------------------------------------------------


class TitanEmbedder:
    """Titan Text Embeddings V2 via InvokeModel; L2-normalised (cosine = dot product)."""

    def __init__(
        self,
        base_model_id: str = DEFAULT_EMBED_MODEL,
        dim: int = 512,
        *,
        client: Any = None,
        region: str | None = None,
    ) -> None:
        if dim not in TITAN_V2_DIMENSIONS:
            raise ValueError(f"dim must be one of {TITAN_V2_DIMENSIONS}")
        self.base_model_id = base_model_id
        self.dim = dim
        self._client = client
        self._region = region
        self.input_tokens = 0  # running count (the port has no tenant to charge)

    @property
    def model_id(self) -> str:
        return f"{self.base_model_id}@{self.dim}"

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = bedrock_client(self._region)
        return self._client

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for text in texts:  # Titan V2 takes one text per request
            body = {
                "inputText": (text if text.strip() else ".")[:TITAN_V2_MAX_CHARS],
                "dimensions": self.dim,
                "normalize": True,
            }
            try:
                resp = self.client.invoke_model(
                    modelId=self.base_model_id,
                    body=json.dumps(body).encode(),
                    contentType="application/json",
                    accept="application/json",
                )
                payload = json.loads(resp["body"].read())
            except (ValueError, KeyError) as exc:
                raise BedrockRequestError(f"malformed Titan response: {exc}") from exc
            except Exception as exc:
                raise map_bedrock_error(exc, f"Bedrock InvokeModel ({self.base_model_id})") from exc
            vec = payload.get("embedding")
            if not isinstance(vec, list) or len(vec) != self.dim:
                raise BedrockRequestError(
                    f"Titan returned {len(vec) if isinstance(vec, list) else 'no'} values, "
                    f"expected {self.dim}"
                )
            self.input_tokens += int(payload.get("inputTextTokenCount", 0) or 0)
            out.append([float(v) for v in vec])
        return out
