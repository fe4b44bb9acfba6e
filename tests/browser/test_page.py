"""The web page in headless Chromium on a real clip: sign-in, search previews, the view
at the right second, the event timeline, a region decode, an upload, phone width.

Screenshots go to tests/browser/artifacts/ (or $SIGHTLINE_ARTIFACTS)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.browser.conftest import CHUNK_SECONDS, CLIP_SECONDS, PHONE, Http, Page

pytestmark = pytest.mark.integration

QUERY = "people walking"
CLIP_POINTS_MIN = 10  # 8 s of activity in 0.5 s buckets: about 16 points
HITS = "() => document.querySelectorAll('a.hit').length"
PREVIEWS_LOADED = """() => {
  const imgs = [...document.querySelectorAll('a.hit img')];
  return imgs.length > 0 && imgs.every((i) => i.complete && i.naturalWidth > 0);
}"""
FRAME = """() => {
  const f = document.querySelector('#frame');
  const v = document.querySelector('#frame video');
  if (!f || f.dataset.state !== 'ready' || !v || v.readyState < 2) return null;
  return {time: Number(f.dataset.time), chunkT0: Number(f.dataset.chunkT0),
          chunkIndex: Number(f.dataset.chunkIndex), current: v.currentTime,
          width: v.videoWidth, hash: location.hash};
}"""


def _search(page: Page, query: str = QUERY) -> list[dict[str, Any]]:
    page.page.fill("#q", query)
    page.page.press("#q", "Enter")
    page.until(HITS, what="search results")
    page.until(PREVIEWS_LOADED, timeout_s=60, what="every preview decoded")
    return page.page.evaluate(
        """() => [...document.querySelectorAll('a.hit')].map((a) => ({
          t0: Number(a.dataset.t0), t1: Number(a.dataset.t1), video: a.dataset.videoId,
          rank: Number(a.dataset.rank), img: a.querySelector('img').naturalWidth}))"""
    )


def test_token_in_the_address_is_kept_for_the_tab_and_removed_from_the_address(
    open_page: Any, site: dict[str, Any]
) -> None:
    # Given the page opened as /?token=JWT (how `sightline token` output is handed over)
    page = open_page("#/search")
    # Then the token is in this tab's sessionStorage and no longer in the address
    state = page.page.evaluate(
        "() => ({search: location.search, stored: sessionStorage.getItem('sightline.token'),"
        " who: document.querySelector('#who').textContent})"
    )
    assert state["search"] == ""
    assert state["stored"] == site["token"]
    assert "local/default" in state["who"]


def test_development_token_button_signs_in(open_page: Any) -> None:
    # Given the page opened without a token
    page = open_page("#/search", token=False)
    page.page.wait_for_selector("#dev-token")
    page.shot("signin-1280")
    # When the development-token button is pressed
    page.page.click("#dev-token")
    # Then the search view appears, signed in as the local tenant
    page.page.wait_for_selector("#q")
    assert "local/default" in page.page.text_content("#who")


def test_search_shows_decoded_previews_and_is_keyboard_navigable(open_page: Any) -> None:
    page = open_page("#/search")
    # When a reviewer searches in their own words
    hits = _search(page)
    page.shot("search-1280")
    # Then every result shows a decoded still of its chunk, with time, score and description
    assert hits and all(h["img"] > 0 for h in hits)
    card = page.page.locator("a.hit").first
    assert card.locator(".badge.time").text_content()
    float(card.locator(".badge.score").text_content() or "x")
    assert len(card.locator(".desc").text_content() or "") > 10
    # And the keyboard moves from the query into the grid and opens a result with Enter
    page.page.focus("#q")
    page.page.keyboard.press("ArrowDown")
    assert page.page.evaluate("() => document.activeElement.dataset.rank") == "0"
    if len(hits) > 1:
        page.page.keyboard.press("ArrowRight")
        assert page.page.evaluate("() => document.activeElement.dataset.rank") == "1"
        page.page.keyboard.press("ArrowLeft")
    page.page.keyboard.press("Enter")
    page.until("() => location.hash.startsWith('#/video/')", what="the video view")


def test_a_result_opens_the_view_at_its_second(open_page: Any, site: dict[str, Any]) -> None:
    page = open_page("#/search")
    hits = _search(page)
    # Given the result that starts latest in the clip (the second chunk: not trivially 0 s)
    target = max(hits, key=lambda h: h["t0"])
    assert target["video"] == site["video_id"]
    # When it is clicked
    page.page.click(f"a.hit[data-rank='{target['rank']}']")
    frame = page.until(FRAME, what="the chunk to load and seek")
    # Then the chunk holding that second plays from it: the view's clock is the hit's
    # start, the <video> is at the matching offset inside that chunk, and a frame is shown
    assert frame["chunkT0"] <= target["t0"] < frame["chunkT0"] + CHUNK_SECONDS + 1e-6
    assert abs(frame["time"] - target["t0"]) < 0.25, frame
    assert abs(frame["current"] - (target["t0"] - frame["chunkT0"])) < 0.25, frame
    assert frame["width"] == site["video"]["width"]
    page.shot("view-1280")


def test_timeline_shows_the_clips_events_and_seeks(open_page: Any, site: dict[str, Any]) -> None:
    events = site["events"]
    assert events, "the plaza clip should have events (people, the parked car and van)"
    # Given the view opened late in the clip (inside its second chunk)
    late = round(CLIP_SECONDS * 0.75, 1)
    page = open_page(f"#/video/{site['video_id']}?t={late}")
    frame = page.until(FRAME, what="the player")
    assert frame["chunkIndex"] == 1 and abs(frame["time"] - late) < 0.25, frame
    # Then the timeline has one lane per event type and one bar per event
    lanes = page.page.evaluate(
        "() => [...document.querySelectorAll('.timeline .lane[data-type]')]"
        ".map((l) => [l.dataset.type, l.querySelectorAll('.event-bar').length])"
    )
    expected: dict[str, int] = {}
    for e in events:
        expected[e["type"]] = expected.get(e["type"], 0) + 1
    assert dict(lanes) == expected
    # And the activity plot from the tokens is drawn under it
    points = page.until(
        "() => Number(document.querySelector('.timeline svg.plot')?.dataset.points || 0)",
        what="the activity plot",
    )
    assert points >= CLIP_POINTS_MIN
    page.shot("timeline-1280")
    # When an event's bar is clicked, the player goes to the event's start (another chunk)
    first = min(events, key=lambda e: e["start_s"])
    index = page.page.evaluate(
        "(s) => [...document.querySelectorAll('.event-bar')]"
        ".findIndex((b) => Math.abs(Number(b.dataset.start) - s) < 1e-6)",
        first["start_s"],
    )
    bar = page.page.locator(".event-bar").nth(index)
    bar.click()
    at = _seeked_to(page, first["start_s"])
    assert at["chunkT0"] <= first["start_s"] and "selected" in (bar.get_attribute("class") or "")
    # And a click on the activity plot three quarters along goes to that moment
    plot = page.page.locator(".lane.activity .track").bounding_box()
    assert plot is not None
    page.page.mouse.click(plot["x"] + plot["width"] * 0.75, plot["y"] + plot["height"] / 2)
    _seeked_to(page, 0.75 * site["video"]["duration_s"], tolerance=0.3)


def _seeked_to(page: Page, t: float, tolerance: float = 0.25) -> dict[str, Any]:
    return page.until(
        f"() => {{ const f = ({FRAME})();"
        f" return f && Math.abs(f.time - {t}) < {tolerance} && f; }}",
        what=f"the player at {t:.2f} s",
    )


def test_a_drawn_region_decodes_only_that_region(open_page: Any, site: dict[str, Any]) -> None:
    page = open_page(f"#/video/{site['video_id']}?t=3")
    page.until(FRAME, what="the player")
    # When the reviewer presses Region and drags a rectangle over the left half of the frame
    page.page.click("#region-mode")
    box = page.page.locator("#frame").bounding_box()
    assert box is not None
    x0, y0 = box["x"] + box["width"] * 0.1, box["y"] + box["height"] * 0.3
    x1, y1 = box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.7
    page.page.mouse.move(x0, y0)
    page.page.mouse.down()
    page.page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=4)
    page.page.mouse.move(x1, y1, steps=4)
    page.page.mouse.up()
    # Then a PNG of just that region arrives: 40 % x 40 % of the 768x576 frame
    size = page.until(
        "() => { const i = document.querySelector('#region-image');"
        " return i && i.complete && i.naturalWidth ? [i.naturalWidth, i.naturalHeight] : null; }",
        what="the decoded region",
    )
    width, height = site["video"]["width"], site["video"]["height"]
    assert abs(size[0] - 0.4 * width) <= 0.03 * width, size
    assert abs(size[1] - 0.4 * height) <= 0.03 * height, size
    page.shot("region-1280")


def test_an_upload_shows_progress_and_completes_live(open_page: Any, site: dict[str, Any]) -> None:
    page = open_page("#/upload")
    page.until("() => document.querySelector('#live-state')?.dataset.live === 'on'", what="SSE")
    # When a file is chosen
    page.page.set_input_files("#upload-file", str(site["upload"]))
    # Then it uploads (progress to 100 %) and its status reaches completed
    page.until(
        "() => document.querySelector('li.upload')?.dataset.status === 'completed'",
        timeout_s=150,
        what="the upload to complete",
    )
    state = page.page.evaluate(
        "() => { const li = document.querySelector('li.upload');"
        " return {bar: li.querySelector('.upload-bar').value, notices: Number(li.dataset.notices"
        " || 0), last: li.dataset.lastNotice, id: li.dataset.videoId}; }"
    )
    assert state["bar"] == 100
    # And the server's event stream told the page (not only its poll)
    assert state["notices"] >= 1, state
    page.shot("upload-1280")
    video = site["api"].json("GET", f"/v1/videos/{state['id']}")
    assert video["status"] == "completed"


def test_phone_width_search_and_view(open_page: Any, site: dict[str, Any]) -> None:
    page = open_page("#/search", viewport=PHONE)
    _search(page)
    # Nothing is wider than the phone's screen
    assert page.page.evaluate("() => document.scrollingElement.scrollWidth") <= PHONE["width"]
    page.shot("search-390")
    page.page.locator("a.hit").first.click()
    page.until(FRAME, what="the player")
    assert page.page.locator(".timeline .lane[data-type]").count() >= 1
    assert page.page.evaluate("() => document.scrollingElement.scrollWidth") <= PHONE["width"]
    page.shot("view-390")


def test_cameras_add_pause_resume_and_remove(open_page: Any, site: dict[str, Any]) -> None:
    page = open_page("#/cameras")
    state = page.until(
        "() => { const n = document.querySelector('.cameras > p');"
        " if (!n || n.textContent.startsWith('Loading')) return null;"
        " return {unavailable: n.dataset.unavailable === 'true', text: n.textContent}; }",
        what="the cameras panel",
    )
    if state["unavailable"]:
        # A server without the cameras API: the panel says so instead of failing
        assert page.page.locator(".add-camera").is_hidden()
        page.shot("cameras-1280")
        pytest.skip(f"this server has no cameras API: {state['text']}")
    page.page.on("dialog", lambda d: d.accept())
    # When a camera is added, paused (so nothing is processed), looping the plaza clip
    page.page.fill("#cam-name", "Plaza north")
    page.page.fill("#cam-source", str(site["upload"]))
    page.page.check("#cam-paused")
    page.page.click(".add-camera button[type=submit]")
    row = "tr[data-camera-id]"
    page.until(
        f"() => document.querySelector('{row}')?.dataset.state === 'paused'", what="new camera"
    )
    assert "Plaza north" in page.page.text_content(row)
    # Then Resume and Pause move its state, as the API reports it
    page.page.click(f"{row} >> text=Resume")
    page.until(f"() => document.querySelector('{row}')?.dataset.state === 'active'", what="on")
    page.page.click(f"{row} >> text=Pause")
    page.until(f"() => document.querySelector('{row}')?.dataset.state === 'paused'", what="off")
    camera_id = page.page.get_attribute(row, "data-camera-id")
    assert site["api"].json("GET", f"/v1/cameras/{camera_id}")["state"] == "paused"
    page.page.click(f"{row} >> text=Events")
    page.page.wait_for_selector(".camera-events h2")
    page.shot("cameras-1280")
    # And Remove takes it off the list
    page.page.click(f"{row} >> text=Remove")
    page.until(f"() => !document.querySelector('{row}')", what="the camera removed")


def test_the_page_headers_and_the_chunk_route(site: dict[str, Any]) -> None:
    api = site["api"]
    # The page is public, with a strict CSP and revalidation
    anonymous = Http(site["port"])
    status, headers, _ = anonymous.call("GET", "/")
    assert status == 200
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert headers["cache-control"] == "no-cache" and headers["etag"]
    status, _, _ = anonymous.call("GET", "/", headers={"If-None-Match": headers["etag"]})
    assert status == 304
    # The chunk list and a chunk's media, whole and by range, for the owner only
    chunks = api.json("GET", f"/v1/videos/{site['video_id']}/chunks")["chunks"]
    assert [c["index"] for c in chunks] == [0, 1]
    status, headers, body = api.call("GET", chunks[1]["media_path"])
    assert status == 200 and headers["content-type"] == "video/mp4" and body[4:8] == b"ftyp"
    status, headers, part = api.call(
        "GET", chunks[1]["media_path"], headers={"Range": "bytes=0-99"}
    )
    assert status == 206 and part == body[:100]
    assert headers["content-range"] == f"bytes 0-99/{len(body)}"
    status, _, _ = api.call(
        "GET", chunks[1]["media_path"], headers={"Range": f"bytes={len(body)}-"}
    )
    assert status == 416
    other = Http(site["port"], _other_tenant_token(site))
    status, _, payload = other.call("GET", chunks[1]["media_path"])
    assert status == 404, payload


def _other_tenant_token(site: dict[str, Any]) -> str:
    from sightline.api.security import DevSigner, Role

    home = site["log"].parent / "home"
    return DevSigner(home / "keys").mint(org="intruder", project="elsewhere", role=Role.ADMIN)


def test_dev_token_is_refused_to_another_host_name(site: dict[str, Any]) -> None:
    api = Http(site["port"])
    # A DNS-rebinding page reaches 127.0.0.1 under its own host name: no token for it
    status, _, body = api.call("POST", "/local/dev-token", {}, headers={"Host": "evil.example"})
    assert status == 403, body
    status, _, body = api.call(
        "POST",
        "/local/dev-token",
        {},
        headers={"Origin": "http://evil.example", "Host": f"127.0.0.1:{site['port']}"},
    )
    assert status == 403, body
    assert json.loads(body)["title"] == "Forbidden"
