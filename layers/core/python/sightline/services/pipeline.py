"""The pipeline's steps as plain functions over the ports.

Each Lambda handler in ``functions/`` parses its payload and calls exactly one method
here. Every step is idempotent: ids and keys derive from (tenant, video, chunk), so a
re-run for the same content overwrites what it wrote before and adds nothing.
"""

from __future__ import annotations

import base64
import json
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import blake3
import numpy as np

from sightline import keys
from sightline.config import Settings
from sightline.errors import CodecError, CorruptData, EmptyWindow, InvalidVideo
from sightline.models import (
    ChunkPlan,
    ChunkRef,
    ChunkResult,
    ChunkWork,
    DescribeOutput,
    DetectedEvent,
    EncodeOutput,
    Event,
    EventsOutput,
    FailureInput,
    IndexDocument,
    IngestInput,
    LatentOutput,
    ManifestRow,
    ProbeOutput,
    QualityStats,
    VideoStatus,
    VideoSummary,
)
from sightline.ports import (
    AsyncInvocation,
    BlobStore,
    CodecEndpoint,
    Describer,
    Embedder,
    EventBus,
    TenantLimiter,
    VectorIndex,
)
from sightline.services import latent as latent_features
from sightline.services import media
from sightline.services.repository import Repository

logger = logging.getLogger(__name__)


