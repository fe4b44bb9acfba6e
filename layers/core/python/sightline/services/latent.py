"""Features computed from a chunk's codec tokens, never decoding the video.

- ``embedding``: the chunk's bag of visual words — a Hellinger-normalised histogram of
  codebook indices (sqrt of frequencies, unit length), so cosine similarity compares the
  visual vocabulary of two chunks (clip-to-clip search).
- ``activity``: per token step, in [0, 1). From the codec's side info when present: the
  largest per-tile ``latent_delta`` (squared codebook-vector distance to the previous
  step), mapped by 1 - exp(-x). Sensor noise flips tokens between neighbouring codes
  (distance near 0) while a moving person or car swaps them for distant ones, so this
  separates a busy scene from a noisy empty one, where the plain fraction of changed
  tokens does not (both flicker ~10 %). Without side info: that fraction.
- ``anomaly_score``: the chunk's peak activity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sightline import tokenblob

DEFAULT_CODEBOOK_SIZE = 1024


@dataclass(frozen=True)
class LatentFeatures:
    codebook_id: str
    embedding: list[float]
    activity: list[float]
    step_seconds: float
    anomaly_score: float
    sideinfo_means: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        return {
            "codebook_id": self.codebook_id,
            "embedding": self.embedding,
            "activity": self.activity,
            "step_seconds": self.step_seconds,
            "anomaly_score": self.anomaly_score,
            "sideinfo_means": self.sideinfo_means,
        }


def token_histogram(tokens: np.ndarray, codebook_size: int) -> np.ndarray:
    counts = np.bincount(tokens.ravel().astype(np.int64), minlength=codebook_size)
    counts = counts[:codebook_size].astype(np.float64)
    vec = np.sqrt(counts / max(counts.sum(), 1.0))
    norm = np.linalg.norm(vec)
    return (vec / norm if norm > 0 else vec).astype(np.float32)


def token_activity(tokens: np.ndarray) -> np.ndarray:
    if tokens.shape[0] < 2:
        return np.zeros(tokens.shape[0], dtype=np.float32)
    changed = (tokens[1:] != tokens[:-1]).mean(axis=(1, 2))
    return np.concatenate([[0.0], changed]).astype(np.float32)


def from_blob(blob: bytes, *, expected_hash: str, sideinfo: bytes | None = None) -> LatentFeatures:
    """Verify the blob (BLAKE3) and compute its features. Raises CorruptBlobError."""
    header, tokens = tokenblob.unpack_tokens(blob, expected_hash=expected_hash)
    size = header.codebook_size or DEFAULT_CODEBOOK_SIZE
    activity = token_activity(tokens)
    means: dict[str, float] = {}
    if sideinfo:
        _, fields = tokenblob.unpack_sideinfo(sideinfo)
        # NaN marks cells the codec did not measure (residual energy outside its quality
        # sample): means are over the measured cells, and a field with none is left out.
        means = {
            name: round(float(np.nanmean(arr)), 6)
            for name, arr in fields.items()
            if np.isfinite(arr).any()
        }
        if "latent_delta" in fields:
            peak = fields["latent_delta"].reshape(fields["latent_delta"].shape[0], -1).max(axis=1)
            activity = (1.0 - np.exp(-np.clip(peak, 0.0, None))).astype(np.float32)
            activity[0] = 0.0  # the first step has no previous step
    return LatentFeatures(
        codebook_id=header.codebook_id,
        embedding=token_histogram(tokens, size).tolist(),
        activity=[round(float(a), 6) for a in activity],
        step_seconds=header.time_stride / header.fps,
        anomaly_score=round(float(activity.max(initial=0.0)), 6),
        sideinfo_means=means,
    )
