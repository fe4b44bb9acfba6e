"""The client side of the SageMaker async contract, shared by both codec adapters."""

from __future__ import annotations

import json
import time

from sightline.errors import CodecError, TransientError
from sightline.ports import AsyncInvocation, BlobStore


def wait_for_output(
    blobs: BlobStore, inv: AsyncInvocation, timeout_s: float, poll_s: float = 0.05
) -> bytes:
    """Wait until the output (success) or the failure object of ``inv`` exists.

    Raises CodecError with the endpoint's reason on failure, TransientError on timeout
    (so the state machine retries the chunk).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        if blobs.exists(inv.output_key):
            return blobs.get_bytes(inv.output_key)
        if inv.failure_key and blobs.exists(inv.failure_key):
            raw = blobs.get_bytes(inv.failure_key)
            try:
                reason = json.loads(raw).get("reason", raw.decode(errors="replace"))
            except ValueError:
                reason = raw.decode(errors="replace")
            raise CodecError(f"codec inference {inv.inference_id} failed: {reason}")
        if time.monotonic() > deadline:
            raise TransientError(f"codec inference {inv.inference_id} timed out after {timeout_s}s")
        time.sleep(poll_s)
