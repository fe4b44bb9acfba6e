// Review one video: the chunk that holds the moment plays from that second, the events on
// a timeline, the token activity beneath it, and a rectangle drawn on the frame decodes
// just that region (POST /v1/decode reads only the tiles under it).
//
// A video is stored as chunks (H.264 MP4 of `chunk_seconds` each). The player keeps one
// clock in seconds from the start of the video: it loads the chunk that holds a moment,
// sets the <video>'s own time to the offset inside it, and moves to the next chunk at
// the end of one.

import { buildTimeline } from "./timeline.js";
import { bytes, clock, h, mount, toast, typeColour } from "./util.js";
import { statusBadge } from "./videos.js";

const KEEP_CHUNKS = 4;

class Player extends EventTarget {
  constructor(api, video, chunks, frame) {
    super();
    this.api = api;
    this.video = video;
    this.chunks = chunks;
    this.frame = frame;
    this.current = null;
    this.urls = new Map();
    this.seq = 0;
    this.abort = new AbortController();
    video.addEventListener("timeupdate", () => this.tick());
    video.addEventListener("seeked", () => this.tick());
    video.addEventListener("ended", () => this.next());
    video.addEventListener("play", () => this.emit("state"));
    video.addEventListener("pause", () => this.emit("state"));
  }

  emit(type) {
    this.dispatchEvent(new Event(type));
  }

  get time() {
    return this.current ? this.current.t0 + this.video.currentTime : 0;
  }

  get end() {
    return this.chunks.length ? this.chunks[this.chunks.length - 1].t1 : 0;
  }

  chunkAt(t) {
    return (
      this.chunks.find((c) => t >= c.t0 && t < c.t1) ||
      (t >= this.end ? this.chunks[this.chunks.length - 1] : this.chunks[0])
    );
  }

  tick() {
    this.frame.dataset.time = this.time.toFixed(3);
    this.emit("time");
  }

  url(chunk) {
    if (!this.urls.has(chunk.index)) {
      const p = this.api
        .media(chunk.media_path, { signal: this.abort.signal })
        .then((blob) => URL.createObjectURL(blob));
      p.catch(() => this.urls.delete(chunk.index));
      this.urls.set(chunk.index, p);
      while (this.urls.size > KEEP_CHUNKS) {
        const [oldest, old] = this.urls.entries().next().value;
        if (oldest === this.current?.index) break;
        this.urls.delete(oldest);
        old.then((u) => URL.revokeObjectURL(u)).catch(() => {});
      }
    }
    return this.urls.get(chunk.index);
  }

  /** Go to `t` seconds from the start of the video (loading its chunk when needed). */
  async seek(t, { play = false } = {}) {
    if (!this.chunks.length) return;
    const seq = ++this.seq;
    const chunk = this.chunkAt(t);
    const wasPlaying = !this.video.paused;
    if (this.current?.index !== chunk.index) {
      this.frame.dataset.state = "loading";
      const src = await this.url(chunk);
      if (seq !== this.seq) return;
      this.current = chunk;
      this.frame.dataset.chunkIndex = String(chunk.index);
      this.frame.dataset.chunkT0 = String(chunk.t0);
      this.frame.dataset.manifestId = chunk.manifest_id;
      this.video.src = src;
      await new Promise((resolve, reject) => {
        this.video.addEventListener("loadedmetadata", resolve, { once: true });
        this.video.addEventListener("error", () => reject(new Error("the chunk does not play")), {
          once: true,
        });
      });
      if (seq !== this.seq) return;
      const next = this.chunks[this.chunks.indexOf(chunk) + 1];
      if (next) this.url(next).catch(() => {});
    }
    const inside = Math.max(0, Math.min(t - chunk.t0, (this.video.duration || 0) - 0.04));
    const seeked = new Promise((resolve) =>
      this.video.addEventListener("seeked", resolve, { once: true }),
    );
    this.video.currentTime = inside;
    await seeked;
    if (seq !== this.seq) return;
    this.frame.dataset.state = "ready";
    this.tick();
    if (play || wasPlaying) await this.video.play().catch(() => {});
  }

  async next() {
    const i = this.chunks.indexOf(this.current);
    const next = this.chunks[i + 1];
    if (next) await this.seek(next.t0, { play: true });
    else this.emit("state");
  }

  toggle() {
    if (this.video.paused) {
      if (this.time >= this.end - 0.05) this.seek(0, { play: true });
      else this.video.play().catch(() => {});
    } else this.video.pause();
  }

