"""Fakes for the heavy ports, so handler tests run in milliseconds.

They keep the real contracts: the fake codec writes a real v1 token blob through the
async output/failure objects and publishes the endpoint's success/error notice; the fake
describer returns what the detector describer would; the embedder is deterministic.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sightline import tokenblob
from sightline.models import ChunkRef, DetectedEvent
from sightline.ports import AsyncInvocation, BlobStore, ClipDescription
from sightline.services.codec_client import (
    NOTICE_FAILED,
    NOTICE_SUCCEEDED,
    notice_message,
    wait_for_output,
)
from sightline.services.decode import DECODE_CONTENT_TYPE


class FakeCodec:
    def __init__(self, blobs: BlobStore, *, fail_with: str | None = None) -> None:
        self.blobs = blobs
        self.fail_with = fail_with
        self.invocations: list[str] = []

    def invoke_async(
        self, input_key: str, *, inference_id: str, content_type: str
    ) -> AsyncInvocation:
        self.invocations.append(inference_id)
        inv = AsyncInvocation(
            inference_id,
            input_key,
            f"codec/output/{inference_id}.out",
            f"codec/failure/{inference_id}.err",
        )
        if self.fail_with:
            self.blobs.put_bytes(inv.failure_key, json.dumps({"reason": self.fail_with}).encode())
            self._notify(inv, reason=f"ClientError: {self.fail_with}")
            return inv
        if content_type == DECODE_CONTENT_TYPE:
            self.blobs.put_bytes(inv.output_key, self._decode(input_key))
            self._notify(inv)
            return inv
        self.blobs.put_bytes(inv.output_key, self.answer(input_key))
        self._notify(inv)
        return inv

    def answer(self, input_key: str) -> bytes:
        """The output object the codec writes for the chunk at ``input_key``."""
        seed = int(hashlib.sha256(self.blobs.get_bytes(input_key)).hexdigest()[:8], 16)
        tokens = np.random.default_rng(seed).integers(0, 64, size=(8, 15, 20), dtype=np.uint16)
        blob = tokenblob.pack_tokens(
            tokens,
            codebook_id="cb-test",
            model_id="fake",
            time_stride=4,
            spatial_stride=8,
            frame_size=(120, 160),
            fps=10.0,
            n_frames=30,
            codebook_size=64,
        )
        side = tokenblob.pack_sideinfo(
            {"change": np.zeros((8, 1, 2), np.float32)}, time_stride=4, spatial_stride=8, fps=10.0
        )
        out = {
            "token_blob_b64": base64.b64encode(blob).decode(),
            "sideinfo_b64": base64.b64encode(side).decode(),
            "codebook_id": "cb-test",
            "model_id": "fake",
            "token_hash": tokenblob.blob_hash(blob),
            "byte_size": len(blob),
            "raw_bytes": 160 * 120 * 30 * 3 // 2,
            "ratio": 160 * 120 * 30 * 1.5 / len(blob),
            "bpp": len(blob) * 8 / (160 * 120 * 30),
            "quality_stats": {"psnr": 31.5, "ms_ssim": 0.95},
            "tokens_shape": [8, 15, 20],
        }
        return json.dumps(out).encode()

    def _notify(self, inv: AsyncInvocation, reason: str | None = None) -> None:
        """The endpoint's success/error notice, as LocalAsyncCodec publishes it (the local
        runtime delivers it to functions/codec_callback, which completes the Encode task)."""
        from sightline import factory

        factory.bus().publish(
            NOTICE_FAILED if reason else NOTICE_SUCCEEDED,
            notice_message(
                inv.inference_id,
                endpoint="fake-codec",
                input_location=self.blobs.uri(inv.input_key),
                output_location=self.blobs.uri(inv.output_key),
                failure_location=self.blobs.uri(inv.failure_key),
                reason=reason,
            ),
        )

    def wait(self, invocation: AsyncInvocation, timeout_s: float) -> bytes:
        return wait_for_output(self.blobs, invocation, timeout_s)

    def _decode(self, input_key: str) -> bytes:
        """A grey PNG of the requested region's size (the real decoder is tested elsewhere)."""
        import cv2

        req = json.loads(self.blobs.get_bytes(input_key))
        header = tokenblob.read_header(base64.b64decode(req["token_blob_b64"]))
        h, w = header.frame_size
        x0, y0, x1, y1 = req["roi"] or (0, 0, w, h)
        size = (max(1, round(y1 - y0)), max(1, round(x1 - x0)), 3)
        ok, png = cv2.imencode(".png", np.full(size, 128, np.uint8))
        assert ok
        return json.dumps(
            {
                "media_b64": base64.b64encode(png.tobytes()).decode(),
                "content_type": "image/png",
                "frames": 1,
                "width": size[1],
                "height": size[0],
            }
        ).encode()


class FakeDescriber:
    model = "fake-describer"
    event_source = "detector"

    def __init__(self) -> None:
        self.calls = 0

    def describe(self, clip: Path, chunk: ChunkRef) -> ClipDescription:
        assert clip.is_file() and clip.stat().st_size > 0
        self.calls += 1
        events = [
            DetectedEvent(
                type="person",
                start_s=0.5,
                end_s=2.5,
                confidence=0.8,
                bbox=(0.1, 0.5, 0.3, 0.9),
                description="2 people walking left to right",
            )
        ]
        return ClipDescription(
            description="2 people walking left to right in the lower half of the frame.",
            tags=["person"],
            events=events,
            counts={"person": 2},
            model=self.model,
            details={},
        )


class HashEmbedder:
    """Bag-of-words hashed into 64 dims: similar wording → similar vectors."""

    model_id = "hash-64"
    dim = 64

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        out = []
        for text in texts:
            v = np.zeros(self.dim, dtype=np.float32)
            for word in text.lower().split():
                v[int(hashlib.md5(word.strip(".,").encode()).hexdigest()[:6], 16) % self.dim] += 1
            n = np.linalg.norm(v)
            out.append((v / n if n else v).tolist())
        return out


class RecordingTaskTokens:
    """The TaskTokens port with no state machine behind it: records what would be sent."""

    def __init__(self) -> None:
        self.succeeded: list[tuple[str, dict]] = []
        self.failed: list[tuple[str, str, str]] = []

    def succeed(self, token: str, output: dict) -> bool:
        self.succeeded.append((token, output))
        return True

    def fail(self, token: str, error: str, cause: str) -> bool:
        self.failed.append((token, error, cause))
        return True
