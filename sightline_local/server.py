"""``sightline up``: the API function behind a local HTTP server on 127.0.0.1.

The server plays API Gateway's part: it authenticates each request with the same code
as the Lambda authorizer, puts the principal in the request context, rate-limits per
caller, and hands the API function a REST proxy event. Large uploads are streamed to a
file first (API Gateway would send them to S3 instead) and passed by the request context,
which a client cannot set.
"""

from __future__ import annotations

import base64
import json
import logging
import queue
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sightline.api.security import AuthError
from sightline.config import get_settings
from sightline_local import web_assets

logger = logging.getLogger(__name__)

PUBLIC = ("/health", "/v1/openapi.json", "/swagger")
CHUNK = 1 << 20
DRAIN_LIMIT = 64 << 20


class RateLimiter:
    """A token bucket per caller: ``rate`` requests per second, bursts up to ``burst``."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, caller: str) -> bool:
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(caller, (float(self.burst), now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens < 1:
                self._buckets[caller] = (tokens, now)
                return False
            self._buckets[caller] = (tokens - 1, now)
            return True


class _Context:
    function_name = "sightline-api"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:sightline-api"
    function_version = "$LATEST"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


class ApiServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default listen backlog is 5: a burst of concurrent clients then
    # finds connections reset (measured with `sightline bench load`).
    request_queue_size = 128

    def __init__(self, port: int, *, rate: float = 50.0, burst: int = 100) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        from functions.api.handler import lambda_handler
        from sightline.services.auth import authenticator

        self.api = lambda_handler
        # One event at a time, as a Lambda instance runs: Powertools keeps the current event
        # in class state (BaseRouter.current_event), so two threads in the resolver at once
        # could answer one caller with another's principal.
        self.api_lock = threading.Lock()
        self.auth = authenticator()
        self.limiter = RateLimiter(rate, burst)
        self.settings = get_settings()
        self.streams: list[tuple[str, queue.Queue[str]]] = []
        self._streams_lock = threading.Lock()
        from concurrent.futures import ThreadPoolExecutor

        from sightline import factory
        from sightline.services.webhooks import Webhooks

        self.webhooks = Webhooks(factory.tables())
        self._deliveries = ThreadPoolExecutor(max_workers=4, thread_name_prefix="webhook")
        bus = factory.bus()
        if hasattr(bus, "subscribe"):
            bus.subscribe(self._on_bus_event)

    def _on_bus_event(self, detail_type: str, detail: dict[str, Any]) -> None:
        from sightline.services.webhooks import dispatch

        # Deliveries retry with backoff; never hold up the pipeline step that published.
        self._deliveries.submit(dispatch, self.webhooks, detail_type, detail)
        tenant = detail.get("tenant_id")
        message = f"event: {detail_type}\ndata: {json.dumps(detail, default=str)}\n\n"
        with self._streams_lock:
            for stream_tenant, q in self.streams:
                if tenant == stream_tenant:
                    q.put(message)


class _Handler(BaseHTTPRequestHandler):
    server: ApiServer
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: Any) -> None:
        logger.debug("%s " + fmt, self.address_string(), *args)

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    # ------------------------------------------------------------------------------

    def _problem(self, status: int, title: str, detail: str) -> None:
        body = json.dumps(
            {"type": "about:blank", "title": title, "status": status, "detail": detail}
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/problem+json")
        self.send_header("Content-Length", str(len(body)))
        if status in (401,):
            self.send_header("WWW-Authenticate", 'Bearer realm="sightline"')
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        url = urlsplit(self.path)
        path = url.path
        # The web page (public; its API calls carry the token) and the local dev-token button.
        if web_assets.handle(self, url, self.server.settings):
            return
        headers = {k: v for k, v in self.headers.items()}
        principal = None
        if not path.startswith(PUBLIC):
            try:
                principal = self.server.auth.authenticate(headers)
            except AuthError as exc:
                self._drain()
                self._problem(401, "Unauthorized", str(exc))
                return
            caller = f"{principal.tenant_id}|{principal.subject}"
            if not self.server.limiter.allow(caller):
                self._drain()
                self._problem(429, "Too many requests", "slow down")
                return
            if path == "/v1/stream" and self.command == "GET":
                self._stream(principal.tenant_id)
                return
        staged: Path | None = None
        try:
            body, staged, err = self._read_body(path)
            if err:
                self._problem(*err)
                return
            event = self._event(url, headers, body, principal, staged)
            with self.server.api_lock:
                response = self.server.api(event, _Context())
            self._respond(response)
        finally:
            if staged is not None:
                staged.unlink(missing_ok=True)

    def _drain(self) -> None:
        # Do not read an unauthenticated body; close the connection after answering.
        self.close_connection = True

    def _read_body(self, path: str) -> tuple[bytes, Path | None, tuple[int, str, str] | None]:
        length = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True
            return b"", None, (411, "Length required", "send Content-Length")
        upload = self.command == "PUT" and path.endswith("/upload")
        settings = self.server.settings
        if upload:
            limit = settings.max_video_bytes
        elif path == "/v1/ingest/chunk":
            limit = settings.max_chunk_bytes
        else:
            limit = settings.max_json_bytes
        if length > limit:
            # Read and drop a moderately oversized body so the client sees the 413 rather
            # than a reset connection; beyond that, just close.
            if length <= limit + DRAIN_LIMIT:
                remaining = length
                while remaining > 0:
                    block = self.rfile.read(min(CHUNK, remaining))
                    if not block:
                        break
                    remaining -= len(block)
            self.close_connection = True
            return b"", None, (413, "Payload too large", f"the limit is {limit} bytes")
        if not upload:
            return self.rfile.read(length) if length else b"", None, None
        staging = self.server.settings.home / "staging"
        staging.mkdir(parents=True, exist_ok=True)
        remaining = length
        with tempfile.NamedTemporaryFile(dir=staging, delete=False, prefix="upload-") as fd:
            while remaining > 0:
                block = self.rfile.read(min(CHUNK, remaining))
                if not block:
                    break
                fd.write(block)
                remaining -= len(block)
        staged = Path(fd.name)
        if remaining:
            staged.unlink(missing_ok=True)
            self.close_connection = True
            return b"", None, (400, "Bad request", "the body ended early")
        if length == 0:
            staged.unlink(missing_ok=True)
            return b"", None, None
        return b"", staged, None

    def _event(
        self, url: Any, headers: dict[str, str], body: bytes, principal: Any, staged: Path | None
    ) -> dict[str, Any]:
        query = parse_qs(url.query, keep_blank_values=True)
        try:
            text, is_b64 = body.decode("utf-8"), False
        except UnicodeDecodeError:
            text, is_b64 = base64.b64encode(body).decode(), True
        ctx: dict[str, Any] = {
            "stage": "local",
            "requestId": str(uuid.uuid4()),
            "httpMethod": self.command,
            "path": url.path,
            "resourcePath": url.path,
            "identity": {"sourceIp": self.client_address[0]},
        }
        if principal is not None:
            ctx["authorizer"] = principal.to_context()
        if staged is not None:
            ctx["sightlineStagedUpload"] = str(staged)
        return {
            "resource": url.path,
            "path": url.path,
            "httpMethod": self.command,
            "headers": {**headers, "X-Forwarded-Proto": "http"},
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
            "multiValueQueryStringParameters": query or None,
            "pathParameters": None,
            "stageVariables": None,
            "requestContext": ctx,
            "body": text if body else None,
            "isBase64Encoded": is_b64,
        }

    def _respond(self, response: dict[str, Any]) -> None:
        body = response.get("body") or ""
        data = base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()
        self.send_response(int(response.get("statusCode", 500)))
        sent = set()
        for key, values in (response.get("multiValueHeaders") or {}).items():
            for value in values:
                self.send_header(key, value)
            sent.add(key.lower())
        for key, value in (response.get("headers") or {}).items():
            if key.lower() not in sent:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, tenant_id: str) -> None:
        """Server-sent events: the tenant's bus events as they happen."""
        q: queue.Queue[str] = queue.Queue()
        entry = (tenant_id, q)
        with self.server._streams_lock:
            self.server.streams.append(entry)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.close_connection = True
        try:
            self.wfile.write(b": connected\n\n")
            self.wfile.flush()
            while True:
                try:
                    msg = q.get(timeout=15)
                except queue.Empty:
                    msg = ": keep-alive\n\n"
                self.wfile.write(msg.encode())
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            with self.server._streams_lock:
                self.server.streams.remove(entry)


def serve(port: int, *, rate: float = 50.0, burst: int = 100) -> None:
    from sightline_local.live import ScheduleRunner
    from sightline_local.runtime import resume_unfinished

    server = ApiServer(port, rate=rate, burst=burst)
    # Ingests that a killed process left unfinished continue here (sightline_local.recovery).
    resumed = resume_unfinished()
    if resumed:
        print(f"resumed {len(resumed)} unfinished ingest(s)", flush=True)
    # Cameras: their schedules fire while the server runs (EventBridge Scheduler on AWS).
    runner = ScheduleRunner().start()
    print(
        f"Sightline API on http://127.0.0.1:{server.server_address[1]}  "
        f"(the web page at /, Swagger UI at /swagger, data in {server.settings.home})",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        runner.stop()
        server.server_close()