  destroy() {
    this.seq += 1;
    this.abort.abort();
    this.video.removeAttribute("src");
    this.video.load();
    for (const p of this.urls.values()) p.then((u) => URL.revokeObjectURL(u)).catch(() => {});
    this.urls.clear();
  }
}

/** The ROI overlay: an event's box (dashed) and the rectangle a reviewer draws. */
class Overlay {
  constructor(canvas, frame) {
    this.canvas = canvas;
    this.frame = frame;
    this.box = null; // {x1,y1,x2,y2,colour} normalized
    this.rect = null; // {x,y,w,h} normalized
    this.resize = new ResizeObserver(() => this.draw());
    this.resize.observe(frame);
  }

  draw() {
    const r = this.frame.getBoundingClientRect();
    const ratio = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(r.width * ratio);
    this.canvas.height = Math.round(r.height * ratio);
    const ctx = this.canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, r.width, r.height);
    if (this.box) {
      ctx.setLineDash([6, 4]);
      ctx.lineWidth = 2;
      ctx.strokeStyle = this.box.colour;
      const b = this.box;
      ctx.strokeRect(
        b.x1 * r.width,
        b.y1 * r.height,
        (b.x2 - b.x1) * r.width,
        (b.y2 - b.y1) * r.height,
      );
    }
    if (this.rect) {
      const { x, y, w, h: hh } = this.rect;
      ctx.setLineDash([]);
      ctx.fillStyle = "rgba(245, 158, 11, 0.15)";
      ctx.fillRect(x * r.width, y * r.height, w * r.width, hh * r.height);
      ctx.lineWidth = 2;
      ctx.strokeStyle = "#f59e0b";
      ctx.strokeRect(x * r.width, y * r.height, w * r.width, hh * r.height);
    }
  }

  destroy() {
    this.resize.disconnect();
  }
}

