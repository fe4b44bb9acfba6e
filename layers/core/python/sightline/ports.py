"""Ports: the small interfaces behind which the world differs (AWS vs one machine).

Domain code depends only on these; ``sightline.factory`` builds the adapter that
configuration names.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from sightline.models import (
    ChunkRef,
    DetectedEvent,
    IndexDocument,
    IngestInput,
    LiveClipInput,
    SearchHit,
)


@runtime_checkable
class BlobStore(Protocol):
    """Object storage (S3 on AWS, files under SIGHTLINE_HOME locally)."""

    def put_bytes(self, key: str, data: bytes, content_type: str = ...) -> str: ...
    def get_bytes(self, key: str, byte_range: tuple[int, int] | None = None) -> bytes: ...
    def upload_file(self, path: Path, key: str, content_type: str = ...) -> str: ...
    def download_file(self, key: str, path: Path) -> None: ...
    def exists(self, key: str) -> bool: ...
    def size(self, key: str) -> int: ...
    def list_keys(self, prefix: str) -> list[str]: ...
    def delete_prefix(self, prefix: str) -> int: ...
    def uri(self, key: str) -> str: ...


@runtime_checkable
class Table(Protocol):
    """A partition/sort-key table (DynamoDB on AWS, SQLite locally)."""

    def put(self, pk: str, sk: str, item: dict[str, Any]) -> None: ...
    def get(self, pk: str, sk: str) -> dict[str, Any] | None: ...
    def query(self, pk: str, sk_prefix: str = "") -> list[dict[str, Any]]: ...
    def delete(self, pk: str, sk: str) -> None: ...
    def update(
        self, pk: str, sk: str, changes: dict[str, Any], *, expect: dict[str, Any] | None = None
    ) -> dict[str, Any] | None:
        """Apply ``changes`` to an existing item; None when there is none. With ``expect``,
        only if each named field holds exactly that value now (None: absent or null), else
        ``sightline.errors.Conflict`` — a compare-and-set."""
        ...


class TableStore(Protocol):
    def table(self, name: str) -> Table: ...


@dataclass(frozen=True)
class AsyncInvocation:
    """The SageMaker asynchronous inference contract: input, output and failure locations."""

    inference_id: str
    input_key: str
    output_key: str
    failure_key: str


class CodecEndpoint(Protocol):
    def invoke_async(
        self, input_key: str, *, inference_id: str, content_type: str
    ) -> AsyncInvocation: ...
    def wait(self, invocation: AsyncInvocation, timeout_s: float) -> bytes: ...


@dataclass(frozen=True)
class ClipDescription:
    description: str
    tags: list[str]
    events: list[DetectedEvent]
    counts: dict[str, int]
    model: str
    details: dict[str, Any]


class Describer(Protocol):
    def describe(self, clip: Path, chunk: ChunkRef) -> ClipDescription: ...


class Embedder(Protocol):
    model_id: str
    dim: int

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


@dataclass(frozen=True)
class SearchFilters:
    """Filters ANDed to the tenant filter of every search (never widening it).

    Value lists match any of their values; ``t_from``/``t_to`` (seconds of the video) and
    ``wall_from``/``wall_to`` (wall-clock, naive = UTC) select chunks overlapping the
    range; a chunk without wall-clock times never matches a wall-clock filter.
    """

    video_ids: tuple[str, ...] = ()
    camera_ids: tuple[str, ...] = ()
    event_types: tuple[str, ...] = ()
    t_from: float | None = None
    t_to: float | None = None
    stream_ids: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    wall_from: datetime | None = None
    wall_to: datetime | None = None


class VectorIndex(Protocol):
    def upsert(self, doc: IndexDocument) -> None: ...
    def upsert_many(self, docs: Sequence[IndexDocument]) -> int: ...
    def delete_video(self, tenant_id: str, video_id: str) -> int: ...
    def search(
        self,
        tenant_id: str,
        vector: Sequence[float],
        *,
        k: int = 10,
        filters: SearchFilters | None = None,
        field: str = "text_embedding",
        embedding_model: str | None = None,
    ) -> list[SearchHit]:
        """The ``k`` nearest of the tenant's documents passing ``filters``, cosine scores;
        ``embedding_model`` names the model of ``field``'s vectors (text embedding model,
        or latent codebook) and excludes every other model's."""
        ...

    def search_hybrid(
        self,
        tenant_id: str,
        vector: Sequence[float],
        text: str,
        *,
        k: int = 10,
        offset: int = 0,
        filters: SearchFilters | None = None,
        embedding_model: str | None = None,
        weights: tuple[float, float] = (0.7, 0.3),
    ) -> list[SearchHit]:
        """k-NN and BM25 (``text`` against descriptions) candidates, both within the tenant
        and ``filters``, each min-max normalised within the query, combined as a weighted
        arithmetic mean with ``weights`` = (vector, lexical), ranked; then ``offset``/``k``."""
        ...

    def get(self, tenant_id: str, manifest_id: str) -> IndexDocument | None: ...
    def count(self, tenant_id: str | None = None) -> int: ...


class EventBus(Protocol):
    def publish(self, detail_type: str, detail: dict[str, Any]) -> None: ...


class Orchestrator(Protocol):
    def start_ingest(self, payload: IngestInput) -> str: ...
    def start_live_clip(self, payload: LiveClipInput) -> str: ...
    def wait(self, execution_id: str, timeout_s: float) -> dict[str, Any]: ...


Subscriber = Callable[[str, dict[str, Any]], None]


class TaskTokens(Protocol):
    """Completes a Step Functions task that waits for its task token (``.waitForTaskToken``).

    Both answer False, instead of raising, when no task waits on the token any more (it
    timed out, or an earlier notice completed it): a late notice is not an error.
    """

    def succeed(self, token: str, output: dict[str, Any]) -> bool: ...
    def fail(self, token: str, error: str, cause: str) -> bool: ...


class TenantLimiter(Protocol):
    """A counting semaphore per (tenant, step) with leases (DynamoDB on AWS, SQLite locally).

    ``acquire`` is idempotent per ``holder`` (a retried step keeps its slot and renews the
    lease) and raises ``sightline.errors.TenantThrottled`` when ``limit`` other holders have
    live leases; ``release`` frees the holder's slot (a no-op when it holds none).
    """

    def acquire(
        self, tenant_id: str, step: str, holder: str, *, limit: int, lease_s: float
    ) -> None: ...
    def release(self, tenant_id: str, step: str, holder: str) -> None: ...
    def holders(self, tenant_id: str, step: str) -> list[str]: ...


@dataclass(frozen=True)
class Fragment:
    """A unit of a live stream's archive (a KVS fragment; a recorded segment locally)."""

    number: str
    start: datetime
    end: datetime
    size_bytes: int


class ClipSource(Protocol):
    """Where a camera's recorded media is read back by wall-clock time (KVS GetClip on AWS,
    a looping file or a recorded RTSP stream locally)."""

    def fragments(self, start: datetime, end: datetime) -> list[Fragment]:
        """The fragments whose producer timestamps fall in [start, end), in order."""
        ...

    def clip(self, start: datetime, end: datetime, dest: Path) -> bool:
        """Write [start, end) as an MP4 to ``dest``; False when the stream has no media there
        (a gap). Raises TransientError for failures worth retrying."""
        ...


class Scheduler(Protocol):
    """Per-camera schedules that start ``live_clip`` (EventBridge Scheduler on AWS)."""

    def put(self, tenant_id: str, camera_id: str, every_s: float, *, enabled: bool) -> None: ...
    def delete(self, tenant_id: str, camera_id: str) -> None: ...
