"""Domain records and step payloads.

Records (Video, Chunk, ManifestRow, Event, IndexDocument) are what the stores keep;
step payloads (``*Input`` / ``*Output``) are what the state machines pass between
handlers. Every record carries its tenant.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

TenantId = Annotated[
    str,
    Field(
        min_length=3,
        max_length=128,
        pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$",
        description="org/project",
    ),
]
VideoId = Annotated[str, Field(min_length=4, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
BBox = tuple[float, float, float, float]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VideoStatus(StrEnum):
    PENDING = "pending"
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


class EventType(StrEnum):
    PERSON = "person"
    VEHICLE = "vehicle"
    CROWD = "crowd"
    MOTION = "motion"
    ANIMAL = "animal"
    ANOMALY = "anomaly"


class Video(Record):
    tenant_id: TenantId
    video_id: VideoId
    filename: str = ""
    source_key: str = ""
    content_hash: str = ""
    status: VideoStatus = VideoStatus.PENDING
    failure_reason: str | None = None
    duration_s: float | None = None
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    codec: str | None = None
    size_bytes: int | None = None
    chunks_total: int = 0
    chunks_done: int = 0
    events_count: int = 0
    execution_id: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ChunkRef(Record):
    """One chunk of a video: the unit of work of ``process_chunk``."""

    tenant_id: TenantId
    video_id: VideoId
    index: Annotated[int, Field(ge=0)]
    t0: Annotated[float, Field(ge=0, description="start, seconds from the start of the video")]
    t1: Annotated[float, Field(gt=0)]
    key: str
    camera_id: str | None = None
    stream_id: str | None = None
    wall_t0: datetime | None = None

    @property
    def chunk_id(self) -> str:
        return f"{self.video_id}-c{self.index:05d}"


class QualityStats(Record):
    psnr: float | None = None
    ms_ssim: float | None = None


class ManifestRow(Record):
    manifest_id: str
    tenant_id: TenantId
    stream_id: str
    video_id: VideoId
    t0: float
    t1: float
    codebook_id: str
    model_id: str
    token_uri: str
    sideinfo_uri: str
    byte_size: int
    ratio: float
    bpp: float | None = None
    hash: Annotated[str, Field(pattern=r"^blake3:[0-9a-f]{64}$")]
    quality_stats: QualityStats = Field(default_factory=QualityStats)
    tokens_shape: list[int] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=utcnow)

    @property
    def chunk_index(self) -> int:
        """The chunk number, from the id ``ChunkRef.chunk_id`` gave it."""
        prefix = f"{self.video_id}-c"
        if not self.manifest_id.startswith(prefix):
            raise ValueError(
                f"manifest id {self.manifest_id} does not name a chunk of {self.video_id}"
            )
        return int(self.manifest_id[len(prefix) :])


class Event(Record):
    event_id: str
    tenant_id: TenantId
    video_id: VideoId | None = None
    camera_id: str | None = None
    chunk: int
    manifest_id: str
    t0: Annotated[float, Field(description="seconds from the start of the video")]
    t1: float
    type: str
    description: str
    confidence: Annotated[float, Field(ge=0, le=1)]
    bbox: BBox | None = None
    source: Literal["vlm", "detector", "latent"] = "detector"
    wall_t0: Annotated[datetime | None, Field(description="wall-clock start (cameras)")] = None
    wall_t1: Annotated[datetime | None, Field(description="wall-clock end (cameras)")] = None


class IndexDocument(Record):
    manifest_id: str
    tenant_id: TenantId
    stream_id: str
    video_id: VideoId
    camera_id: str | None = None
    t0: float
    t1: float
    t_mid: float
    description: str
    events: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    text_embedding: list[float]
    latent_embedding: list[float] | None = None
    embedding_model: str
    roi_suggestion: BBox | None = None
    wall_t0: Annotated[
        datetime | None, Field(description="wall-clock start of the chunk (cameras); naive = UTC")
    ] = None
    wall_t1: Annotated[datetime | None, Field(description="wall-clock end (cameras)")] = None
    latent_model: Annotated[
        str | None,
        Field(description="codebook id of latent_embedding: latents of two codebooks never mix"),
    ] = None


class SearchHit(BaseModel):
    manifest_id: str
    video_id: str
    score: float
    t0: float
    t1: float
    description: str
    camera_id: str | None = None
    roi_suggestion: BBox | None = None
    wall_t0: datetime | None = None
    wall_t1: datetime | None = None


# ----- step payloads -------------------------------------------------------------


class StepPayload(BaseModel):
    model_config = ConfigDict(extra="ignore")


class IngestInput(StepPayload):
    tenant_id: TenantId
    video_id: VideoId
    source_key: str
    filename: str = ""


class ProbeOutput(IngestInput):
    duration_s: float
    fps: float
    width: int
    height: int
    codec: str
    size_bytes: int
    content_hash: str
    frames: int | None = None


class ChunkPlan(StepPayload):
    tenant_id: TenantId
    video_id: VideoId
    chunks: list[ChunkRef]


class EncodeOutput(StepPayload):
    manifest_id: str
    token_key: str
    sideinfo_key: str
    codebook_id: str
    ratio: float
    byte_size: int
    psnr: float | None = None


class DetectedEvent(StepPayload):
    type: str
    start_s: float
    end_s: float
    confidence: float
    bbox: BBox | None = None
    description: str = ""


class DescribeOutput(StepPayload):
    description: str
    tags: list[str] = Field(default_factory=list)
    analysis_key: str
    model: str


class LatentOutput(StepPayload):
    latent_key: str
    dim: int
    anomaly_score: float


class ChunkWork(StepPayload):
    """What process_chunk accumulates as it goes (the ASL puts each step's result here)."""

    chunk: ChunkRef
    encode: EncodeOutput | None = None
    describe: DescribeOutput | None = None
    latent: LatentOutput | None = None


class EventsOutput(StepPayload):
    event_ids: list[str]
    types: list[str]


class IndexInput(ChunkWork):
    events: EventsOutput


class ChunkResult(StepPayload):
    chunk_index: int
    manifest_id: str
    events: int
    indexed: bool


class FinalizeInput(StepPayload):
    tenant_id: TenantId
    video_id: VideoId
    results: list[dict] = Field(default_factory=list)


class FailureInput(StepPayload):
    tenant_id: TenantId
    video_id: VideoId
    error: dict = Field(default_factory=dict)


class VideoSummary(StepPayload):
    tenant_id: str
    video_id: str
    status: VideoStatus
    chunks: int
    events: int
    failure_reason: str | None = None


# ----- live cameras ----------------------------------------------------------------

CameraId = Annotated[str, Field(min_length=4, max_length=64, pattern=r"^cam_[A-Za-z0-9_-]+$")]


class CameraState(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"


class WindowStatus(StrEnum):
    DONE = "done"
    GAP = "gap"
    FAILED = "failed"


class Camera(Record):
    """A live source. Windows are cut from ``watermark`` on: the end of the last window
    committed (processed, or recorded as a gap), so every second is taken exactly once."""

    tenant_id: TenantId
    camera_id: CameraId
    name: Annotated[str, Field(min_length=1, max_length=100)]
    source_url: str | None = None
    kvs_stream_arn: str | None = None
    clip_seconds: float = 10.0
    state: CameraState = CameraState.ACTIVE
    origin: datetime = Field(default_factory=utcnow, description="time 0 of the camera's chunks")
    watermark: datetime = Field(default_factory=utcnow)
    next_index: int = 0
    windows_done: int = 0
    gaps: int = 0
    failed: int = 0
    lease_owner: str | None = None
    lease_until: datetime | None = None
    last_event_at: datetime | None = None
    last_error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class CameraWindow(Record):
    """One committed window of a camera: what became of [t0, t1)."""

    tenant_id: TenantId
    camera_id: CameraId
    index: int
    t0: datetime
    t1: datetime
    status: WindowStatus
    reason: str | None = None
    manifest_id: str | None = None
    events: int = 0
    committed_at: datetime = Field(default_factory=utcnow)


class LiveClipInput(StepPayload):
    tenant_id: TenantId
    camera_id: CameraId


class LiveWindow(StepPayload):
    tenant_id: TenantId
    camera_id: CameraId
    index: int
    t0: datetime
    t1: datetime
    skip_reason: str | None = Field(
        default=None, description="set when the window is a gap before any fetch (expired)"
    )


class LivePlan(StepPayload):
    tenant_id: TenantId
    camera_id: CameraId
    lease: str = ""
    windows: list[LiveWindow] = Field(default_factory=list)


class LiveFetchOutput(StepPayload):
    has_media: bool
    reason: str | None = None
    chunk: ChunkRef | None = None


class LiveCommitInput(StepPayload):
    window: LiveWindow
    fetch: LiveFetchOutput | None = None
    result: dict | None = Field(default=None, description="process_chunk's output")
    error: dict | None = Field(default=None, description="a Catch's {Error, Cause}")
