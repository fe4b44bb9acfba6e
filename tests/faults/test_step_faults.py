"""A failure at each pipeline step (an exception, a timeout, a throttle) and the recovery:
the video fails cleanly with its reason, a re-drive completes it, and it then holds
exactly what a clean run holds — every chunk, manifest, event and index document once."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest

from sightline import factory, keys
from sightline.models import VideoStatus
from sightline.services.ingest import IngestService
from sightline_local import faults
from tests.faults.conftest import settle
from tests.faults.stack import TENANT, fingerprint, lost

STEPS = ("probe", "chunk", "encode", "describe", "latent", "events", "index", "finalize")
PER_CHUNK = {"encode", "describe", "latent", "events", "index"}


def _run(service: IngestService, start: Any) -> tuple[str, Any]:
    execution = start()
    outcome = service.orchestrator.wait(execution, timeout_s=120)
    settle()
    return outcome["status"], outcome


def _assert_failed_cleanly(
    service: IngestService, video_id: str, error_type: str, *, siblings: bool
) -> None:
    video = service.repo.get_video(TENANT, video_id)
    assert video.status == VideoStatus.FAILED
    assert (video.failure_reason or "").startswith(error_type), video.failure_reason
    if siblings:
        # Other chunks were still running when this one failed; what they write after
        # the failure path ran may remain (see the xfail test below): not checked here.
        return
    # The failure path removed every partial result.
    assert service.repo.list_manifests(TENANT, video_id) == []
    assert service.repo.list_events(TENANT, video_id) == []
    assert factory.index().count(TENANT) == 0
    assert factory.blobs().list_keys(keys.derived_prefix(TENANT, video_id)) == []


# The failure each step gets first: an exception, or a hang cut off by Lambda's timeout
# (both end in the same Catch; alternating keeps the suite short), then a throttle.
FIRST = {step: ("error", "timeout")[i % 2] for i, step in enumerate(STEPS)}
REASON = {"error": "InjectedFault: ", "timeout": "Sandbox.Timedout: "}


@pytest.mark.parametrize("step", STEPS)
def test_a_fault_at_each_step_is_recovered_with_nothing_lost_or_doubled(
    step: str,
    stack: IngestService,
    clip: Path,
    reference: dict[str, Any],
    fault_summary: dict[str, int],
) -> None:
    chunk = 1 if step in PER_CHUNK else None  # the middle chunk; the others run meanwhile
    plan = faults.PLAN
    kind = FIRST[step]

    # Given a failure at the step: the video fails with the reason, and is left clean
    plan.arm(step, kind, chunk=chunk)  # type: ignore[arg-type]
    sub = stack.submit_file(TENANT, clip)
    assert sub.execution_id
    status, _ = _run(stack, lambda: sub.execution_id)
    vid = sub.video.video_id
    assert status == "FAILED"
    _assert_failed_cleanly(stack, vid, REASON[kind], siblings=chunk is not None)

    # When it is re-driven while the step is throttled once: the ASL's Retry absorbs it
    plan.arm(step, "transient", chunk=chunk)
    status, outcome = _run(
        stack, lambda: stack.start(stack.repo.get_video(TENANT, vid)).execution_id
    )
    assert status == "SUCCEEDED", outcome

    # Then both faults fired, and the video holds exactly what a clean run holds
    fired = [(f.step, f.kind) for f in plan.injected]
    assert fired == [(step, kind), (step, "transient")]
    got = fingerprint(vid)
    fault_summary["faults_injected"] += len(fired)
    fault_summary["data_lost"] += lost(reference, got)
    assert got == reference
    fault_summary["recovered"] += len(fired)


def test_a_failed_video_keeps_nothing_a_sibling_chunk_writes_after_the_failure(
    stack: IngestService, clip: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sightline.services.pipeline")
    # Given the codec's results held back (they arrive in notices, so they can land after
    # the video's clean-up), and chunk 1 failing at encode
    hold = faults.PLAN.arm("codec_callback", "hang", seconds=30)
    faults.PLAN.arm("encode", "error", chunk=1)
    sub = stack.submit_file(TENANT, clip)
    assert sub.execution_id
    # When the video has failed (and been cleaned up), and the held results then arrive
    assert stack.orchestrator.wait(sub.execution_id, timeout_s=20)["status"] == "FAILED"
    hold.released.set()
    settle()
    # (the callback runs after the execution ended: wait until it has stored a result and
    # seen the failure)
    deadline = time.monotonic() + 30
    while "its output is discarded" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "its output is discarded" in caplog.text
    # Then the failed video still holds nothing (MarkFailed sets the status before it
    # cleans up; a chunk step that writes afterwards sees it and removes what it wrote),
    # and keeps holding nothing while the last callbacks finish
    vid = sub.video.video_id

    def held() -> list[Any]:
        return [
            *stack.repo.list_manifests(TENANT, vid),
            *stack.repo.list_events(TENANT, vid),
            *factory.blobs().list_keys(keys.derived_prefix(TENANT, vid)),
        ]

    quiet, deadline = 0, time.monotonic() + 20
    while quiet < 10 and time.monotonic() < deadline:
        quiet = quiet + 1 if not held() else 0
        time.sleep(0.1)
    assert held() == [] and quiet >= 10
    assert stack.repo.get_video(TENANT, vid).status == VideoStatus.FAILED