export function renderViewer(app, main, route) {
  const videoId = route.id;
  const abort = new AbortController();
  const signal = abort.signal;
  const startAt = Number(route.params.get("t")) || 0;
  const cleanups = [() => abort.abort()];

  const head = h(
    "div",
    { class: "viewer-head" },
    h("a", { href: "#/videos", class: "back" }, "← Videos"),
    h("h1", {}, videoId),
  );
  const body = h("div", { class: "viewer-body" }, h("p", { class: "muted" }, "Loading…"));
  mount(main, h("section", { class: "viewer", dataset: { videoId } }, head, body));

  const bucketFor = (duration) => Math.max(0.5, Math.round((duration / 240) * 10) / 10);

  (async () => {
    const id = encodeURIComponent(videoId);
    let video;
    let chunks;
    let events;
    try {
      [video, { chunks }, { events }] = await Promise.all([
        app.api.get(`/v1/videos/${id}`, { signal }),
        app.api.get(`/v1/videos/${id}/chunks`, { signal }),
        app.api.get(`/v1/videos/${id}/events`, { signal }),
      ]);
    } catch (err) {
      if (err.name === "AbortError") return;
      mount(body, h("p", { class: "error" }, `This video cannot be shown: ${err.message}`));
      return;
    }
    const duration = video.duration_s || (chunks.length ? chunks[chunks.length - 1].t1 : 0);
    const bucket = bucketFor(duration);
    const anomaly = app.api
      .post("/v1/aggregate/anomaly", { stream_id: videoId, bucket }, { signal })
      .then((r) => r.points)
      .catch(() => null);

    mount(
      head,
      h("a", { href: "#/videos", class: "back" }, "← Videos"),
      h("h1", {}, video.filename),
      statusBadge(video.status),
      h(
        "span",
        { class: "muted" },
        [
          duration ? clock(duration) : null,
          video.width ? `${video.width}×${video.height}` : null,
          `${chunks.length} chunk${chunks.length === 1 ? "" : "s"}`,
          `${events.length} event${events.length === 1 ? "" : "s"}`,
        ]
          .filter(Boolean)
          .join(" · "),
      ),
    );

    const videoEl = h("video", {
      playsinline: true,
      muted: true,
      preload: "auto",
      "aria-label": `${video.filename}`,
    });
    videoEl.muted = true;
    const canvas = h("canvas", { class: "overlay", "aria-hidden": "true" });
    const frame = h(
      "div",
      { class: "frame", id: "frame", dataset: { state: "loading" } },
      videoEl,
      canvas,
    );
    if (video.width && video.height) frame.style.aspectRatio = `${video.width} / ${video.height}`;
    const overlay = new Overlay(canvas, frame);
    cleanups.push(() => overlay.destroy());

    const clockEl = h("span", { class: "clock", id: "clock", "aria-live": "off" }, "0:00.0");
    const playBtn = h("button", { type: "button", class: "primary", id: "play" }, "Play");
    const regionBtn = h(
      "button",
      { type: "button", id: "region-mode", "aria-pressed": "false", title: "Draw a region (R)" },
      "Region",
    );
    const stepBtn = (label, delta, title) =>
      h(
        "button",
        { type: "button", title, onclick: () => player.seek(Math.max(0, player.time + delta)) },
        label,
      );
    const controls = h(
      "div",
      { class: "controls" },
      stepBtn("−1 s", -1, "Back one second (←)"),
      playBtn,
      stepBtn("+1 s", 1, "Forward one second (→)"),
      clockEl,
      regionBtn,
    );

    const regionOut = h(
      "div",
      { class: "region-out", id: "region-out" },
      h(
        "p",
        { class: "muted" },
        "Press Region (or R), then drag a rectangle on the frame: only that region is decoded.",
      ),
    );
    const eventRows = h("tbody");
    const side = h(
      "aside",
      { class: "side" },
      h("section", { class: "panel" }, h("h2", {}, "Region"), regionOut),
      h(
        "section",
        { class: "panel" },
        h("h2", {}, `Events (${events.length})`),
        events.length
          ? h("div", { class: "table-wrap" }, h("table", { class: "list events" }, eventRows))
          : h("p", { class: "muted" }, "No events were detected in this video."),
      ),
    );

    if (!chunks.length) {
      mount(
        body,
        h(
          "p",
          { class: "muted" },
          video.status === "completed"
            ? "This video has no stored chunks to play."
            : `Nothing to play yet: the video is ${video.status}.`,
        ),
      );
      return;
    }

    const player = new Player(app.api, videoEl, chunks, frame);
    cleanups.push(() => player.destroy());

    let selected = null;
    let timeline = null;
    const seekTo = (t, event) => {
      selected = event || null;
      timeline.select(selected);
      overlay.box =
        event && event.bbox
          ? {
              x1: event.bbox[0],
              y1: event.bbox[1],
              x2: event.bbox[2],
              y2: event.bbox[3],
              colour: typeColour(event.type),
            }
          : null;
      overlay.draw();
      player.seek(t).catch((err) => toast(err.message, "error"));
    };

    timeline = buildTimeline({ duration, events, anomaly: null, bucket, onSeek: seekTo });
    const timelineSlot = h("div", { class: "timeline-slot" }, timeline.el);
    anomaly.then((points) => {
      if (signal.aborted) return;
      timeline = buildTimeline({ duration, events, anomaly: points, bucket, onSeek: seekTo });
      timeline.select(selected);
      mount(timelineSlot, timeline.el);
      timeline.setTime(player.time);
    });

    for (const e of events) {
      eventRows.append(
        h(
          "tr",
          { dataset: { type: e.type } },
          h(
            "td",
            {},
            h("span", { class: "chip type", style: { borderColor: typeColour(e.type) } }, e.type),
          ),
          h(
            "td",
            { class: "num" },
            h(
              "button",
              {
                type: "button",
                class: "link",
                title: "Go to this event",
                onclick: () => seekTo(e.start_s, e),
              },
              `${clock(e.start_s)}–${clock(e.end_s)}`,
            ),
          ),
          h("td", { class: "num" }, `${Math.round(e.confidence * 100)}%`),
          h("td", {}, e.description),
        ),
      );
    }

    mount(body, h("div", { class: "stage" }, frame, controls, timelineSlot), side);

    let lastHash = 0;
    player.addEventListener("time", () => {
      const t = player.time;
      clockEl.textContent = `${clock(t)} / ${clock(duration)}`;
      timeline.setTime(t);
      const now = performance.now();
      if (videoEl.paused || now - lastHash > 2000) {
        lastHash = now;
        app.replace(`#/video/${encodeURIComponent(videoId)}?t=${t.toFixed(1)}`);
      }
    });
    player.addEventListener("state", () => {
      playBtn.textContent = videoEl.paused ? "Play" : "Pause";
    });
    playBtn.addEventListener("click", () => player.toggle());

    // ----- region: drag on the frame, decode only that rectangle ---------------------------
    let regionMode = false;
    let drag = null;
    const setRegionMode = (on) => {
      regionMode = on;
      frame.classList.toggle("drawing", on);
      regionBtn.setAttribute("aria-pressed", String(on));
      if (on) videoEl.pause();
    };
    regionBtn.addEventListener("click", () => setRegionMode(!regionMode));
    const point = (ev) => {
      const r = frame.getBoundingClientRect();
      return {
        x: Math.max(0, Math.min(1, (ev.clientX - r.left) / r.width)),
        y: Math.max(0, Math.min(1, (ev.clientY - r.top) / r.height)),
      };
    };
    canvas.addEventListener("pointerdown", (ev) => {
      if (!regionMode) return;
      ev.preventDefault();
      canvas.setPointerCapture(ev.pointerId);
      drag = point(ev);
      overlay.rect = { x: drag.x, y: drag.y, w: 0, h: 0 };
      overlay.draw();
    });
    canvas.addEventListener("pointermove", (ev) => {
      if (!drag) return;
      const p = point(ev);
      overlay.rect = {
        x: Math.min(drag.x, p.x),
        y: Math.min(drag.y, p.y),
        w: Math.abs(p.x - drag.x),
        h: Math.abs(p.y - drag.y),
      };
      overlay.draw();
    });
    canvas.addEventListener("pointerup", () => {
      if (!drag) return;
      drag = null;
      const r = overlay.rect;
      if (!r || r.w < 0.01 || r.h < 0.01) {
        overlay.rect = null;
        overlay.draw();
        return;
      }
      decodeRegion(r);
    });
    frame.addEventListener("click", () => {
      if (!regionMode) player.toggle();
    });

    let regionUrl = null;
    cleanups.push(() => regionUrl && URL.revokeObjectURL(regionUrl));
    async function decodeRegion(r) {
      const W = video.width || videoEl.videoWidth;
      const H = video.height || videoEl.videoHeight;
      const chunk = player.current;
      const roi = {
        x: Math.floor(r.x * W),
        y: Math.floor(r.y * H),
        w: Math.max(8, Math.floor(r.w * W)),
        h: Math.max(8, Math.floor(r.h * H)),
      };
      roi.w = Math.min(roi.w, W - roi.x);
      roi.h = Math.min(roi.h, H - roi.y);
      const at =
        Math.round(Math.min(Math.max(player.time, chunk.t0), chunk.t1 - 0.05) * 1000) / 1000;
      mount(regionOut, h("p", { class: "muted" }, `Decoding ${roi.w}×${roi.h} at ${clock(at)}…`));
      const started = performance.now();
      try {
        const out = await app.api.decode(
          {
            manifest_id: chunk.manifest_id,
            roi,
            t0: at,
            t1: Math.min(chunk.t1, at + 0.1),
            format: "png",
          },
          { signal },
        );
        const ms = Math.round(performance.now() - started);
        if (regionUrl) URL.revokeObjectURL(regionUrl);
        regionUrl = URL.createObjectURL(out.blob);
        const img = h("img", {
          src: regionUrl,
          id: "region-image",
          alt: `Decoded region ${roi.w}×${roi.h} at (${roi.x}, ${roi.y}), ${clock(at)}`,
        });
        mount(
          regionOut,
          img,
          h(
            "p",
            { class: "muted small" },
            `${roi.w}×${roi.h} px at (${roi.x}, ${roi.y}) · ${clock(at)} · ${bytes(out.bytes)} PNG · ${ms} ms`,
          ),
        );
      } catch (err) {
        if (err.name === "AbortError") return;
        mount(regionOut, h("p", { class: "error" }, `The region did not decode: ${err.message}`));
      }
    }

    // ----- keys: space/K play, ←/→ one second, , . a tenth, R region, Esc leave region ------
    const onKey = (ev) => {
      if (ev.target.closest("input, textarea, select, [contenteditable]")) return;
      if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
      const onButton = ev.target.closest("button, a");
      const key = ev.key;
      if ((key === " " && !onButton) || key === "k") player.toggle();
      else if (key === "ArrowLeft") player.seek(Math.max(0, player.time - 1));
      else if (key === "ArrowRight") player.seek(player.time + 1);
      else if (key === ",") player.seek(Math.max(0, player.time - 0.1));
      else if (key === ".") player.seek(player.time + 0.1);
      else if (key === "r" || key === "R") setRegionMode(!regionMode);
      else if (key === "Escape" && regionMode) setRegionMode(false);
      else return;
      ev.preventDefault();
    };
    document.addEventListener("keydown", onKey);
    cleanups.push(() => document.removeEventListener("keydown", onKey));

    const first = events.find((e) => e.start_s <= startAt && startAt <= e.end_s && e.bbox);
    seekTo(Math.min(startAt, duration), startAt ? first : undefined);
  })();

  return () => {
    for (const fn of cleanups.splice(0).reverse()) fn();
  };
}