@dataclass
class Pipeline:
    settings: Settings
    blobs: BlobStore
    repo: Repository
    codec: CodecEndpoint
    describer: Describer
    embedder: Embedder
    index: VectorIndex
    bus: EventBus
    # Per-tenant concurrency of the describe step (None: unlimited); the encode step's
    # slots are taken by services.codec_client.CodecJobs, which holds them until the
    # codec's notice.
    limiter: TenantLimiter | None = None

    # ----- probe -----------------------------------------------------------------

    def probe(self, payload: IngestInput) -> ProbeOutput:
        """Validate the source; the video moves to ``processing``."""
        s = self.settings
        self.repo.update_video(payload.tenant_id, payload.video_id, status=VideoStatus.PROCESSING)
        if not self.blobs.exists(payload.source_key):
            raise InvalidVideo("the uploaded object does not exist")
        if self.blobs.size(payload.source_key) > s.max_video_bytes:
            raise InvalidVideo(f"the file is over the {s.max_video_bytes}-byte limit")
        with tempfile.TemporaryDirectory(prefix="sl-probe-") as tmp:
            local = Path(tmp) / "source"
            self.blobs.download_file(payload.source_key, local)
            info = media.probe(
                local,
                ffprobe=s.ffprobe,
                ffmpeg=s.ffmpeg,
                max_bytes=s.max_video_bytes,
                max_seconds=s.max_video_seconds,
                max_pixels=s.max_frame_pixels,
            )
            digest = media.file_hash(local)
            size = local.stat().st_size
        self.repo.update_video(
            payload.tenant_id,
            payload.video_id,
            duration_s=info.duration_s,
            fps=info.fps,
            width=info.width,
            height=info.height,
            codec=info.codec,
            size_bytes=size,
            content_hash=digest,
        )
        return ProbeOutput(
            **payload.model_dump(),
            duration_s=info.duration_s,
            fps=info.fps,
            width=info.width,
            height=info.height,
            codec=info.codec,
            size_bytes=size,
            content_hash=digest,
            frames=info.frames,
        )

    # ----- chunk -----------------------------------------------------------------

    def chunk(self, probe: ProbeOutput) -> ChunkPlan:
        s = self.settings
        windows = media.plan_windows(probe.duration_s, s.chunk_seconds, s.chunk_overlap_seconds)
        chunks: list[ChunkRef] = []
        with tempfile.TemporaryDirectory(prefix="sl-chunk-") as tmp:
            src = Path(tmp) / "source"
            self.blobs.download_file(probe.source_key, src)
            for i, (t0, t1) in enumerate(windows):
                key = keys.chunk(probe.tenant_id, probe.video_id, i)
                if not self.blobs.exists(key):
                    out = Path(tmp) / f"{i:05d}.mp4"
                    try:
                        media.cut_chunk(src, out, t0, t1, ffmpeg=s.ffmpeg, threads=s.threads)
                    except EmptyWindow:
                        continue  # nothing was seen then: no chunk (index numbers keep time)
                    self.blobs.upload_file(out, key, "video/mp4")
                    out.unlink()
                chunks.append(
                    ChunkRef(
                        tenant_id=probe.tenant_id,
                        video_id=probe.video_id,
                        index=i,
                        t0=t0,
                        t1=t1,
                        key=key,
                    )
                )
        if not chunks:
            raise InvalidVideo("no window of the video holds a frame")
        # Chunks from an earlier, longer plan (a changed chunk length) must not linger.
        wanted = {c.key for c in chunks}
        for stale in self.blobs.list_keys(keys.chunk_prefix(probe.tenant_id, probe.video_id)):
            if stale not in wanted:
                self.blobs.delete_prefix(stale)
        self.repo.update_video(
            probe.tenant_id, probe.video_id, chunks_total=len(chunks), chunks_done=0
        )
        return ChunkPlan(tenant_id=probe.tenant_id, video_id=probe.video_id, chunks=chunks)

    # ----- encode ----------------------------------------------------------------

    def encode(self, chunk: ChunkRef) -> EncodeOutput:
        """Encode and wait for the codec: for synchronous API requests only
        (``POST /v1/ingest/chunk``). The state machine never waits inside a Lambda: its
        Encode state calls ``services.codec_client.CodecJobs.start`` (``invoke_codec``)
        and the codec's success/error notice completes the task (``store_encoded``)."""
        done = self.encoded(chunk)
        if done is not None:
            return done
        inv = self.invoke_codec(chunk)
        raw = self.codec.wait(inv, self.settings.codec_timeout_seconds)
        return self.store_encoded(chunk, raw, output_key=inv.output_key)

    def encoded(self, chunk: ChunkRef) -> EncodeOutput | None:
        """The stored result of an earlier encode of this chunk, if its tokens verify."""
        existing = self.repo.find_manifest(chunk.tenant_id, chunk.chunk_id)
        token_key = keys.tokens(chunk.tenant_id, chunk.video_id, chunk.index)
        if (
            existing
            and self.blobs.exists(token_key)
            and _intact(self.blobs, token_key, existing.hash)
        ):
            side_key = keys.sideinfo(chunk.tenant_id, chunk.video_id, chunk.index)
            return _encode_output(existing, token_key, side_key)
        return None

    def invoke_codec(self, chunk: ChunkRef) -> AsyncInvocation:
        """Queue the chunk on the codec's async endpoint (input and output in S3)."""
        return self.codec.invoke_async(
            chunk.key, inference_id=encode_inference_id(chunk), content_type="video/mp4"
        )

    def store_encoded(self, chunk: ChunkRef, raw: bytes, *, output_key: str) -> EncodeOutput:
        """Store the codec's answer for ``chunk``: tokens, side info and the manifest row."""
        manifest_id = chunk.chunk_id
        token_key = keys.tokens(chunk.tenant_id, chunk.video_id, chunk.index)
        side_key = keys.sideinfo(chunk.tenant_id, chunk.video_id, chunk.index)
        try:
            result = json.loads(raw)
            blob = base64.b64decode(result["token_blob_b64"], validate=True)
            side = base64.b64decode(result["sideinfo_b64"], validate=True)
        except (ValueError, KeyError, TypeError) as exc:
            raise CodecError(f"malformed codec output for {manifest_id}: {exc}") from exc
        digest = _hash(blob)
        if result.get("token_hash") and result["token_hash"] != digest:
            raise CorruptData(f"token blob of {manifest_id} does not match its hash")
        self.blobs.put_bytes(token_key, blob, "application/x-sightline-tokens")
        self.blobs.put_bytes(side_key, side, "application/octet-stream")
        q = result.get("quality_stats") or {}
        try:
            row = ManifestRow(
                manifest_id=manifest_id,
                tenant_id=chunk.tenant_id,
                stream_id=chunk.stream_id or chunk.camera_id or chunk.video_id,
                video_id=chunk.video_id,
                t0=chunk.t0,
                t1=chunk.t1,
                codebook_id=result["codebook_id"],
                model_id=result["model_id"],
                token_uri=self.blobs.uri(token_key),
                sideinfo_uri=self.blobs.uri(side_key),
                byte_size=len(blob),
                ratio=float(result["ratio"]),
                bpp=result.get("bpp"),
                hash=digest,
                quality_stats=QualityStats(psnr=q.get("psnr"), ms_ssim=q.get("ms_ssim")),
                tokens_shape=list(result.get("tokens_shape") or []),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CodecError(f"malformed codec output for {manifest_id}: {exc}") from exc
        self.repo.put_manifest(row)
        # The async output object is a transfer, not a record: drop it once stored.
        if output_key:
            self.blobs.delete_prefix(output_key)
        self._discard_if_failed(chunk, blobs=(token_key, side_key), manifests=True)
        return _encode_output(row, token_key, side_key)

    # ----- describe --------------------------------------------------------------

    def describe(self, work: ChunkWork) -> DescribeOutput:
        chunk = work.chunk
        # One tenant's backlog must not hold every model call: a slot per running describe
        # (TenantThrottled when none is free; the state machine retries with backoff).
        holder = f"{chunk.chunk_id}#describe"
        limit = self.settings.tenant_describe_limit
        if self.limiter is not None:
            self.limiter.acquire(
                chunk.tenant_id,
                "describe",
                holder,
                limit=limit,
                lease_s=self.settings.tenant_describe_lease_seconds,
            )
        try:
            with tempfile.TemporaryDirectory(prefix="sl-describe-") as tmp:
                clip = Path(tmp) / "chunk.mp4"
                self.blobs.download_file(chunk.key, clip)
                desc = self.describer.describe(clip, chunk)
        finally:
            if self.limiter is not None:
                self.limiter.release(chunk.tenant_id, "describe", holder)
        key = keys.analysis(chunk.tenant_id, chunk.video_id, chunk.index)
        body = {
            "description": desc.description,
            "tags": desc.tags,
            "counts": desc.counts,
            "model": desc.model,
            # Which kind of provider found the events (Event.source): a detector or a VLM.
            "source": getattr(self.describer, "event_source", "vlm"),
            "events": [e.model_dump() for e in desc.events],
            "details": desc.details,
        }
        self.blobs.put_bytes(key, json.dumps(body).encode(), "application/json")
        self._discard_if_failed(chunk, blobs=(key,))
        return DescribeOutput(
            description=desc.description, tags=desc.tags, analysis_key=key, model=desc.model
        )

    # ----- latent ----------------------------------------------------------------

    def latent(self, work: ChunkWork) -> LatentOutput:
        """Pool the chunk's tokens (never decoded) into a latent embedding and anomaly features."""
        if work.encode is None:
            raise ValueError("latent needs the encode result")
        chunk = work.chunk
        row = self.repo.find_manifest(chunk.tenant_id, work.encode.manifest_id)
        if row is None:
            raise CorruptData(f"manifest {work.encode.manifest_id} is missing")
        blob = self.blobs.get_bytes(work.encode.token_key)
        side = self.blobs.get_bytes(work.encode.sideinfo_key)
        feats = latent_features.from_blob(blob, expected_hash=row.hash, sideinfo=side)
        key = keys.latent(chunk.tenant_id, chunk.video_id, chunk.index)
        self.blobs.put_bytes(key, json.dumps(feats.to_json()).encode(), "application/json")
        self._discard_if_failed(chunk, blobs=(key,))
        return LatentOutput(
            latent_key=key, dim=len(feats.embedding), anomaly_score=feats.anomaly_score
        )

    # ----- events ----------------------------------------------------------------

    def events(self, work: ChunkWork) -> EventsOutput:
        if work.describe is None or work.encode is None:
            raise ValueError("events need the describe and encode results")
        chunk = work.chunk
        analysis = json.loads(self.blobs.get_bytes(work.describe.analysis_key))
        detected = [DetectedEvent.model_validate(e) for e in analysis.get("events", [])]
        duration = chunk.t1 - chunk.t0
        events = []
        for i, d in enumerate(sorted(detected, key=lambda e: (e.start_s, e.type))):
            start = min(max(d.start_s, 0.0), duration)
            end = min(max(d.end_s, start), duration)
            events.append(
                Event(
                    event_id=f"{work.encode.manifest_id}-e{i:03d}",
                    tenant_id=chunk.tenant_id,
                    video_id=chunk.video_id,
                    camera_id=chunk.camera_id,
                    chunk=chunk.index,
                    manifest_id=work.encode.manifest_id,
                    t0=round(chunk.t0 + start, 3),
                    t1=round(chunk.t0 + end, 3),
                    type=d.type,
                    description=d.description,
                    confidence=min(max(d.confidence, 0.0), 1.0),
                    bbox=d.bbox,
                    source=analysis.get("source", "detector"),
                    wall_t0=chunk.wall_t0 + timedelta(seconds=start) if chunk.wall_t0 else None,
                    wall_t1=chunk.wall_t0 + timedelta(seconds=end) if chunk.wall_t0 else None,
                )
            )
        self.repo.replace_chunk_events(chunk.tenant_id, chunk.video_id, chunk.index, events)
        if not self._discard_if_failed(chunk, events=True):  # no notices for a failed video
            for event in events:
                self.bus.publish("EventDetected", event.model_dump(mode="json"))
        return EventsOutput(
            event_ids=[e.event_id for e in events], types=sorted({e.type for e in events})
        )

    # ----- index -----------------------------------------------------------------

    def index_chunk(self, work: ChunkWork, events: EventsOutput) -> ChunkResult:
        if work.describe is None or work.encode is None:
            raise ValueError("index needs the describe and encode results")
        chunk = work.chunk
        analysis = json.loads(self.blobs.get_bytes(work.describe.analysis_key))
        latent = json.loads(self.blobs.get_bytes(work.latent.latent_key)) if work.latent else None
        (vector,) = self.embedder.embed([work.describe.description])
        boxes = [e["bbox"] for e in analysis.get("events", []) if e.get("bbox")]
        doc = IndexDocument(
            manifest_id=work.encode.manifest_id,
            tenant_id=chunk.tenant_id,
            stream_id=chunk.stream_id or chunk.camera_id or chunk.video_id,
            video_id=chunk.video_id,
            camera_id=chunk.camera_id,
            t0=chunk.t0,
            t1=chunk.t1,
            t_mid=round((chunk.t0 + chunk.t1) / 2, 3),
            description=work.describe.description,
            events=events.types,
            tags=work.describe.tags,
            text_embedding=vector,
            latent_embedding=latent["embedding"] if latent else None,
            latent_model=latent.get("codebook_id") if latent else None,
            embedding_model=self.embedder.model_id,
            roi_suggestion=_union(boxes) if boxes else None,
            wall_t0=chunk.wall_t0,
            wall_t1=(
                chunk.wall_t0 + timedelta(seconds=chunk.t1 - chunk.t0) if chunk.wall_t0 else None
            ),
        )
        self.index.upsert(doc)
        discarded = self._discard_if_failed(chunk, index=True)
        if chunk.camera_id is None and not discarded:  # cameras: progress is the watermark
            done = self.repo.get_video(chunk.tenant_id, chunk.video_id)
            done_count = len(self.repo.list_manifests(chunk.tenant_id, chunk.video_id))
            self.repo.update_video(
                chunk.tenant_id, chunk.video_id, chunks_done=min(done_count, done.chunks_total)
            )
        return ChunkResult(
            chunk_index=chunk.index,
            manifest_id=doc.manifest_id,
            events=len(events.event_ids),
            indexed=True,
        )

    # ----- finalize / failure ----------------------------------------------------

    def finalize(self, tenant_id: str, video_id: str) -> VideoSummary:
        manifests = self.repo.list_manifests(tenant_id, video_id)
        events = self.repo.list_events(tenant_id, video_id)
        video = self.repo.update_video(
            tenant_id,
            video_id,
            status=VideoStatus.COMPLETED,
            chunks_done=len(manifests),
            events_count=len(events),
            failure_reason=None,
        )
        summary = VideoSummary(
            tenant_id=tenant_id,
            video_id=video_id,
            status=video.status,
            chunks=len(manifests),
            events=len(events),
        )
        self.bus.publish("VideoProcessed", summary.model_dump(mode="json"))
        return summary

    def fail(self, payload: FailureInput) -> VideoSummary:
        """Record why the video failed and remove everything it produced.

        The status is set before the clean-up: a sibling chunk step still running writes
        after it, sees the status (``_discard_if_failed``) and removes what it wrote."""
        reason = _reason(payload.error)
        t, v = payload.tenant_id, payload.video_id
        self.repo.update_video(
            t, v, status=VideoStatus.FAILED, failure_reason=reason, chunks_done=0, events_count=0
        )
        self._remove_outputs(t, v)
        summary = VideoSummary(
            tenant_id=t,
            video_id=v,
            status=VideoStatus.FAILED,
            chunks=0,
            events=0,
            failure_reason=reason,
        )
        self.bus.publish("VideoFailed", summary.model_dump(mode="json"))
        return summary

    def _remove_outputs(self, tenant_id: str, video_id: str) -> None:
        self.index.delete_video(tenant_id, video_id)
        self.repo.delete_events(tenant_id, video_id)
        self.repo.delete_manifests(tenant_id, video_id)
        self.blobs.delete_prefix(keys.derived_prefix(tenant_id, video_id))

    def _discard_if_failed(
        self,
        chunk: ChunkRef,
        *,
        blobs: Sequence[str] = (),
        manifests: bool = False,
        events: bool = False,
        index: bool = False,
    ) -> bool:
        """Called by every chunk step after it wrote: if the video failed meanwhile (a
        sibling chunk's failure ran MarkFailed while this step was running), remove what
        this step wrote (``blobs`` keys; the video's manifest rows, events or index
        documents: a failed video keeps none), so a failed video keeps nothing. Each step
        removes only the kinds of data it may write. True when the video had failed.
        Camera windows have no video-level failure (a failed window is recorded on the
        camera instead)."""
        if chunk.camera_id is not None:
            return False
        t, v = chunk.tenant_id, chunk.video_id
        video = self.repo.find_video(t, v)
        if video is None or video.status != VideoStatus.FAILED:
            return False
        logger.info(
            "video %s failed while chunk %s ran: its output is discarded (%s)",
            v,
            chunk.index,
            ", ".join(
                [*blobs, *(["manifests"] * manifests), *(["events"] * events)] + ["index"] * index
            ),
        )
        for key in blobs:
            self.blobs.delete_prefix(key)
        if manifests:
            self.repo.delete_manifests(t, v)
        if events:
            self.repo.delete_events(t, v)
        if index:
            self.index.delete_video(t, v)
        return True


def encode_inference_id(chunk: ChunkRef) -> str:
    """The codec InferenceId of a chunk: stable across retries (SageMaker's notices carry
    it back; the codec_jobs table maps it to the waiting task token)."""
    return f"{chunk.chunk_id}-{blake3.blake3(chunk.key.encode()).hexdigest()[:8]}"


def _intact(blobs: BlobStore, key: str, expected: str) -> bool:
    """Whether a stored blob has the expected hash; one the store itself refuses as
    corrupt counts as absent (the step rewrites it) rather than failing the step."""
    try:
        return _hash(blobs.get_bytes(key)) == expected
    except CorruptData:
        return False


def _hash(data: bytes) -> str:
    return f"blake3:{blake3.blake3(data).hexdigest()}"


def _encode_output(row: ManifestRow, token_key: str, side_key: str) -> EncodeOutput:
    return EncodeOutput(
        manifest_id=row.manifest_id,
        token_key=token_key,
        sideinfo_key=side_key,
        codebook_id=row.codebook_id,
        ratio=row.ratio,
        byte_size=row.byte_size,
        psnr=row.quality_stats.psnr,
    )


def _union(boxes: list[Any]) -> tuple[float, float, float, float]:
    arr = np.asarray(boxes, dtype=np.float64)
    return (
        round(float(arr[:, 0].min()), 4),
        round(float(arr[:, 1].min()), 4),
        round(float(arr[:, 2].max()), 4),
        round(float(arr[:, 3].max()), 4),
    )


def _reason(error: dict[str, Any]) -> str:
    """The user-facing reason from a Step Functions Catch result ``{Error, Cause}``.

    A failed child execution (``States.TaskFailed``) carries the child's own
    ``{Error, Cause}``; the innermost one is what the user needs.
    """
    name = str(error.get("Error", "Error"))
    cause = error.get("Cause", "")
    try:
        parsed = json.loads(cause)
    except (TypeError, ValueError):
        return f"{name}: {cause}" if cause else name
    if not isinstance(parsed, dict):
        return f"{name}: {cause}"
    if "Error" in parsed and "Cause" in parsed:
        return _reason({"Error": parsed["Error"], "Cause": parsed["Cause"]})
    message = parsed.get("errorMessage") or cause
    return f"{parsed.get('errorType', name)}: {message}"
