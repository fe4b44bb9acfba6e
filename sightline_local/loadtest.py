"""``sightline bench load``: concurrent clients against ``sightline up`` on loopback while
two videos ingest; requests per second, latency percentiles and errors, then a check
that both ingests completed with every chunk stored and indexed exactly once.

The server is started here as its own process (``sightline up --port 0``) over the
configured SIGHTLINE_HOME, so that the clients' threads do not share its interpreter,
or given by ``url`` (it must then use the same SIGHTLINE_HOME: the clients' tokens are
signed with its development key). The per-caller rate limiter is set out of the way
(``--rate 1e9 --burst 1000000``) so the figures measure the service, not the limiter;
each client also authenticates as its own subject (its own limiter bucket), and 429
answers are counted apart from errors in any case.

Each run uses two fresh tenants, one video each, so the videos really ingest (an already
ingested file would be answered from the store at once) and each tenant's index holds
exactly its video's chunks: the ingest check counts manifests and index documents against
the chunk plan. Clients alternate between the two tenants and read only their own
tenant's video; an answer about the other tenant's video, or a 404 for their own (a
request served with another caller's identity), counts as a tenancy violation.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

QUERIES = (
    "people walking",
    "a parked car",
    "a person near a vehicle",
    "a crowd crossing",
    "a man talking in a car",
    "an empty scene",
)
MIX = (("search", 0.4), ("status", 0.3), ("events", 0.3))
KINDS: tuple[str, ...] = tuple(kind for kind, _ in MIX)
WEIGHTS: tuple[float, ...] = tuple(weight for _, weight in MIX)
_URL_LINE = re.compile(r"http://127\.0\.0\.1:(\d+)")
TERMINAL = ("completed", "failed")


@dataclass(frozen=True)
class Sample:
    kind: str
    status: int  # HTTP status; 0 when the request did not complete
    seconds: float
    error: str = ""  # why it did not complete (the exception's class)


class _Client:
    """One keep-alive connection with its own bearer token."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host, self.port, self.token = host, port, token
        self.conn: http.client.HTTPConnection | None = None

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        headers = {"Authorization": f"Bearer {self.token}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            self.conn.request(method, path, body=data, headers=headers)
            resp = self.conn.getresponse()
            payload = resp.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        if resp.getheader("Connection", "").lower() == "close":
            self.close()
        ctype = resp.getheader("Content-Type", "")
        return resp.status, json.loads(payload) if "json" in ctype and payload else payload

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def default_clips(work: Path) -> list[Path]:
    """Two different real clips: carphone (4 s) and the first 20 s of vtest.avi."""
    from sightline_local.samples import shared_data_dir, vtest_clip

    work.mkdir(parents=True, exist_ok=True)
    vtest20 = work / "vtest-20s.mp4"
    if not vtest20.is_file():
        subprocess.run(
            [
                *("ffmpeg", "-v", "error", "-y", "-i", str(vtest_clip(work)), "-t", "20"),
                *("-c:v", "libx264", "-preset", "veryfast", "-crf", "18", str(vtest20)),
            ],
            check=True,
        )
    shared = shared_data_dir()
    second = shared / "carphone_pristine.mp4" if shared else None
    if second is None or not second.is_file():
        second = work / "vtest-20-26s.mp4"
        if not second.is_file():
            subprocess.run(
                [
                    *("ffmpeg", "-v", "error", "-y", "-ss", "20", "-i", str(vtest_clip(work))),
                    *("-t", "6", "-c:v", "libx264", "-preset", "veryfast", str(second)),
                ],
                check=True,
            )
    return [vtest20, second]


def _start_server(clips: list[Path]) -> tuple[subprocess.Popen[str], int]:
    env = {
        **os.environ,
        "SIGHTLINE_SOURCE_ROOTS": json.dumps(sorted({str(c.resolve().parent) for c in clips})),
    }
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "sightline_local.cli", "up", "--port", "0"),
            *("--rate", "1e9", "--burst", "1000000"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        m = _URL_LINE.search(line)
        if m:
            # Keep reading its output so the pipe never fills and blocks the server.
            threading.Thread(target=proc.stdout.read, daemon=True).start()
            return proc, int(m.group(1))
    proc.kill()
    raise RuntimeError("sightline up did not start")


def _stop_server(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def run_load(
    *,
    clients: int = 50,
    seconds: float = 20.0,
    url: str | None = None,
    clips: list[Path] | None = None,
    ingest_timeout_s: float = 1800.0,
    seed: int = 0,
) -> dict[str, Any]:
    """Measure the API under ``clients`` concurrent clients for ``seconds`` while the two
    ``clips`` ingest, then verify the ingests. Returns the report (see module doc)."""
    from sightline import factory
    from sightline.api.security import DevSigner, Role
    from sightline.config import get_settings

    s = get_settings()
    clips = clips or default_clips(Path(s.home) / "bench-load")
    if len(clips) != 2 or clips[0].resolve() == clips[1].resolve():
        raise ValueError("the load bench ingests two different clips")
    proc = None
    if url is None:
        proc, port = _start_server(clips)
        host = "127.0.0.1"
    else:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
    try:
        org, run_id = "load", secrets.token_hex(4)
        projects = [f"bench-{run_id}-a", f"bench-{run_id}-b"]
        signer = DevSigner(s.key_dir)

        def token(project: str, subject: str) -> str:
            return signer.mint(org=org, project=project, role=Role.EDITOR, subject=subject)

        admins = [_Client(host, port, token(p, "load-admin")) for p in projects]
        _wait_healthy(admins[0])
        video_ids = []
        for admin, clip in zip(admins, clips, strict=True):
            status, body = admin.call("POST", "/v1/videos", {"source": str(clip.resolve())})
            if status >= 300:
                raise RuntimeError(f"POST /v1/videos {clip} answered {status}: {body}")
            video_ids.append(body["video_id"])
        load_before = os.getloadavg()
        samples = _drive(
            host,
            port,
            [token(projects[i % 2], f"load-{i}") for i in range(clients)],
            video_ids,
            seconds,
            seed,
        )
        load_after = os.getloadavg()
        ingests = [
            _await_ingest(admin, vid, ingest_timeout_s)
            for admin, vid in zip(admins, video_ids, strict=True)
        ]
        for admin in admins:
            admin.close()
        if url is None or _same_home(url):
            for project, ingest in zip(projects, ingests, strict=True):
                _verify_store(f"{org}/{project}", ingest, factory)
    finally:
        if proc is not None:
            _stop_server(proc)
    return _report(
        samples,
        seconds=seconds,
        clients=clients,
        ingests=ingests,
        load=(load_before, load_after),
        server=url or f"sightline up (port {port}, limiter off)",
    )


def _same_home(url: str) -> bool:
    return urlsplit(url).hostname in ("127.0.0.1", "localhost")


def _wait_healthy(client: _Client, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if client.call("GET", "/health")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the server is not healthy")


def _drive(
    host: str, port: int, tokens: list[str], video_ids: list[str], seconds: float, seed: int
) -> list[Sample]:
    """Run the clients (client ``i`` belongs to tenant ``i % 2`` and reads video
    ``video_ids[i % 2]``); each records its own samples (no lock on the hot path)."""
    start = threading.Barrier(len(tokens) + 1)
    results: list[list[Sample]] = [[] for _ in tokens]

    def client(i: int) -> None:
        rng = random.Random(seed * 1000 + i)
        c = _Client(host, port, tokens[i])
        out = results[i]
        own = video_ids[i % 2]
        start.wait()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            kind = rng.choices(KINDS, WEIGHTS)[0]
            t = time.perf_counter()
            error = ""
            try:
                if kind == "search":
                    query = {"text": rng.choice(QUERIES), "k": 10}
                    status, answer = c.call("POST", "/v1/search/similar", query)
                elif kind == "status":
                    status, answer = c.call("GET", f"/v1/videos/{own}")
                else:
                    status, answer = c.call("GET", f"/v1/videos/{own}/events")
                body = answer if status == 200 and isinstance(answer, dict) else {}
                listed = body.get("hits") or body.get("events") or [body]
                seen = {item.get("video_id") for item in listed} - {None}
                if status == 404 or seen - {own}:
                    error = "TenancyViolation"
            except (OSError, http.client.HTTPException) as exc:
                status, error = 0, type(exc).__name__
            out.append(Sample(kind, status, time.perf_counter() - t, error))
        c.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(len(tokens))]
    for t in threads:
        t.start()
    start.wait()
    for t in threads:
        t.join(seconds + 120)
    return [s for r in results for s in r]


def _await_ingest(client: _Client, video_id: str, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    view: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status, body = client.call("GET", f"/v1/videos/{video_id}")
        if status == 200:
            view = body
        if view.get("status") in TERMINAL:
            break
        time.sleep(1.0)
    status, events = client.call("GET", f"/v1/videos/{video_id}/events")
    return {
        "video_id": video_id,
        "status": view.get("status"),
        "chunks_total": view.get("chunks_total"),
        "chunks_done": view.get("chunks_done"),
        "events": len(events.get("events", [])) if status == 200 else None,
        "failure_reason": view.get("failure_reason"),
    }


def _verify_store(tenant: str, ing: dict[str, Any], factory: Any) -> None:
    """The video: one manifest per planned chunk (ids 0..n-1), one index document per
    chunk, and its tenant's index holds nothing else: the two ingests did not mix."""
    from sightline.services.repository import Repository

    rows = Repository(factory.tables()).list_manifests(tenant, ing["video_id"])
    index = factory.index()
    n = ing["chunks_total"] or 0
    ing["manifests"] = len(rows)
    ing["chunk_ids_exact"] = sorted(r.chunk_index for r in rows) == list(range(n))
    ing["documents"] = sum(index.get(tenant, r.manifest_id) is not None for r in rows)
    ing["tenant_documents"] = index.count(tenant)
    ing["ok"] = (
        ing["status"] == "completed"
        and n > 0
        and ing["chunks_done"] == n
        and ing["manifests"] == n
        and ing["chunk_ids_exact"]
        and ing["documents"] == n
        and ing["tenant_documents"] == n
    )


def _pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)) * 1000, 2) if values else 0.0


