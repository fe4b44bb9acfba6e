"""The web page in a real headless Chromium against ``sightline up`` with a real clip.

A short piece of vtest.avi is cut with ffmpeg and ingested through the API of a real
``sightline up`` process (real codec, detector and embeddings) over a temporary
SIGHTLINE_HOME; Playwright then drives Debian's Chromium (``make system-deps`` installs it;
Playwright's own browser download is never used).

Without Chromium or Playwright the tests skip on a developer's machine and fail under
``CI=true``, where ``make system-deps`` must have installed Chromium.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT

IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
ARTIFACTS = Path(os.environ.get("SIGHTLINE_ARTIFACTS") or REPO_ROOT / "tests/browser/artifacts")
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# The clip the page is tested on: 8 s of the plaza (people crossing, the parked car and
# van), in two chunks of 4 s; the upload is 2 s more of it. Real models process them, so
# they are kept short.
CLIP_START_S, CLIP_SECONDS, CHUNK_SECONDS = 20.0, 8.0, 4.0
UPLOAD_START_S, UPLOAD_SECONDS = 50.0, 2.0


def chromium_executable() -> str | None:
    """Debian's chromium (or one named by SIGHTLINE_CHROMIUM)."""
    for name in (os.environ.get("SIGHTLINE_CHROMIUM"), "chromium", "chromium-browser"):
        if name and (path := shutil.which(name)):
            return path
    return None


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason}; CI must run the browser tests (make system-deps installs it)")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cut(src: Path, dest: Path, start: float, seconds: float) -> Path:
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-nostdin",
            "-y",
            "-ss",
            str(start),
            "-i",
            str(src),
            "-t",
            str(seconds),
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "20",
            "-pix_fmt",
            "yuv420p",
            str(dest),
        ],
        check=True,
        timeout=60,
    )
    return dest


class Http:
    """Plain HTTP to the server under test (loopback only)."""

    def __init__(self, port: int, token: str | None = None) -> None:
        self.port, self.token = port, token

    def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        h = dict(headers or {})
        if self.token:
            h.setdefault("Authorization", f"Bearer {self.token}")
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=data, headers=h)
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def json(self, method: str, path: str, body: Any = None) -> Any:
        status, _, payload = self.call(method, path, body)
        assert 200 <= status < 300, (status, payload[:500])
        return json.loads(payload)


@pytest.fixture(scope="session")
def chromium() -> str:
    path = chromium_executable()
    if path is None:
        _unavailable("Chromium is not installed (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[dev]')")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def site(vtest: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """``sightline up`` on a free loopback port with a short piece of vtest.avi ingested."""
    if shutil.which("ffmpeg") is None:
        _unavailable("ffmpeg is not installed")
    tmp = tmp_path_factory.mktemp("web")
    clip = _cut(vtest, tmp / "plaza.mp4", CLIP_START_S, CLIP_SECONDS)
    upload = _cut(vtest, tmp / "plaza-upload.mp4", UPLOAD_START_S, UPLOAD_SECONDS)
    port = _free_port()
    env = {
        **os.environ,
        "SIGHTLINE_HOME": str(tmp / "home"),
        "SIGHTLINE_SOURCE_ROOTS": json.dumps([str(tmp)]),
        "SIGHTLINE_CHUNK_SECONDS": str(CHUNK_SECONDS),
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
    env.pop("SIGHTLINE_JWKS_URL", None)
    log = (tmp / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "sightline_local.cli", "up", "--port", str(port)],
        cwd=str(tmp),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        http_ = Http(port)
        deadline = time.monotonic() + 60
        while True:
            try:
                if http_.call("GET", "/health")[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sightline up did not start:\n{_tail(tmp / 'server.log')}")
            time.sleep(0.2)
        # The page's "development token" button, used here to sign the test in.
        status, _, body = http_.call(
            "POST", "/local/dev-token", {"role": "editor"}, {"Host": f"127.0.0.1:{port}"}
        )
        assert status == 200, body
        token = json.loads(body)["token"]
        api = Http(port, token)
        video_id = api.json("POST", "/v1/videos", {"source": str(clip)})["video_id"]
        video = _wait_completed(api, video_id, timeout_s=180, log=tmp / "server.log")
        events = api.json("GET", f"/v1/videos/{video_id}/events")["events"]
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        yield {
            "base": f"http://127.0.0.1:{port}",
            "port": port,
            "token": token,
            "api": api,
            "video_id": video_id,
            "video": video,
            "events": events,
            "upload": upload,
            "log": tmp / "server.log",
        }
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        log.close()


def _tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def _wait_completed(api: Http, video_id: str, *, timeout_s: float, log: Path) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        video = api.json("GET", f"/v1/videos/{video_id}")
        if video["status"] == "completed":
            return video
        if video["status"] == "failed" or time.monotonic() > deadline:
            raise RuntimeError(f"ingest ended {video['status']}: {video}\n{_tail(log)}")
        time.sleep(0.5)


@pytest.fixture(scope="session")
def browser(chromium: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=chromium,
            args=["--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required"],
        )
        yield b
        b.close()


class Page:
    """A Playwright page that records console errors, page errors and CSP violations."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        page.on(
            "console",
            lambda m: (
                self.errors.append(f"console {m.type}: {m.text}")
                if m.type == "error" and "status of 4" not in m.text
                else None
            ),
        )

    def until(self, js: str, *, timeout_s: float = 30.0, what: str = "") -> Any:
        """Poll ``js`` (a function expression) until it is truthy.

        Playwright's wait_for_function evaluates strings with eval(), which the page's
        Content-Security-Policy forbids; evaluate() is not subject to it.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            value = self.page.evaluate(js)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what or js}; errors: {self.errors}")
            time.sleep(0.1)

    def shot(self, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def open_page(browser: Any, site: dict[str, Any]) -> Iterator[Callable[..., Page]]:
    """Open the page at ``hash`` (signed in through ``?token=`` unless told otherwise)."""
    contexts: list[Any] = []
    pages: list[Page] = []

    def opener(hash_: str = "#/search", *, viewport: dict[str, int] = DESKTOP, token: bool = True):
        ctx = browser.new_context(viewport=viewport, color_scheme="dark")
        contexts.append(ctx)
        page = Page(ctx.new_page())
        pages.append(page)
        query = f"?token={site['token']}" if token else ""
        page.page.goto(f"{site['base']}/{query}{hash_}")
        page.until("() => document.documentElement.dataset.ready === 'true'", what="page ready")
        return page

    yield opener
    for ctx in contexts:
        ctx.close()
    for page in pages:
        assert not [e for e in page.errors if "Content Security Policy" in e], page.errors
        assert not [e for e in page.errors if e.startswith("page error")], page.errors
