// Search: a query and filters -> POST /v1/search/similar -> a grid of previews.
//
// Each preview is a still of the matching chunk decoded by POST /v1/decode, cropped to the
// region the events were seen in (roi_suggestion) when there is one: the server reads only
// the tiles of that region. The grid is one tab stop; arrow keys move, Enter opens.

import { clock, h, Limiter, mount, parseClock } from "./util.js";
import { forgetVideos, videoInfo } from "./videos.js";

const PAGE = 24;
const SUGGESTIONS = ["a person walking", "a parked car", "a crowd of people", "a van"];
// Decodes run on the codec worker; a few at a time keeps the first previews quick.
const decodes = new Limiter(3);
// Decoded stills by chunk, time and region: going back from a video to the results
// shows them again without decoding them again.
const previews = new Map();
const PREVIEWS_KEPT = 120;

function cachedDecode(api, request, signal) {
  const key = JSON.stringify(request);
  if (!previews.has(key)) {
    const p = decodes.run(() => api.decode(request, { signal }));
    p.catch(() => previews.delete(key));
    previews.set(key, p);
    while (previews.size > PREVIEWS_KEPT) previews.delete(previews.keys().next().value);
  }
  return previews.get(key);
}

/** The region to decode for a hit's preview, in source pixels, or null for the frame. */
export function previewRoi(hit, video) {
  const W = video?.width;
  const H = video?.height;
  if (!hit.roi_suggestion || !W || !H) return null;
  let [x1, y1, x2, y2] = hit.roi_suggestion;
  if (Math.max(x1, y1, x2, y2) <= 1.0001) {
    x1 *= W;
    x2 *= W;
    y1 *= H;
    y2 *= H;
  }
  // Some context around what was seen, and never a sliver: at least a third of the frame.
  const mx = (x2 - x1) * 0.12;
  const my = (y2 - y1) * 0.12;
  x1 -= mx;
  x2 += mx;
  y1 -= my;
  y2 += my;
  const minW = W / 3;
  const minH = H / 3;
  if (x2 - x1 < minW) {
    const c = (x1 + x2) / 2;
    x1 = c - minW / 2;
    x2 = c + minW / 2;
  }
  if (y2 - y1 < minH) {
    const c = (y1 + y2) / 2;
    y1 = c - minH / 2;
    y2 = c + minH / 2;
  }
  const shift = (lo, hi, max) => {
    if (lo < 0) return [0, Math.min(max, hi - lo)];
    if (hi > max) return [Math.max(0, lo - (hi - max)), max];
    return [lo, hi];
  };
  [x1, x2] = shift(x1, x2, W);
  [y1, y2] = shift(y1, y2, H);
  const roi = {
    x: Math.floor(x1),
    y: Math.floor(y1),
    w: Math.floor(Math.min(W, x2) - Math.floor(x1)),
    h: Math.floor(Math.min(H, y2) - Math.floor(y1)),
  };
  if (roi.w < 16 || roi.h < 16 || roi.w * roi.h > 0.9 * W * H) return null;
  return roi;
}

/** The frame a preview shows: the middle of the chunk, where its description is truest. */
function previewTime(hit) {
  return Math.round(((hit.t0 + hit.t1) / 2) * 100) / 100;
}

async function loadOptions(app, selects, chosen) {
  const [videos, cameras, events] = await Promise.allSettled([
    app.api.get("/v1/videos"),
    app.api.get("/v1/cameras"),
    app.api.get("/v1/events"),
  ]);
  if (videos.status === "fulfilled") {
    const list = [...videos.value.videos].sort((a, b) => b.created_at.localeCompare(a.created_at));
    selects.video.append(
      ...list.map((v) => h("option", { value: v.video_id }, `${v.filename} (${v.video_id})`)),
    );
  }
  if (cameras.status === "fulfilled") {
    selects.camera.append(
      ...cameras.value.cameras.map((c) => h("option", { value: c.camera_id }, c.name)),
    );
  } else {
    selects.camera.disabled = true;
    selects.camera.title = "This server has no cameras API";
  }
  if (events.status === "fulfilled") {
    const types = [...new Set(events.value.events.map((e) => e.type))].sort();
    selects.type.append(...types.map((t) => h("option", { value: t }, t)));
  }
  for (const [key, select] of Object.entries(selects)) {
    if (chosen[key]) {
      if (![...select.options].some((o) => o.value === chosen[key])) {
        select.append(h("option", { value: chosen[key] }, chosen[key]));
      }
      select.value = chosen[key];
    }
  }
}