def _report(
    samples: list[Sample],
    *,
    seconds: float,
    clients: int,
    ingests: list[dict],
    load: tuple[tuple[float, float, float], tuple[float, float, float]],
    server: str,
) -> dict[str, Any]:
    ok = [s for s in samples if 200 <= s.status < 400 and not s.error]
    limited = [s for s in samples if s.status == 429]
    errors = [s for s in samples if s.error or (s.status >= 400 and s.status != 429)]
    violations = [s for s in samples if s.error == "TenancyViolation"]
    lat = [s.seconds for s in ok]
    by_kind = {}
    for kind, _ in MIX:
        k = [s.seconds for s in ok if s.kind == kind]
        by_kind[kind] = {"n": len(k), "p50_ms": _pct(k, 50), "p99_ms": _pct(k, 99)}
    return {
        "clients": clients,
        "seconds": seconds,
        "requests": len(samples),
        "rps": round(len(ok) / seconds, 1),
        "p50_ms": _pct(lat, 50),
        "p90_ms": _pct(lat, 90),
        "p99_ms": _pct(lat, 99),
        "max_ms": _pct(lat, 100),
        "errors": len(errors),
        "tenancy_violations": len(violations),
        "rate_limited": len(limited),
        "status_counts": dict(sorted(Counter(str(s.status) for s in samples).items())),
        "error_kinds": dict(Counter(s.error for s in samples if s.error)),
        "by_kind": by_kind,
        "ingests": ingests,
        "ingests_ok": all(i.get("ok", i["status"] == "completed") for i in ingests),
        "load_average_before": [round(x, 2) for x in load[0]],
        "load_average_after": [round(x, 2) for x in load[1]],
        "cpus": os.cpu_count(),
        "server": server,
    }


