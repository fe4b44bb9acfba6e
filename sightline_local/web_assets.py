"""The web page's static files, served by ``sightline up`` before authentication.

The page itself is public (it holds no data); every API call it makes carries the user's
token. Locally it is served from ``sightline_local/web/``; on AWS the CDK deploys the same
folder to S3 behind CloudFront (``cdk/stacks/web.py``) with the same headers.

Also here: ``POST /local/dev-token``, the "development token" button. It mints a token with
the local signing key only while the server verifies tokens with that key (no JWKS URL
configured), only for a caller on loopback addressing the server by a loopback name (a DNS
rebinding page cannot ask for one) and only from the page's own origin.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import SplitResult, urlsplit

WEB_ROOT = Path(__file__).resolve().parent / "web"
DEV_TOKEN_PATH = "/local/dev-token"
CONFIG_PATH = "/config.json"
ASSETS_PREFIX = "/assets/"
MAX_DEV_TOKEN_BODY = 4096
DEV_TOKEN_TTL_S = 8 * 3600

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".webmanifest": "application/manifest+json",
}


def content_security_policy(connect_src: Sequence[str] = ()) -> str:
    """The page's policy: no inline script or style, nothing loaded from another origin.

    Previews, decoded regions and chunk media are fetched with the token and shown from
    blob: URLs. ``connect_src`` adds origins the page may call besides its own (on AWS:
    the identity provider's token endpoint, the data bucket for presigned uploads); the
    CDK builds the deployed header from this same function.
    """
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' blob:",
            "media-src 'self' blob:",
            " ".join(["connect-src 'self'", *connect_src]),
            "font-src 'self'",
            "manifest-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


CONTENT_SECURITY_POLICY = content_security_policy()
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
# Files keep their names between releases (no build step to hash them), so a browser
# revalidates every time; the ETag makes that a 304 without a body.
CACHE_CONTROL = "no-cache"


@dataclass
class Answer:
    """One HTTP answer: status, headers and body."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class _Request(Protocol):
    command: str
    headers: Any
    client_address: Any
    rfile: Any
    wfile: Any
    close_connection: bool

    def send_response(self, code: int, message: str | None = None) -> None: ...
    def send_header(self, keyword: str, value: str) -> None: ...
    def end_headers(self) -> None: ...


def is_web_path(path: str) -> bool:
    """The paths this module answers (everything else goes to the API)."""
    return path in ("/", "/index.html", CONFIG_PATH, DEV_TOKEN_PATH) or path.startswith(
        ASSETS_PREFIX
    )


def local_config(*, dev_auth: bool) -> dict[str, Any]:
    """What the page reads from ``/config.json`` when served by ``sightline up``."""
    return {
        "environment": "local",
        "apiBase": "",
        "stream": True,
        "auth": {"mode": "local", "devToken": dev_auth},
    }


def static_answer(path: str, if_none_match: str | None = None) -> Answer:
    """A file of the web folder (``/`` is ``index.html``), with its headers."""
    rel = "index.html" if path in ("/", "/index.html") else path[len(ASSETS_PREFIX) :]
    base = WEB_ROOT if rel == "index.html" else WEB_ROOT / "assets"
    file = _safe_file(base, rel)
    if file is None:
        return _not_found()
    data = file.read_bytes()
    etag = f'"{hashlib.sha256(data).hexdigest()[:32]}"'
    headers = {
        **SECURITY_HEADERS,
        "Content-Type": CONTENT_TYPES[file.suffix.lower()],
        "Cache-Control": CACHE_CONTROL,
        "ETag": etag,
    }
    if if_none_match and etag in [t.strip() for t in if_none_match.split(",")]:
        return Answer(304, headers)
    return Answer(200, headers, data)


def json_answer(status: int, obj: Any, *, cache: str = "no-store") -> Answer:
    body = json.dumps(obj).encode()
    return Answer(
        status,
        {**SECURITY_HEADERS, "Content-Type": "application/json", "Cache-Control": cache},
        body,
    )


def _problem(status: int, title: str, detail: str) -> Answer:
    body = json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail})
    return Answer(
        status,
        {
            **SECURITY_HEADERS,
            "Content-Type": "application/problem+json",
            "Cache-Control": "no-store",
        },
        body.encode(),
    )


def _not_found() -> Answer:
    return _problem(404, "Not found", "no such file")


