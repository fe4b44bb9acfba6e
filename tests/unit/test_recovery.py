"""Leases tell an execution that died with its process from one another live process
runs: the kernel drops a dead process's flock, even after SIGKILL."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sightline.models import Video, VideoStatus
from sightline_local import recovery

HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(60)
"""


def test_a_lease_is_alive_while_its_process_lives(tmp_path: Path) -> None:
    token = "0123456789ab"
    (tmp_path / "runtime").mkdir()
    lock = tmp_path / "runtime" / f"{token}.lock"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lock)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        assert recovery.owner_alive(tmp_path, token)
    finally:
        proc.kill()
        proc.wait(10)
    assert not recovery.owner_alive(tmp_path, token)
    assert not lock.exists()  # a dead owner's lease file is removed
    assert not recovery.owner_alive(tmp_path, "ffffffffffff")  # never existed


def test_execution_names_carry_this_process_token(home: Path) -> None:
    name = recovery.execution_name("v" + "1" * 20)
    arn = f"arn:aws:states:us-east-1:123456789012:execution:sightline-ingest_video:{name}"
    assert recovery.owner_token(arn) == recovery.PROCESS_TOKEN
    assert recovery.owner_alive(home.resolve(), recovery.PROCESS_TOKEN)
    assert recovery.owner_token("arn:...:execution:sm:v1234-abcd") is None
    assert recovery.owner_token(None) is None


def _video(status: VideoStatus, **kw: object) -> Video:
    return Video(tenant_id="org/p", video_id="v" + "2" * 20, status=status, **kw)  # type: ignore[arg-type]


def test_which_videos_are_orphaned(home: Path) -> None:
    dead = (
        "arn:aws:states:us-east-1:123456789012:execution:sightline-ingest_video:deadbeef0000-1-v1"
    )
    h = home.resolve()
    assert recovery.is_orphaned(_video(VideoStatus.PROCESSING, execution_id=dead), h)
    assert recovery.is_orphaned(_video(VideoStatus.QUEUED), h)  # died before it started
    assert not recovery.is_orphaned(_video(VideoStatus.COMPLETED, execution_id=dead), h)
    assert not recovery.is_orphaned(_video(VideoStatus.FAILED, execution_id=dead), h)
    # A pending upload is left alone until its grace period has passed, and only if its
    # source object exists (the upload finished, the start did not happen)
    old = datetime.now(UTC) - timedelta(seconds=recovery.PENDING_GRACE_S + 1)
    pending = _video(VideoStatus.PENDING, source_key="org/p/videos/v/source/a.mp4", updated_at=old)
    assert not recovery.is_orphaned(pending, h)
    from sightline import factory

    factory.blobs().put_bytes(pending.source_key, b"x")
    assert recovery.is_orphaned(pending, h)
    fresh = pending.model_copy(update={"updated_at": datetime.now(UTC)})
    assert not recovery.is_orphaned(fresh, h)
