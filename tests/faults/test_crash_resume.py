"""The local runtime's own process dies mid-ingest (SIGKILL: no cleanup, no flush), and a
fresh process resumes the video: it ends exactly as a clean run does."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sightline.models import VideoStatus
from sightline.services.ingest import IngestService
from sightline_local import recovery, runtime
from tests.faults.conftest import settle
from tests.faults.stack import TENANT, fake_stack, fingerprint, lost

REPO = Path(__file__).resolve().parents[2]


def _read_until(proc: subprocess.Popen[str], marker: str, timeout_s: float) -> list[str]:
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.strip())
            if line.startswith(marker):
                return lines
    raise AssertionError(f"no {marker!r} from the worker within {timeout_s}s: {lines}")


def test_an_ingest_killed_mid_flight_is_resumed_by_the_next_process(
    tmp_path: Path, clip: Path, reference: dict[str, Any], fault_summary: dict[str, int]
) -> None:
    home = tmp_path / "home"
    # Given a process ingesting the clip, hanging at chunk 1's encode while chunks 0
    # and 2 run on
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.faults.crash_worker", str(home), str(clip)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        started = _read_until(proc, "STARTED", 60)[-1].split()
        video_id, dead_execution = started[1], started[2]
        _read_until(proc, "HANGING", 60)
        time.sleep(0.5)  # let the other chunks write some of their results
    finally:
        # When the process is killed outright
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    fault_summary["faults_injected"] += 1

    # Then a new process finds the video unfinished, with a dead owner, and resumes it
    with fake_stack(home) as service:
        service: IngestService
        before = service.repo.get_video(TENANT, video_id)
        assert before.status in (VideoStatus.QUEUED, VideoStatus.PROCESSING)
        assert before.execution_id == dead_execution
        token = recovery.owner_token(dead_execution)
        assert token and token != recovery.PROCESS_TOKEN
        assert (home / "runtime" / f"{token}.lock").is_file()
        resumed = runtime.resume_unfinished()
        assert [r["video_id"] for r in resumed] == [video_id]
        assert not (home / "runtime" / f"{token}.lock").exists()  # the dead lease is gone
        outcome = service.orchestrator.wait(resumed[0]["execution_id"], timeout_s=120)
        assert outcome["status"] == "SUCCEEDED", outcome
        settle()
        # A second start finds nothing to resume: the execution is this process's
        assert runtime.resume_unfinished() == []
        got = fingerprint(video_id)
    missing = lost(reference, got)
    fault_summary["data_lost"] += missing
    assert got == reference
    fault_summary["recovered"] += 1
