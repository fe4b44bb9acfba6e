"""Ports: the small interfaces behind which the world differs (AWS vs one machine).

Domain code depends only on these; ``sightline.factory`` builds the adapter that
configuration names.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from sightline.models import ChunkRef, DetectedEvent, IndexDocument, IngestInput, SearchHit


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
    def update(self, pk: str, sk: str, changes: dict[str, Any]) -> dict[str, Any] | None: ...


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
    video_ids: tuple[str, ...] = ()
    camera_ids: tuple[str, ...] = ()
    event_types: tuple[str, ...] = ()
    t_from: float | None = None
    t_to: float | None = None


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
    ) -> list[SearchHit]: ...
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
    def wait(self, execution_id: str, timeout_s: float) -> dict[str, Any]: ...


Subscriber = Callable[[str, dict[str, Any]], None]
