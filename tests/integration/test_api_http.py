"""The API over real HTTP on loopback against the local server (``sightline up``), with
the heavy models faked: auth, roles, tenancy, validation, limits and the upload flow."""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from sightline import factory, handlers
from sightline.api.security import DevSigner, Role
from sightline.config import get_settings
from tests.support.fakes import FakeCodec, FakeDescriber, HashEmbedder
from tests.support.media import synth_video

OPENAPI = (
    Path(__file__).resolve().parents[2]
    / "layers"
    / "core"
    / "python"
    / "sightline"
    / "api"
    / "openapi.json"
)


class Client:
    def __init__(self, port: int, token: str | None = None) -> None:
        self.port, self.token = port, token

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict | None = None,
        raw: bytes | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        h = dict(headers or {})
        if self.token and "Authorization" not in h:
            h["Authorization"] = f"Bearer {self.token}"
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=data, headers=h)
        resp = conn.getresponse()
        payload = resp.read()
        conn.close()
        ctype = resp.getheader("Content-Type", "")
        parsed = json.loads(payload) if "json" in ctype and payload else payload
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, parsed


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    import os

    from tests.conftest import use_home

    tmp = tmp_path_factory.mktemp("api")
    old = os.environ.get("SIGHTLINE_HOME")
    os.environ["SIGHTLINE_SOURCE_ROOTS"] = json.dumps([str(tmp)])
    os.environ["SIGHTLINE_MAX_VIDEO_BYTES"] = str(2_000_000)
    os.environ["SIGHTLINE_WEBHOOK_ALLOW_LOOPBACK"] = "true"
    use_home(tmp / "home")
    mp = pytest.MonkeyPatch()
    codec = FakeCodec(factory.blobs())
    mp.setattr(factory, "codec", lambda: codec)
    mp.setattr(factory, "describer", lambda: FakeDescriber())
    embedder = HashEmbedder()
    mp.setattr(factory, "embedder", lambda: embedder)
    handlers.pipeline.cache_clear()
    from sightline.api import context as api_context_module
    from sightline.services import auth as auth_module

    api_context_module.api_context.cache_clear()
    auth_module.authenticator.cache_clear()
    from sightline_local.server import ApiServer

    srv = ApiServer(0, rate=1000, burst=1000)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    signer = DevSigner(get_settings().key_dir)
    yield {"port": srv.server_address[1], "signer": signer, "tmp": tmp, "server": srv}
    srv.shutdown()
    srv.server_close()
    mp.undo()
    for var in (
        "SIGHTLINE_SOURCE_ROOTS",
        "SIGHTLINE_MAX_VIDEO_BYTES",
        "SIGHTLINE_WEBHOOK_ALLOW_LOOPBACK",
    ):
        os.environ.pop(var, None)
    if old is None:
        os.environ.pop("SIGHTLINE_HOME", None)
    else:
        os.environ["SIGHTLINE_HOME"] = old
    from sightline.config import reset_settings

    reset_settings()
    api_context_module.api_context.cache_clear()
    auth_module.authenticator.cache_clear()


def client(
    server: dict[str, Any],
    org: str = "acme",
    project: str = "plaza",
    role: Role = Role.EDITOR,
    **kw: Any,
) -> Client:
    return Client(server["port"], server["signer"].mint(org=org, project=project, role=role, **kw))


