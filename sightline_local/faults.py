"""Fault injection for the embedded runtime: make a pipeline step fail, time out, hang or
kill its process, so that tests (and a person at a terminal) can prove the pipeline
recovers with nothing lost and nothing duplicated.

``runtime.dispatch`` asks ``PLAN.check(step, event)`` before it calls a step's handler.
With nothing armed that is one attribute read; an armed fault answers the way Lambda
would answer the state machine:

- ``error``: the handler raised a non-retryable exception (``InjectedFault``); the ASL's
  Catch takes it and the video fails with the reason recorded.
- ``transient``: a ``TransientError``, which the ASL's Retry re-runs with backoff.
- ``timeout``: the function hung until Lambda's own timeout cut it off: after
  ``seconds`` it answers ``Sandbox.Timedout`` (Lambda's error type for a timed-out
  invocation), having written nothing.
- ``hang``: the step blocks until ``release()`` (or ``seconds``), then runs normally; a
  test kills the process while it hangs.
- ``kill``: SIGKILL to this process at that step (no cleanup, no flush: a power cut).

Faults are armed in code (``PLAN.arm``) or, for a command-line run, by
``SIGHTLINE_FAULTS``: a JSON list of ``{"step", "kind", "times", "chunk", "seconds"}``.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

logger = logging.getLogger(__name__)

Kind = Literal["error", "transient", "timeout", "hang", "kill"]
KINDS: tuple[str, ...] = ("error", "transient", "timeout", "hang", "kill")
ENV = "SIGHTLINE_FAULTS"


@dataclass
class Fault:
    """One armed fault: ``kind`` at ``step`` (for ``chunk`` only, if given), ``times`` times."""

    step: str
    kind: Kind
    times: int = 1
    chunk: int | None = None
    seconds: float = 0.2
    on_hit: Callable[[Fault], None] | None = None
    hits: int = 0
    released: threading.Event = field(default_factory=threading.Event)

    def matches(self, step: str, event: Any) -> bool:
        if self.step != step or self.hits >= self.times:
            return False
        if self.chunk is None:
            return True
        chunk = event.get("chunk") if isinstance(event, dict) else None
        return isinstance(chunk, dict) and chunk.get("index") == self.chunk


@dataclass(frozen=True)
class Injected:
    step: str
    kind: str
    chunk: int | None


class FaultPlan:
    """The faults armed in this process, and a log of those that fired."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self.injected: list[Injected] = []
        self._env_loaded = False

    def arm(
        self,
        step: str,
        kind: Kind,
        *,
        times: int = 1,
        chunk: int | None = None,
        seconds: float = 0.2,
        on_hit: Callable[[Fault], None] | None = None,
    ) -> Fault:
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {KINDS}")
        fault = Fault(step, kind, times=times, chunk=chunk, seconds=seconds, on_hit=on_hit)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        """Disarm everything and release any hanging step."""
        with self._lock:
            for fault in self._faults:
                fault.released.set()
            self._faults.clear()
            self.injected.clear()

    def release(self) -> None:
        with self._lock:
            for fault in self._faults:
                fault.released.set()

    def _load_env(self) -> None:
        self._env_loaded = True
        raw = os.environ.get(ENV)
        if not raw:
            return
        for spec in json.loads(raw):
            self.arm(
                spec["step"],
                spec["kind"],
                times=int(spec.get("times", 1)),
                chunk=spec.get("chunk"),
                seconds=float(spec.get("seconds", 0.2)),
            )

    def check(self, step: str, event: Any) -> dict[str, str] | None:
        """Apply the fault armed for this invocation, if any.

        Returns the Lambda error payload to answer with, or None to run the handler.
        """
        if not self._env_loaded:
            self._load_env()
        if not self._faults:
            return None
        with self._lock:
            fault = next((f for f in self._faults if f.matches(step, event)), None)
            if fault is None:
                return None
            fault.hits += 1
            chunk = fault.chunk
            self.injected.append(Injected(step, fault.kind, chunk))
        logger.warning("injecting %s at %s (chunk %s)", fault.kind, step, chunk)
        if fault.on_hit is not None:
            fault.on_hit(fault)
        where = step if chunk is None else f"{step} of chunk {chunk}"
        if fault.kind == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(60)  # SIGKILL is not deliverable late, but never run the step
        if fault.kind == "error":
            return {"errorType": "InjectedFault", "errorMessage": f"injected error in {where}"}
        if fault.kind == "transient":
            return {"errorType": "TransientError", "errorMessage": f"injected throttle in {where}"}
        if fault.kind == "timeout":
            fault.released.wait(fault.seconds)
            return {
                "errorType": "Sandbox.Timedout",
                "errorMessage": f"Task timed out after {fault.seconds:.2f} seconds ({where})",
            }
        # hang: block, then let the step run as if it had merely been slow.
        fault.released.wait(fault.seconds)
        return None


PLAN = FaultPlan()
