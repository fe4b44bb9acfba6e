"""The fault suite's shared fixtures and its summary: faults injected, recovered, data
lost, corrupt reads served. The summary is printed at the end of the run, written as
JSON (``$SIGHTLINE_FAULT_SUMMARY``, else ``fault-summary.json`` in pytest's base temp
folder) and asserted: nothing lost, nothing corrupt served."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sightline.services.ingest import IngestService
from sightline_local import faults, runtime
from tests.faults.stack import TENANT, fake_stack, fingerprint, short_clip

SUMMARY: dict[str, int] = {
    "faults_injected": 0,
    "recovered": 0,
    "data_lost": 0,
    "corruptions_injected": 0,
    "corruptions_detected": 0,
    "corrupt_reads_served": 0,
    "bad_inputs": 0,
    "bad_inputs_handled": 0,
}


@pytest.fixture(scope="session")
def fault_summary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, int]]:
    yield SUMMARY
    path = Path(
        os.environ.get("SIGHTLINE_FAULT_SUMMARY")
        or tmp_path_factory.getbasetemp() / "fault-summary.json"
    )
    path.write_text(json.dumps(SUMMARY, indent=1) + "\n")
    assert SUMMARY["data_lost"] == 0, SUMMARY
    assert SUMMARY["corrupt_reads_served"] == 0, SUMMARY
    assert SUMMARY["recovered"] == SUMMARY["faults_injected"], SUMMARY


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if any(SUMMARY.values()):
        terminalreporter.write_sep("-", "fault suite summary")
        terminalreporter.write_line(json.dumps(SUMMARY))


@pytest.fixture(scope="session", autouse=True)
def _foreign_executions() -> None:
    _FOREIGN.update(_running())


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return short_clip(tmp_path_factory.mktemp("clip"))


@pytest.fixture(scope="session")
def reference(clip: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What a clean run of ``clip`` stores (same tenant, so the same ids)."""
    with fake_stack(tmp_path_factory.mktemp("reference") / "home") as service:
        sub = service.submit_file(TENANT, clip)
        assert sub.execution_id
        assert service.orchestrator.wait(sub.execution_id, 120)["status"] == "SUCCEEDED"
        settle()
        ref = fingerprint(sub.video.video_id)
    assert ref["status"] == "completed" and ref["chunks_total"] == 3, ref
    return ref


class _QuickRetries:
    """``time`` for the interpreter's retrier, with backoff waits cut to a tenth: a test
    needs the retry to happen, not the seconds of backoff the ASL asks for."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        time.sleep(seconds / 10)


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[IngestService]:
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback as callback,
    )

    monkeypatch.setattr(retrier_decl, "time", _QuickRetries())
    # The interpreter polls a .sync child execution every 0.5 s; a tenth keeps runs short.
    monkeypatch.setattr(callback, "_DELAY_SECONDS_SYNC_CONDITION_CHECK", 0.05)
    faults.PLAN.clear()
    with fake_stack(tmp_path / "home") as service:
        yield service
    faults.PLAN.clear()


def _running() -> set[str]:
    engine = runtime._Engine.get()
    return {
        e["executionArn"]
        for arn in engine.arns.values()
        for e in engine.sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")[
            "executions"
        ]
    }


# Executions other test modules left running in this process's engine (a live_clip whose
# camera's home is gone, a task that waits out its timeout): not this suite's to wait for.
_FOREIGN: set[str] = set()


def settle(timeout_s: float = 60.0) -> None:
    """Wait until no execution of this suite runs (a failed Map's other iterations too)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _running() - _FOREIGN:
            return
        time.sleep(0.1)
    raise AssertionError(f"executions still running after {timeout_s}s")