class Receiver:
    """A webhook receiver on loopback that fails its first delivery (to prove retries)."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, HTTPServer

        received: list[tuple[dict[str, str], bytes]] = []
        failures = {"left": 1}

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if failures["left"]:
                    failures["left"] -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                received.append((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

        self.received = received
        self.httpd = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"


@pytest.fixture(scope="module")
def receiver(server: dict[str, Any]) -> Iterator[dict[str, Any]]:
    rec = Receiver()
    admin = client(server, role=Role.ADMIN)
    status, _, hook = admin.call(
        "POST", "/v1/webhooks", {"url": rec.url, "events": ["VideoProcessed"]}
    )
    assert status == 201 and hook["secret"].startswith("whsec_")
    yield {"receiver": rec, "hook": hook}
    rec.httpd.shutdown()


@pytest.fixture(scope="module")
def uploaded(server: dict[str, Any], receiver: dict[str, Any]) -> dict[str, Any]:
    """One video uploaded and processed by acme/plaza, through the public upload flow."""
    c = client(server)
    status, _, created = c.call("POST", "/v1/videos", {"filename": "lobby.mp4"})
    assert status == 201, created
    video = synth_video(server["tmp"] / "lobby.mp4", seconds=3.0)
    url = created["upload_url"]
    path = url.split(str(server["port"]), 1)[1]
    status, _, body = c.call(
        "PUT", path, raw=video.read_bytes(), headers={"Content-Type": "video/mp4"}
    )
    assert status == 202, body
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        _, _, v = c.call("GET", f"/v1/videos/{created['video_id']}")
        if v["status"] in ("completed", "failed"):
            break
        time.sleep(0.2)
    assert v["status"] == "completed", v
    return {"video_id": created["video_id"], "client": c}


def snapshot() -> tuple[Any, ...]:
    """Everything a rejected request must leave unchanged."""
    from sightline.services.repository import Repository

    repo = Repository(factory.tables())
    videos = sorted(
        (v.video_id, v.status.value, v.updated_at.isoformat())
        for t in ("acme/plaza", "other/corp", "rival/corp")
        for v in repo.list_videos(t)
    )
    blobs = factory.blobs().list_keys("")
    return videos, tuple(b for b in blobs if not b.startswith("codec/")), factory.index().count()


def test_public_routes_and_openapi_matches_the_committed_document(server: dict) -> None:
    c = Client(server["port"])
    assert c.call("GET", "/health")[2] == {"status": "ok"}
    status, _, live = c.call("GET", "/v1/openapi.json")
    assert status == 200
    committed = json.loads(OPENAPI.read_text())
    assert live == committed, "openapi.json is stale: run `make openapi`"
    status, _, page = c.call("GET", "/swagger")
    # Swagger UI's assets are inlined: nothing is loaded from a CDN
    assert status == 200 and b"SwaggerUIBundle" in page
    assert b'src="http' not in page and b'href="http' not in page


def test_upload_flow_search_and_events(uploaded: dict[str, Any]) -> None:
    c, vid = uploaded["client"], uploaded["video_id"]
    status, _, listed = c.call("GET", "/v1/videos")
    assert status == 200 and vid in [v["video_id"] for v in listed["videos"]]
    status, _, evs = c.call("GET", f"/v1/videos/{vid}/events")
    assert status == 200 and evs["events"][0]["type"] == "person"
    status, _, evs = c.call("GET", "/v1/events?type=person&from=0&to=100")
    assert status == 200 and len(evs["events"]) == 1
    status, _, res = c.call("POST", "/v1/search/similar", {"text": "people walking", "k": 5})
    assert status == 200 and res["hits"][0]["video_id"] == vid
    hit = res["hits"][0]
    assert {"manifest_id", "score", "t0", "t1", "start_s", "end_s", "description"} <= set(hit)
    status, _, res = c.call(
        "POST", "/v1/search/similar", {"manifest_id": hit["manifest_id"], "include_self": True}
    )
    assert status == 200 and res["hits"][0]["manifest_id"] == hit["manifest_id"]


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "expired",
        "wrong_issuer",
        "tampered",
        "wrong_audience",
        "not_yet_valid",
        "garbage",
        "basic",
    ],
)
def test_bad_credentials_answer_401(server: dict[str, Any], case: str) -> None:
    signer: DevSigner = server["signer"]
    token = signer.mint(org="acme", project="plaza", role=Role.ADMIN)
    headers: dict[str, str] = {}
    if case == "expired":
        token = signer.mint(org="acme", project="plaza", role=Role.ADMIN, ttl_s=-120)
    elif case in ("wrong_issuer", "wrong_audience", "not_yet_valid"):
        claims = jwt.decode(token, options={"verify_signature": False})
        if case == "wrong_issuer":
            claims["iss"] = "https://evil.example"
        elif case == "wrong_audience":
            claims["aud"] = "someone-else"
        else:
            claims["nbf"] = int(time.time()) + 3600
        token = jwt.encode(claims, signer._key, algorithm="RS256", headers={"kid": signer.kid})
    elif case == "tampered":
        head, body, sig = token.split(".")
        claims = json.loads(jwt.utils.base64url_decode(body))
        claims["org_id"] = "other"
        token = ".".join(
            [head, jwt.utils.base64url_encode(json.dumps(claims).encode()).decode(), sig]
        )
    elif case == "garbage":
        token = "not.a.jwt"
    if case == "basic":
        headers["Authorization"] = "Basic YWRtaW46YWRtaW4="
    elif case != "missing":
        headers["Authorization"] = f"Bearer {token}"
    before = snapshot()
    status, _, body = Client(server["port"]).call(
        "POST", "/v1/videos", {"filename": "x.mp4"}, headers=headers
    )
    assert status == 401 and body["status"] == 401
    assert snapshot() == before


def test_roles_are_enforced(server: dict[str, Any]) -> None:
    viewer = client(server, role=Role.VIEWER)
    before = snapshot()
    assert viewer.call("POST", "/v1/videos", {"filename": "x.mp4"})[0] == 403
    assert viewer.call("GET", "/v1/videos")[0] == 200
    editor = client(server, role=Role.EDITOR)
    assert editor.call("POST", "/v1/keys", {"name": "ci"})[0] == 403
    assert snapshot() == before


def test_api_keys_create_use_revoke(server: dict[str, Any]) -> None:
    admin = client(server, role=Role.ADMIN)
    status, _, created = admin.call("POST", "/v1/keys", {"name": "ingest-bot", "role": "viewer"})
    assert status == 201 and created["api_key"].startswith("slk_")
    keyed = Client(server["port"])
    ok = keyed.call("GET", "/v1/videos", headers={"X-Api-Key": created["api_key"]})
    assert ok[0] == 200
    _, _, listed = admin.call("GET", "/v1/keys")
    assert all("hash" not in k and "api_key" not in k for k in listed["keys"])
    assert admin.call("DELETE", f"/v1/keys/{created['key_id']}")[0] == 200
    denied = keyed.call("GET", "/v1/videos", headers={"X-Api-Key": created["api_key"]})
    assert denied[0] == 401
    wrong = keyed.call("GET", "/v1/videos", headers={"X-Api-Key": created["api_key"] + "x"})
    assert wrong[0] == 401


def test_webhook_is_signed_and_retried(uploaded: dict[str, Any], receiver: dict) -> None:
    from sightline.services.webhooks import verify

    deadline = time.monotonic() + 20
    rec = receiver["receiver"]
    while not rec.received and time.monotonic() < deadline:
        time.sleep(0.1)
    assert rec.received, "the VideoProcessed webhook never arrived (first try got a 503)"
    headers, body = rec.received[0]
    assert verify(receiver["hook"]["secret"], body, headers["Sightline-Signature"])
    assert not verify("whsec_wrong", body, headers["Sightline-Signature"])
    payload = json.loads(body)
    assert payload["type"] == "VideoProcessed"
    assert payload["data"]["video_id"] == uploaded["video_id"]


def test_webhook_urls_are_checked(server: dict[str, Any]) -> None:
    admin = client(server, role=Role.ADMIN)
    for url in ("ftp://example.com/x", "https://10.0.0.1/x", "not a url"):
        status, _, _ = admin.call("POST", "/v1/webhooks", {"url": url, "events": ["EventDetected"]})
        assert status in (400, 422), url
    assert client(server).call("GET", "/v1/webhooks")[0] == 403


def test_idempotency_key_replays_the_first_answer(server: dict[str, Any]) -> None:
    c = client(server)
    key = {"Idempotency-Key": "create-lobby-1"}
    first = c.call("POST", "/v1/videos", {"filename": "lobby2.mp4"}, headers=key)
    again = c.call("POST", "/v1/videos", {"filename": "lobby2.mp4"}, headers=key)
    assert first[0] == again[0] == 201
    assert first[2]["video_id"] == again[2]["video_id"]
    other = c.call("POST", "/v1/videos", {"filename": "other.mp4"}, headers=key)
    assert other[0] == 422 and other[2]["title"] == "Idempotency-Key reused"
    # another tenant's identical key is another request
    mine = client(server, org="other", project="corp").call(
        "POST", "/v1/videos", {"filename": "lobby2.mp4"}, headers=key
    )
    assert mine[0] == 201 and mine[2]["video_id"] != first[2]["video_id"]
    assert (
        c.call("POST", "/v1/videos", {"filename": "a.mp4"}, headers={"Idempotency-Key": "k" * 200})[
            0
        ]
        == 400
    )


def test_search_modes_and_pages(uploaded: dict[str, Any]) -> None:
    c = uploaded["client"]
    for mode in ("vector", "hybrid"):
        status, _, res = c.call(
            "POST", "/v1/search/similar", {"text": "people walking", "k": 5, "mode": mode}
        )
        assert status == 200 and res["hits"][0]["video_id"] == uploaded["video_id"]
        assert all(0 <= h["score"] <= 1.0001 for h in res["hits"])
    status, _, page2 = c.call(
        "POST", "/v1/search/similar", {"text": "people walking", "k": 5, "offset": 5}
    )
    assert status == 200 and page2["hits"] == []  # one chunk in this tenant
    assert c.call("POST", "/v1/search/similar", {"text": "x", "mode": "fuzzy"})[0] == 422


def test_decode_and_token_analytics(uploaded: dict[str, Any]) -> None:
    c, vid = uploaded["client"], uploaded["video_id"]
    _, _, res = c.call("POST", "/v1/search/similar", {"text": "people", "k": 1})
    manifest = res["hits"][0]["manifest_id"]
    status, headers, png = c.call(
        "POST", "/v1/decode", {"manifest_id": manifest, "roi": {"x": 0, "y": 0, "w": 80, "h": 60}}
    )
    assert status == 200 and headers["content-type"] == "image/png"
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert (headers["x-width"], headers["x-height"]) == ("80", "60")  # half of 160x120
    before = snapshot()
    bad_roi = c.call(
        "POST",
        "/v1/decode",
        {"manifest_id": manifest, "roi": {"x": 100, "y": 0, "w": 100, "h": 10}},
    )
    assert bad_roi[0] == 422
    late = c.call("POST", "/v1/decode", {"manifest_id": manifest, "t0": 50.0, "t1": 51.0})
    assert late[0] == 422
    status, _, curve = c.call("GET", f"/v1/stats/rd_curve?stream_id={vid}")
    assert status == 200 and curve["samples"][0]["psnr"] == 31.5
    status, _, anomaly = c.call("POST", "/v1/aggregate/anomaly", {"stream_id": vid, "bucket": 1})
    assert (
        status == 200 and anomaly["points"] and all(0 <= p["score"] <= 1 for p in anomaly["points"])
    )
    assert snapshot() == before


def test_ingest_chunk_encodes_and_answers_the_manifest(server: dict[str, Any]) -> None:
    c = client(server)
    chunk = synth_video(server["tmp"] / "chunk.mp4", seconds=2.0).read_bytes()
    path = "/v1/ingest/chunk?stream_id=dock-cam-1&t0=120&t1=122"
    status, _, out = c.call("POST", path, raw=chunk, headers={"Content-Type": "video/mp4"})
    assert status == 201, out
    assert out["manifest_id"] == "dock-cam-1-c120000" and out["ratio"] > 1
    assert out["codebook_id"] == "cb-test"
    again = c.call("POST", path, raw=chunk, headers={"Content-Type": "video/mp4"})
    assert again[0] == 201 and again[2]["manifest_id"] == out["manifest_id"]
    _, _, curve = c.call("GET", "/v1/stats/rd_curve?stream_id=dock-cam-1")
    assert [s["manifest_id"] for s in curve["samples"]] == [out["manifest_id"]]
    before = snapshot()
    assert c.call("POST", path, raw=chunk, headers={"Content-Type": "text/plain"})[0] == 415
    assert (
        c.call(
            "POST",
            "/v1/ingest/chunk?stream_id=dock-cam-1&t0=5&t1=4",
            raw=chunk,
            headers={"Content-Type": "video/mp4"},
        )[0]
        == 422
    )
    assert (
        c.call(
            "POST",
            "/v1/ingest/chunk?stream_id=../x&t0=0&t1=1",
            raw=chunk,
            headers={"Content-Type": "video/mp4"},
        )[0]
        == 422
    )
    viewer = client(server, role=Role.VIEWER)
    assert viewer.call("POST", path, raw=chunk, headers={"Content-Type": "video/mp4"})[0] == 403
    assert snapshot() == before


def test_server_sent_events_stream_the_tenants_events(server: dict[str, Any]) -> None:
    import socket

    token = server["signer"].mint(org="acme", project="plaza", role=Role.VIEWER)
    sock = socket.create_connection(("127.0.0.1", server["port"]), timeout=10)
    sock.sendall(
        f"GET /v1/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
    )
    head = sock.recv(4096)
    assert b"200" in head.split(b"\r\n")[0] and b"text/event-stream" in head
    # An event of this tenant reaches the stream; another tenant's does not.
    factory.bus().publish("EventDetected", {"tenant_id": "rival/corp", "type": "secret"})
    factory.bus().publish("EventDetected", {"tenant_id": "acme/plaza", "type": "person"})
    data = b""
    deadline = time.monotonic() + 5
    while b"person" not in data and time.monotonic() < deadline:
        data += sock.recv(4096)
    sock.close()
    assert b"event: EventDetected" in data and b"person" in data and b"secret" not in data


def test_another_tenants_ids_answer_404_everywhere(
    server: dict[str, Any], uploaded: dict[str, Any]
) -> None:
    vid = uploaded["video_id"]
    _, _, res = uploaded["client"].call("POST", "/v1/search/similar", {"text": "people"})
    manifest = res["hits"][0]["manifest_id"]
    other = client(server, org="rival", project="corp", role=Role.ADMIN)
    before = snapshot()
    assert other.call("GET", f"/v1/videos/{vid}")[0] == 404
    assert other.call("GET", f"/v1/videos/{vid}/events")[0] == 404
    assert other.call("PUT", f"/v1/videos/{vid}/upload", raw=b"xx")[0] == 404
    assert other.call("POST", "/v1/search/similar", {"manifest_id": manifest})[0] == 404
    assert other.call("GET", "/v1/videos")[2] == {"videos": []}
    assert other.call("GET", f"/v1/events?video_id={vid}")[2] == {"events": []}
    # crafted filters cannot reach another tenant's documents either
    res = other.call(
        "POST", "/v1/search/similar", {"text": "people walking", "filters": {"video_ids": [vid]}}
    )
    assert res[0] == 200 and res[2] == {"hits": []}
    assert other.call("DELETE", "/v1/keys/0123456789abcdef")[0] == 404
    assert other.call("POST", "/v1/decode", {"manifest_id": manifest})[0] == 404
    assert other.call("GET", f"/v1/stats/rd_curve?stream_id={vid}")[0] == 404
    assert other.call("POST", "/v1/aggregate/anomaly", {"stream_id": vid})[0] == 404
    assert other.call("DELETE", "/v1/webhooks/0123456789abcdef")[0] == 404
    assert snapshot() == before


def test_limits_and_validation(server: dict[str, Any], uploaded: dict[str, Any]) -> None:
    c = client(server)
    before = snapshot()
    big = {"filename": "x" * 10, "pad": "y" * (300 * 1024)}
    assert c.call("POST", "/v1/videos", big)[0] == 413
    status, _, body = c.call(
        "POST",
        "/v1/videos",
        raw=b"filename=a.mp4",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 415 and body["title"] == "Unsupported media type"
    status, _, body = c.call("POST", "/v1/videos", {"filename": "a.mp4", "source": "/x"})
    assert status == 422 and body["errors"]
    assert (
        c.call(
            "POST", "/v1/videos", raw=b"{not json", headers={"Content-Type": "application/json"}
        )[0]
        == 422
    )
    assert c.call("POST", "/v1/search/similar", {"text": "a", "k": 100000})[0] == 422
    assert c.call("GET", "/v1/videos/..%2F..%2Fetc")[0] in (404, 422)
    assert c.call("POST", "/v1/videos", {"source": "/etc/passwd"})[0] == 404
    # an upload over the size limit is refused before it is stored
    status, _, created = c.call("POST", "/v1/videos", {"filename": "big.mp4"})
    assert status == 201
    mid = snapshot()
    path = f"/v1/videos/{created['video_id']}/upload"
    assert c.call("PUT", path, raw=b"\0" * 2_000_001)[0] == 413
    # uploading twice to a finished video is refused
    assert c.call("PUT", f"/v1/videos/{uploaded['video_id']}/upload", raw=b"x")[0] == 422
    assert snapshot() == mid
    assert before[2] == mid[2]


def test_bounded_fuzz_never_500s_or_changes_data(server: dict[str, Any]) -> None:
    rng = random.Random(1234)
    c = client(server)
    before = snapshot()
    paths = [
        "/v1/videos",
        "/v1/search/similar",
        "/v1/events",
        "/v1/keys",
        "/v1/videos/abcd",
        "/v1/videos/abcd/events",
        "/v1/nope",
    ]
    junk = [
        b"",
        b"{",
        b"[]",
        b"null",
        b'{"k": -1}',
        b'{"text": ""}',
        b'{"text": 5}',
        b'{"filename": null}',
        "\u00e9\u0000".encode(),
        bytes(rng.randrange(256) for _ in range(64)),
    ]
    for _ in range(150):
        method = rng.choice(["GET", "POST", "PUT", "DELETE", "PATCH"])
        path = rng.choice(paths) + rng.choice(
            ["", "?k=x", "?from=abc", "?type=" + "z" * 40, "?%zz", "?video_id=../x"]
        )
        headers = {
            "Content-Type": rng.choice(
                ["application/json", "text/plain", "", "application/json; charset=utf-8"]
            ),
            "X-Junk": rng.choice(["", "\t", "a" * 200]),
        }
        status, _, _ = c.call(method, path, raw=rng.choice(junk), headers=headers)
        assert status < 500, (method, path)
    assert snapshot() == before