def format_load_report(r: dict[str, Any]) -> str:
    lines = [
        f"{r['clients']} clients for {r['seconds']:g} s against {r['server']}",
        f"  {r['requests']} requests, {r['rps']} req/s ok; latency p50 {r['p50_ms']} ms, "
        f"p90 {r['p90_ms']} ms, p99 {r['p99_ms']} ms, max {r['max_ms']} ms",
        f"  errors {r['errors']} {r['error_kinds'] or ''}, tenancy violations "
        f"{r['tenancy_violations']}, rate-limited (429) {r['rate_limited']}; "
        f"statuses {r['status_counts']}",
    ]
    for kind, k in r["by_kind"].items():
        lines.append(f"  {kind:<7} n={k['n']:<6} p50 {k['p50_ms']} ms  p99 {k['p99_ms']} ms")
    for i in r["ingests"]:
        lines.append(
            f"  ingest {i['video_id']}: {i['status']}, chunks {i['chunks_done']}/"
            f"{i['chunks_total']}, manifests {i.get('manifests')}, documents "
            f"{i.get('documents')}, events {i['events']}  {'ok' if i.get('ok') else 'NOT OK'}"
        )
    lines.append(
        f"  load average before {r['load_average_before']}, after {r['load_average_after']} "
        f"on {r['cpus']} CPUs (a shared machine: read the figures with that in mind)"
    )
    return "\n".join(lines)
