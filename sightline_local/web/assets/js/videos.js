// The caller's videos: a table to open one from, and a small cache of video records
// (filename, size, duration) shared by the search grid and the viewer.

import { clock, h, mount, when } from "./util.js";

let cache = new Map();

/** GET /v1/videos/{id}, once per view. */
export function videoInfo(api, videoId) {
  if (!cache.has(videoId)) {
    const p = api.get(`/v1/videos/${encodeURIComponent(videoId)}`);
    p.catch(() => cache.delete(videoId));
    cache.set(videoId, p);
  }
  return cache.get(videoId);
}

export function forgetVideos() {
  cache = new Map();
}

export function statusBadge(status) {
  return h("span", { class: `pill status-${status}`, dataset: { status } }, status);
}

export function renderVideos(app, main) {
  const abort = new AbortController();
  const body = h("tbody");
  const note = h("p", { class: "muted", "aria-live": "polite" }, "Loading videos…");
  mount(
    main,
    h(
      "section",
      { class: "videos" },
      h(
        "div",
        { class: "section-head" },
        h("h1", {}, "Videos"),
        h("a", { class: "button", href: "#/upload" }, "Upload a video"),
      ),
      note,
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "list" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              h("th", { scope: "col" }, "Video"),
              h("th", { scope: "col" }, "Status"),
              h("th", { scope: "col", class: "num" }, "Length"),
              h("th", { scope: "col", class: "num" }, "Chunks"),
              h("th", { scope: "col", class: "num" }, "Events"),
              h("th", { scope: "col" }, "Added"),
            ),
          ),
          body,
        ),
      ),
    ),
  );
  app.api
    .get("/v1/videos", { signal: abort.signal })
    .then(({ videos }) => {
      videos.sort((a, b) => b.created_at.localeCompare(a.created_at));
      note.textContent = videos.length
        ? `${videos.length} video${videos.length === 1 ? "" : "s"}`
        : "No videos yet: upload one.";
      mount(
        body,
        videos.map((v) =>
          h(
            "tr",
            { dataset: { videoId: v.video_id } },
            h(
              "td",
              {},
              h("a", { href: `#/video/${encodeURIComponent(v.video_id)}` }, v.filename),
              h("div", { class: "muted small" }, v.video_id),
            ),
            h(
              "td",
              {},
              statusBadge(v.status),
              v.failure_reason ? h("div", { class: "error small" }, v.failure_reason) : null,
            ),
            h("td", { class: "num" }, v.duration_s ? clock(v.duration_s) : "–"),
            h("td", { class: "num" }, `${v.chunks_done}/${v.chunks_total}`),
            h("td", { class: "num" }, String(v.events_count)),
            h("td", {}, when(v.created_at)),
          ),
        ),
      );
    })
    .catch((err) => {
      if (err.name !== "AbortError") note.textContent = `Videos failed to load: ${err.message}`;
    });
  return () => abort.abort();
}