def _safe_file(base: Path, rel: str) -> Path | None:
    """``base/rel`` when it is a servable file inside ``base``; never a way out of it."""
    if not rel or "\\" in rel or "\x00" in rel:
        return None
    try:
        file = (base / rel).resolve()
    except (OSError, ValueError):
        return None
    if not file.is_relative_to(base.resolve()) or not file.is_file():
        return None
    if file.suffix.lower() not in CONTENT_TYPES or file.name.startswith("."):
        return None
    return file


def _loopback_host(host: str) -> bool:
    """True when the Host header names this machine by a loopback name or address."""
    name = urlsplit(f"//{host}").hostname or ""
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def dev_token_answer(
    *,
    dev_auth: bool,
    client_ip: str,
    host: str,
    origin: str | None,
    fetch_site: str | None,
    body: bytes,
    mint: Any,
    default_tenant: str,
) -> Answer:
    """Mint a local development token for the page's button, or say why not."""
    if not dev_auth:
        return _problem(
            404, "Not found", "development tokens exist only with local (dev-key) authentication"
        )
    try:
        loopback_peer = ipaddress.ip_address(client_ip).is_loopback
    except ValueError:
        loopback_peer = False
    if not loopback_peer or not _loopback_host(host):
        return _problem(403, "Forbidden", "development tokens are for this machine only")
    if origin is not None and origin != f"http://{host}":
        return _problem(403, "Forbidden", "development tokens are for this page only")
    if fetch_site not in (None, "same-origin", "none"):
        return _problem(403, "Forbidden", "development tokens are for this page only")
    from sightline.api.security import Role

    try:
        asked = json.loads(body or b"{}")
        if not isinstance(asked, dict):
            raise ValueError("not an object")
        role = Role(asked.get("role", Role.EDITOR.value))
    except ValueError:
        return _problem(422, "Unprocessable request", 'send {"role": "viewer|editor|admin"}')
    org, _, project = default_tenant.partition("/")
    token = mint(org=org, project=project, role=role, ttl_s=DEV_TOKEN_TTL_S)
    return json_answer(
        200,
        {
            "token": token,
            "tenant_id": default_tenant,
            "role": role.value,
            "expires_in": DEV_TOKEN_TTL_S,
        },
    )


def handle(req: _Request, url: SplitResult, settings: Any) -> bool:
    """Answer ``req`` when it is for the page (True), else leave it to the API (False)."""
    path = url.path
    if not is_web_path(path):
        return False
    dev_auth = not settings.jwks_url
    if path == DEV_TOKEN_PATH:
        if req.command != "POST":
            _send(req, _problem(405, "Method not allowed", "POST only"), allow="POST")
            return True
        length = int(req.headers.get("Content-Length") or 0)
        if length > MAX_DEV_TOKEN_BODY:
            req.close_connection = True
            _send(req, _problem(413, "Payload too large", "a small JSON object at most"))
            return True
        body = req.rfile.read(length) if length else b""
        from sightline.api.security import DevSigner

        answer = dev_token_answer(
            dev_auth=dev_auth,
            client_ip=str(req.client_address[0]),
            host=req.headers.get("Host", ""),
            origin=req.headers.get("Origin"),
            fetch_site=req.headers.get("Sec-Fetch-Site"),
            body=body,
            mint=DevSigner(settings.key_dir).mint if dev_auth else None,
            default_tenant=settings.default_tenant,
        )
        _send(req, answer)
        return True
    if req.command not in ("GET", "HEAD"):
        req.close_connection = True
        _send(req, _problem(405, "Method not allowed", "GET only"), allow="GET, HEAD")
        return True
    if path == CONFIG_PATH:
        answer = json_answer(200, local_config(dev_auth=dev_auth), cache="no-cache")
    else:
        answer = static_answer(path, req.headers.get("If-None-Match"))
    _send(req, answer, head=req.command == "HEAD")
    return True


def _send(req: _Request, answer: Answer, *, head: bool = False, allow: str | None = None) -> None:
    req.send_response(answer.status)
    for key, value in answer.headers.items():
        req.send_header(key, value)
    if allow:
        req.send_header("Allow", allow)
    req.send_header("Content-Length", str(len(answer.body)))
    req.end_headers()
    if not head and answer.body:
        req.wfile.write(answer.body)