export function renderSearch(app, main, route) {
  const params = route.params;
  const abort = new AbortController();
  const urls = [];
  let observer = null;

  const q = h("input", {
    id: "q",
    type: "search",
    name: "q",
    value: params.get("q") || "",
    placeholder: "Describe what you are looking for…",
    autocomplete: "off",
    "aria-label": "Search query",
    enterkeyhint: "search",
  });
  const selects = {
    video: h("select", { id: "f-video", name: "video" }, h("option", { value: "" }, "All videos")),
    camera: h(
      "select",
      { id: "f-camera", name: "camera" },
      h("option", { value: "" }, "All cameras"),
    ),
    type: h("select", { id: "f-type", name: "type" }, h("option", { value: "" }, "Any event")),
  };
  const from = h("input", {
    id: "f-from",
    title: "from this time into the video (seconds or m:ss)",
    name: "from",
    value: params.get("from") || "",
    placeholder: "0:00",
    inputmode: "decimal",
    size: 6,
  });
  const to = h("input", {
    id: "f-to",
    title: "up to this time into the video (seconds or m:ss)",
    name: "to",
    value: params.get("to") || "",
    placeholder: "end",
    inputmode: "decimal",
    size: 6,
  });
  const mode = h(
    "select",
    { id: "f-mode", name: "mode" },
    h("option", { value: "hybrid" }, "Words + meaning"),
    h("option", { value: "vector" }, "Meaning only"),
  );
  mode.value = params.get("mode") === "vector" ? "vector" : "hybrid";
  const status = h("p", { class: "status muted", id: "search-status", "aria-live": "polite" });
  const results = h("ol", { class: "results", id: "results", "aria-label": "Results" });
  const more = h("button", { type: "button", class: "more", hidden: true }, "More results");

  const field = (label, control) => h("label", { class: "field" }, h("span", {}, label), control);
  const filters = h(
    "details",
    { class: "filters", open: window.matchMedia("(min-width: 760px)").matches },
    h("summary", {}, "Filters"),
    h(
      "div",
      { class: "filter-row" },
      field("Video", selects.video),
      field("Camera", selects.camera),
      field("Event", selects.type),
      field("From", from),
      field("To", to),
      field("Match", mode),
    ),
  );
  const form = h(
    "form",
    { class: "search-form", role: "search", onsubmit: (ev) => (ev.preventDefault(), submit()) },
    h("div", { class: "query" }, q, h("button", { type: "submit", class: "primary" }, "Search")),
    filters,
  );

  const empty = h(
    "div",
    { class: "empty" },
    h("p", {}, "Search what happened in your video, in your own words. Try:"),
    h(
      "p",
      { class: "chips" },
      SUGGESTIONS.map((s) =>
        h(
          "button",
          {
            type: "button",
            class: "chip",
            onclick: () => {
              q.value = s;
              submit();
            },
          },
          s,
        ),
      ),
    ),
    h("p", { class: "muted" }, "Keys: / search · arrows move through results · Enter opens."),
  );

  mount(main, h("section", { class: "search" }, form, status, results, more, empty));

  loadOptions(app, selects, {
    video: params.get("video"),
    camera: params.get("camera"),
    type: params.get("type"),
  }).catch(() => {});

  let offset = 0;
  let lastRequest = null;

  function request() {
    const filtersBody = {};
    if (selects.video.value) filtersBody.video_ids = [selects.video.value];
    if (selects.camera.value) filtersBody.camera_ids = [selects.camera.value];
    if (selects.type.value) filtersBody.event_types = [selects.type.value];
    const tFrom = parseClock(from.value);
    const tTo = parseClock(to.value);
    if (tFrom !== null) filtersBody.t_from = tFrom;
    if (tTo !== null) filtersBody.t_to = tTo;
    return { text: q.value.trim(), filters: filtersBody, k: PAGE, mode: mode.value };
  }

  function remember() {
    const sp = new URLSearchParams();
    if (q.value.trim()) sp.set("q", q.value.trim());
    for (const [key, select] of Object.entries(selects))
      if (select.value) sp.set(key, select.value);
    if (from.value.trim()) sp.set("from", from.value.trim());
    if (to.value.trim()) sp.set("to", to.value.trim());
    if (mode.value !== "hybrid") sp.set("mode", mode.value);
    app.replace(`#/search?${sp.toString()}`);
  }

  async function submit() {
    let body;
    try {
      body = request();
    } catch (err) {
      status.textContent = err.message;
      return;
    }
    if (!body.text) {
      q.focus();
      return;
    }
    remember();
    offset = 0;
    lastRequest = body;
    for (const u of urls.splice(0)) URL.revokeObjectURL(u);
    decodes.clear();
    mount(results);
    empty.hidden = true;
    await page(true);
  }

  async function page(first) {
    const started = performance.now();
    status.textContent = first ? "Searching…" : "Loading more…";
    more.hidden = true;
    let hits;
    try {
      const out = await app.api.post(
        "/v1/search/similar",
        { ...lastRequest, offset },
        { signal: abort.signal },
      );
      hits = out.hits;
    } catch (err) {
      if (err.name === "AbortError") return;
      status.textContent = `Search failed: ${err.message}`;
      return;
    }
    const ms = Math.round(performance.now() - started);
    const shown = offset + hits.length;
    status.textContent = shown
      ? `${shown} result${shown === 1 ? "" : "s"} for “${lastRequest.text}” (${ms} ms)`
      : `Nothing matches “${lastRequest.text}”${Object.keys(lastRequest.filters).length ? " with these filters" : ""}.`;
    const cards = hits.map((hit, i) => card(hit, offset + i));
    results.append(...cards);
    offset += hits.length;
    more.hidden = hits.length < PAGE;
    rove(results, first ? 0 : null);
  }

  more.addEventListener("click", () => page(false));

  function card(hit, rank) {
    const t = hit.start_s ?? hit.t0;
    const img = h("img", { alt: "", decoding: "async", width: 320, height: 240 });
    const name = h("span", { class: "video-name" }, hit.video_id);
    const thumb = h(
      "div",
      { class: "thumb loading" },
      img,
      h(
        "span",
        { class: "badge time" },
        `${clock(hit.t0, { tenths: false })}–${clock(hit.t1, { tenths: false })}`,
      ),
      h("span", { class: "badge score", title: "similarity score" }, hit.score.toFixed(2)),
    );
    const link = h(
      "a",
      {
        class: "hit",
        href: `#/video/${encodeURIComponent(hit.video_id)}?t=${t}`,
        tabindex: "-1",
        dataset: {
          videoId: hit.video_id,
          manifestId: hit.manifest_id,
          t0: String(hit.t0),
          t1: String(hit.t1),
          rank: String(rank),
        },
      },
      thumb,
      h(
        "div",
        { class: "meta" },
        h("div", { class: "meta-top" }, name, h("span", { class: "muted" }, `#${rank + 1}`)),
        h("p", { class: "desc" }, hit.description || "(no description)"),
      ),
    );
    const li = h("li", {}, link);
    videoInfo(app.api, hit.video_id)
      .then((v) => {
        name.textContent = v.filename;
        link.setAttribute(
          "aria-label",
          `${v.filename} from ${clock(hit.t0)} to ${clock(hit.t1)}, score ${hit.score.toFixed(2)}: ${hit.description}`,
        );
        watch(li, () => loadPreview(hit, v, img, thumb));
      })
      .catch(() => thumb.classList.replace("loading", "failed"));
    return li;
  }

  function watch(el, fn) {
    if (!("IntersectionObserver" in window)) {
      fn();
      return;
    }
    observer ||= new IntersectionObserver(
      (entries) => {
        for (const entry of entries) {
          if (!entry.isIntersecting) continue;
          observer.unobserve(entry.target);
          entry.target._load?.();
        }
      },
      { rootMargin: "200px" },
    );
    el._load = fn;
    observer.observe(el);
  }

  async function loadPreview(hit, video, img, thumb) {
    const roi = previewRoi(hit, video);
    const at = previewTime(hit);
    try {
      // One frame (t1 = t0 + 0.1 s): the codec decodes no more of the chunk than that.
      const request = {
        manifest_id: hit.manifest_id,
        t0: at,
        t1: Math.min(hit.t1, at + 0.1),
        format: "png",
        ...(roi ? { roi } : {}),
      };
      const out = await cachedDecode(app.api, request, abort.signal);
      const url = URL.createObjectURL(out.blob);
      urls.push(url);
      img.alt = `${roi ? "Region" : "Frame"} of ${video.filename} at ${clock(at)}`;
      img.src = url;
      img.title = roi
        ? `region ${roi.w}×${roi.h} at (${roi.x}, ${roi.y}), ${out.bytes} bytes`
        : `whole frame, ${out.bytes} bytes`;
      await img.decode().catch(() => {});
      thumb.classList.remove("loading");
    } catch (err) {
      if (err.name === "AbortError") return;
      thumb.classList.replace("loading", "failed");
      thumb.title =
        err.status === 403 ? "Previews need the editor role" : `No preview: ${err.message}`;
    }
  }

  results.addEventListener("keydown", (ev) => {
    const cardsNow = [...results.querySelectorAll("a.hit")];
    const i = cardsNow.indexOf(ev.target);
    if (i < 0) return;
    const columns = getComputedStyle(results).gridTemplateColumns.split(" ").length || 1;
    const moves = {
      ArrowRight: 1,
      ArrowLeft: -1,
      ArrowDown: columns,
      ArrowUp: -columns,
      Home: -i,
      End: cardsNow.length - 1 - i,
    };
    if (!(ev.key in moves)) return;
    ev.preventDefault();
    if (ev.key === "ArrowUp" && i - columns < 0) {
      q.focus();
      return;
    }
    const j = Math.max(0, Math.min(cardsNow.length - 1, i + moves[ev.key]));
    rove(results, j, true);
  });
  q.addEventListener("keydown", (ev) => {
    if (ev.key === "ArrowDown" && results.querySelector("a.hit")) {
      ev.preventDefault();
      rove(results, 0, true);
    }
  });

  if (q.value.trim()) {
    empty.hidden = true;
    lastRequest = null;
    submit();
  } else {
    q.focus();
  }

  return () => {
    abort.abort();
    decodes.clear();
    observer?.disconnect();
    for (const u of urls.splice(0)) URL.revokeObjectURL(u);
    forgetVideos();
  };
}

/** One tab stop for the grid: the current card has tabindex 0, the rest -1. */
function rove(list, index, focus = false) {
  const cards = [...list.querySelectorAll("a.hit")];
  if (!cards.length) return;
  let current = cards.findIndex((c) => c.tabIndex === 0);
  if (index !== null) current = index;
  if (current < 0) current = 0;
  cards.forEach((c, i) => (c.tabIndex = i === current ? 0 : -1));
  if (focus) {
    cards[current].focus();
    cards[current].scrollIntoView({ block: "nearest" });
  }
}
