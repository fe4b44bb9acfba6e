"""Recovery after a crash: the embedded runtime resumes the ingests a dead process left.

The local orchestrator keeps its executions in memory (moto's ASL interpreter), so when
its process dies mid-ingest the store keeps everything the finished steps wrote, and the
video stays ``queued`` or ``processing`` with an execution that nobody runs any more. A
process that starts (``sightline up``, ``sightline ingest``) calls ``resume_unfinished``:
every such orphan gets a fresh ``ingest_video`` execution, and because every step is
idempotent (keys and ids derive from tenant, video and chunk; a re-run overwrites), the
video ends with each chunk, manifest, event and index document exactly once.

Telling a dead execution from one another live process runs (the CLI ingesting while
the server starts) needs no clock: each process holds an exclusive ``flock`` on
``SIGHTLINE_HOME/runtime/<token>.lock`` for as long as it lives (the kernel drops it
when the process dies, even on SIGKILL), and names its executions ``<token>-...``. An
execution is orphaned when it is not running in this process and its owner's lock can
be taken.

On AWS nothing is in memory: Step Functions keeps executions, and
``redrive_failed_executions`` redrives those that failed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sightline.config import get_settings
from sightline.models import Video, VideoStatus

logger = logging.getLogger(__name__)

PROCESS_TOKEN = secrets.token_hex(6)
_TOKEN = re.compile(r"^[0-9a-f]{12}$")
_UNFINISHED = (VideoStatus.QUEUED, VideoStatus.PROCESSING)
# A pending video whose source object exists but whose ingest never started (the process
# died between storing the upload and starting the execution) is resumed only after this
# long, so that an upload another process is finishing right now is left alone.
PENDING_GRACE_S = 120.0

_lock = threading.Lock()
_leases: dict[Path, int] = {}  # home -> open descriptor holding this process's flock


def _runtime_dir(home: Path) -> Path:
    return Path(home) / "runtime"


def acquire_lease(home: Path | None = None) -> str:
    """Hold this process's lease in ``home`` (idempotent); returns the process token."""
    home = Path(home or get_settings().home).resolve()
    with _lock:
        if home in _leases:
            return PROCESS_TOKEN
        directory = _runtime_dir(home)
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory / f"{PROCESS_TOKEN}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, f"{os.getpid()}\n".encode())
        _leases[home] = fd
    return PROCESS_TOKEN


def execution_name(video_id: str) -> str:
    """An ``ingest_video`` execution name that carries this process's lease token."""
    token = acquire_lease()
    return f"{token}-{uuid.uuid4().hex[:8]}-{video_id}"[:80]


def owner_token(execution_id: str | None) -> str | None:
    """The lease token in an execution's name, if it has one."""
    if not execution_id:
        return None
    token = execution_id.rsplit(":", 1)[-1].split("-", 1)[0]
    return token if _TOKEN.match(token) else None


def owner_alive(home: Path, token: str) -> bool:
    """Whether the process that holds lease ``token`` in ``home`` is still alive."""
    if token == PROCESS_TOKEN:
        return True
    path = _runtime_dir(home) / f"{token}.lock"
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        # Its owner is gone: the lease file is litter now.
        path.unlink(missing_ok=True)
        return False
    finally:
        os.close(fd)


def _running_here(execution_id: str) -> bool:
    from botocore.exceptions import ClientError

    from sightline_local import runtime

    if runtime._Engine._instance is None:
        return False
    try:
        return runtime.LocalOrchestrator().is_running(execution_id)
    except ClientError:  # not an execution of this engine at all (another region, a typo)
        return False


def is_orphaned(video: Video, home: Path, *, now: datetime | None = None) -> bool:
    """An unfinished video whose execution no live process runs."""
    if video.status == VideoStatus.PENDING:
        if video.execution_id or not video.source_key:
            return False
        age = ((now or datetime.now(UTC)) - video.updated_at).total_seconds()
        if age < PENDING_GRACE_S:
            return False
        from sightline import factory

        return factory.blobs().exists(video.source_key)
    if video.status not in _UNFINISHED:
        return False
    if video.execution_id and _running_here(video.execution_id):
        return False
    token = owner_token(video.execution_id)
    if token == PROCESS_TOKEN:
        return True  # ours, and not running: it ended without recording an outcome
    return token is None or not owner_alive(home, token)


def tenants(db_path: Path) -> list[str]:
    """Every tenant with a video (the Table port has no scan; this reads SQLite directly)."""
    if not Path(db_path).is_file():
        return []
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        rows = conn.execute("SELECT DISTINCT pk FROM t_videos").fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()
    return sorted(str(r[0]) for r in rows)


