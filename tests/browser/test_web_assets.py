"""The page's files and the dev-token button, without a browser or a server."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sightline_local import web_assets as wa


def test_index_and_assets_are_served_with_type_csp_and_revalidation() -> None:
    page = wa.static_answer("/")
    assert page.status == 200 and page.body.startswith(b"<!doctype html>")
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert page.headers["Content-Security-Policy"] == wa.CONTENT_SECURITY_POLICY
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Cache-Control"] == "no-cache"
    # A browser holding the current copy gets a 304 without a body
    again = wa.static_answer("/", page.headers["ETag"])
    assert again.status == 304 and again.body == b""
    script = wa.static_answer("/assets/js/main.js")
    assert script.status == 200 and script.headers["Content-Type"].startswith("text/javascript")
    assert wa.static_answer("/assets/app.css").headers["Content-Type"].startswith("text/css")


@pytest.mark.parametrize(
    "path",
    [
        "/assets/../index.html",
        "/assets/../../web_assets.py",
        "/assets/js/../../../server.py",
        "/assets/%2e%2e/index.html",
        "/assets/",
        "/assets/js",
        "/assets/nothing.js",
        "/assets/js/main.js\x00.png",
    ],
)
def test_nothing_outside_the_assets_folder_is_served(path: str) -> None:
    assert wa.static_answer(path).status == 404


def test_every_shipped_file_has_a_content_type_and_no_inline_script() -> None:
    files = [p for p in wa.WEB_ROOT.rglob("*") if p.is_file() and p.name != ".gitignore"]
    assert files
    for f in files:
        assert f.suffix in wa.CONTENT_TYPES, f
    html = (wa.WEB_ROOT / "index.html").read_text()
    # The CSP allows no inline script or style: the page must not need any
    assert "<script>" not in html and "style=" not in html and "<style" not in html
    assert "http://" not in html and "https://" not in html


def test_csp_forbids_inline_code_and_other_origins() -> None:
    csp = wa.CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe" not in csp and "*" not in csp
    extra = wa.content_security_policy(["https://login.example.com"])
    assert "connect-src 'self' https://login.example.com;" in extra


def _mint(**claims: Any) -> str:
    return json.dumps({k: str(v) for k, v in claims.items()})


def _dev_token(**kw: Any) -> wa.Answer:
    args: dict[str, Any] = {
        "dev_auth": True,
        "client_ip": "127.0.0.1",
        "host": "127.0.0.1:8080",
        "origin": "http://127.0.0.1:8080",
        "fetch_site": "same-origin",
        "body": b'{"role": "viewer"}',
        "mint": _mint,
        "default_tenant": "local/default",
    }
    args.update(kw)
    return wa.dev_token_answer(**args)


def test_the_button_gets_a_token_for_the_local_tenant() -> None:
    answer = _dev_token()
    assert answer.status == 200 and answer.headers["Cache-Control"] == "no-store"
    body = json.loads(answer.body)
    assert body["tenant_id"] == "local/default" and body["role"] == "viewer"
    assert json.loads(body["token"]) == {
        "org": "local",
        "project": "default",
        "role": "viewer",
        "ttl_s": str(wa.DEV_TOKEN_TTL_S),
    }
    assert _dev_token(host="localhost:8080", origin=None, fetch_site=None).status == 200
    assert _dev_token(client_ip="::1", host="[::1]:8080", origin="http://[::1]:8080").status == 200


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"dev_auth": False}, 404),  # tokens come from an identity provider here
        ({"client_ip": "10.0.0.8"}, 403),  # not this machine
        ({"host": "evil.example:8080", "origin": "http://evil.example:8080"}, 403),  # rebinding
        ({"origin": "http://evil.example"}, 403),  # another page
        ({"fetch_site": "cross-site"}, 403),
        ({"body": b'{"role": "root"}'}, 422),
        ({"body": b"[1]"}, 422),
    ],
)
def test_the_button_is_refused_off_this_machine_or_page(
    change: dict[str, Any], status: int
) -> None:
    assert _dev_token(**change).status == status