@contextlib.contextmanager
def _exclusive(home: Path) -> Iterator[None]:
    """One recovery at a time per data directory (two processes may start together)."""
    directory = _runtime_dir(home)
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / "recovery.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def resume_unfinished(video_ids: set[str] | None = None) -> list[dict[str, Any]]:
    """Start a fresh ``ingest_video`` for every orphaned video (or only those of
    ``video_ids``); returns what was resumed.

    Only the embedded runtime needs this (on AWS the executions outlive any process).
    """
    s = get_settings()
    if s.orchestrator != "local" or s.tables != "local":
        return []
    from sightline import factory
    from sightline.services.ingest import IngestService
    from sightline.services.repository import Repository

    home = Path(s.home).resolve()
    repo = Repository(factory.tables())
    resumed: list[dict[str, Any]] = []
    with _exclusive(home):
        acquire_lease(home)  # first, so our own restarts below are seen as alive
        service: IngestService | None = None
        for tenant in tenants(s.db_path):
            for video in repo.list_videos(tenant):
                if video_ids is not None and video.video_id not in video_ids:
                    continue
                if not is_orphaned(video, home):
                    continue
                if service is None:
                    service = IngestService(factory.blobs(), repo, factory.orchestrator())
                logger.warning(
                    "resuming %s/%s (%s, execution %s died with its process)",
                    tenant,
                    video.video_id,
                    video.status.value,
                    video.execution_id,
                )
                sub = service.start(video)
                resumed.append(
                    {
                        "tenant_id": tenant,
                        "video_id": video.video_id,
                        "was": video.status.value,
                        "dead_execution": video.execution_id,
                        "execution_id": sub.execution_id,
                    }
                )
    return resumed


# ----- AWS: Step Functions redrive ----------------------------------------------------

REDRIVABLE = ("FAILED", "TIMED_OUT", "ABORTED")


def redrive_failed_executions(
    sfn: Any, state_machine_arn: str, *, statuses: tuple[str, ...] = REDRIVABLE
) -> dict[str, list[str]]:
    """Redrive every unsuccessful execution of ``state_machine_arn`` not yet redriven.

    Redrive continues an execution from its unsuccessful step with the same input and
    ARN (Standard workflows, within 14 days). The client token derives from the ARN and
    the redrive count, so a retried call does not redrive twice. Executions the service
    refuses (``ExecutionNotRedrivable``) are reported, not raised.
    """
    out: dict[str, list[str]] = {"redriven": [], "not_redrivable": []}
    pages = sfn.get_paginator("list_executions")
    for status in statuses:
        for page in pages.paginate(
            stateMachineArn=state_machine_arn, statusFilter=status, redriveFilter="NOT_REDRIVEN"
        ):
            for item in page["executions"]:
                arn = item["executionArn"]
                token = hashlib.sha256(f"{arn}|{item.get('redriveCount', 0)}".encode()).hexdigest()[
                    :64
                ]
                try:
                    sfn.redrive_execution(executionArn=arn, clientToken=token)
                except sfn.exceptions.ExecutionNotRedrivable as exc:
                    logger.warning("%s cannot be redriven: %s", arn, exc)
                    out["not_redrivable"].append(arn)
                    continue
                out["redriven"].append(arn)
    return out


@dataclass
class ReplayContext:
    """The Lambda context a replayed invocation gets (what Powertools reads of it)."""

    function_name: str = "sightline-replay"
    aws_request_id: str = "replay"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:000000000000:function:replay"
    memory_limit_in_mb: int = 128
    function_version: str = "$LATEST"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def replay_dead_letters(
    sqs: Any,
    queue_url: str,
    handler: Callable[[dict[str, Any], Any], Any],
    *,
    max_messages: int = 1000,
    visibility_s: int = 300,
) -> dict[str, Any]:
    """Hand each message of a dead-letter queue back to the function that failed it.

    Both DLQs of the upload trigger (the EventBridge rule's and the function's own, for
    failed asynchronous invocations) hold the original event as the message body. A
    message is deleted once its replay succeeds; one that fails again stays (invisible for
    ``visibility_s``, then back in the queue) and is counted. Replays are safe because the
    handlers are idempotent: a replayed upload event answers with the existing video.
    """
    out: dict[str, Any] = {"replayed": 0, "failed": 0, "results": []}
    attempted: set[str] = set()
    while len(attempted) < max_messages:
        resp = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(10, max_messages - len(attempted)),
            VisibilityTimeout=visibility_s,
            WaitTimeSeconds=0,
        )
        messages = [m for m in resp.get("Messages", []) if m["MessageId"] not in attempted]
        if not messages:
            break  # empty, or only messages this run already failed to replay
        for message in messages:
            attempted.add(message["MessageId"])
            try:
                result = handler(json.loads(message["Body"]), ReplayContext())
            except Exception as exc:  # any failure leaves the message in the queue
                logger.warning("replay of %s failed: %s", message["MessageId"], exc)
                out["failed"] += 1
                continue
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            out["replayed"] += 1
            out["results"].append(result)
    return out
