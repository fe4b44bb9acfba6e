// Upload a video and watch it move to completed.
//
// POST /v1/videos {filename} registers it and answers where to PUT the bytes: the API's own
// upload route locally, a presigned S3 URL on AWS (which must not get our token). The PUT
// goes through XMLHttpRequest because fetch() reports no upload progress. Then the status
// comes live from the server's event stream (VideoProcessed / VideoFailed), with a poll of
// GET /v1/videos/{id} for chunk progress and for deployments without a stream.

import { bytes, h, mount, toast } from "./util.js";
import { statusBadge } from "./videos.js";

const TERMINAL = new Set(["completed", "failed"]);
const POLL_LIVE_MS = 4000;
const POLL_MS = 1500;
const uploads = [];

class Upload {
  constructor(app, file) {
    this.app = app;
    this.file = file;
    this.videoId = null;
    this.status = "registering";
    this.notices = 0;
    this.timer = 0;
    this.onNotice = (ev) => this.notice(ev.detail);
    this.bar = h("progress", {
      max: 100,
      value: 0,
      class: "upload-bar",
      "aria-label": `Upload of ${file.name}`,
    });
    this.chunksBar = h("progress", { max: 1, value: 0, class: "chunks-bar", hidden: true });
    this.pill = h("span", { class: "pill", dataset: { status: "registering" } }, "registering");
    this.message = h("span", { class: "muted small" }, bytes(file.size));
    this.link = h("span");
    this.el = h(
      "li",
      { class: "upload", dataset: { status: "registering" } },
      h("div", { class: "upload-head" }, h("strong", {}, file.name), this.pill, this.link),
      this.bar,
      this.chunksBar,
      this.message,
    );
  }

  setStatus(status, message) {
    this.status = status;
    this.el.dataset.status = status;
    this.pill.replaceWith((this.pill = statusBadge(status)));
    if (message !== undefined) this.message.textContent = message;
  }

  async start() {
    const { api } = this.app;
    let created;
    try {
      created = await api.post(
        "/v1/videos",
        { filename: this.file.name },
        { headers: { "Idempotency-Key": crypto.randomUUID() } },
      );
    } catch (err) {
      this.setStatus("failed", `Not registered: ${err.message}`);
      return;
    }
    this.videoId = created.video_id;
    this.el.dataset.videoId = created.video_id;
    this.setStatus("uploading", `0 of ${bytes(this.file.size)}`);
    this.app.live?.addEventListener("notice", this.onNotice);
    try {
      const video = await this.put(created.upload_url);
      if (video && video.status) this.show(video);
    } catch (err) {
      this.setStatus("failed", `Upload failed: ${err.message}`);
      this.stop();
      return;
    }
    this.bar.value = 100;
    if (!TERMINAL.has(this.status)) this.setStatus("queued", "Uploaded; waiting for processing…");
    this.poll();
  }

  put(uploadUrl) {
    const { api } = this.app;
    const target = new URL(uploadUrl, window.location.href);
    // The API's own upload route takes the token; a presigned URL carries its own signature.
    const own = /\/v1\/videos\/([^/]+)\/upload$/.exec(target.pathname);
    const url = own && !target.search ? api.url(`/v1/videos/${own[1]}/upload`) : target.toString();
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("PUT", url);
      if (own && !target.search) {
        for (const [k, v] of Object.entries(api.headers())) xhr.setRequestHeader(k, v);
        xhr.setRequestHeader("Content-Type", "application/octet-stream");
      }
      xhr.upload.addEventListener("progress", (ev) => {
        if (!ev.lengthComputable) return;
        this.bar.value = Math.round((ev.loaded / ev.total) * 100);
        this.message.textContent = `${bytes(ev.loaded)} of ${bytes(ev.total)}`;
      });
      xhr.addEventListener("load", () => {
        if (xhr.status >= 200 && xhr.status < 300) {
          let body = null;
          try {
            body = xhr.responseText ? JSON.parse(xhr.responseText) : null;
          } catch {
            body = null; // S3 answers an empty body
          }
          resolve(body);
          return;
        }
        let detail = `HTTP ${xhr.status}`;
        try {
          const p = JSON.parse(xhr.responseText);
          detail = p.detail || p.title || detail;
        } catch {
          // keep the status
        }
        reject(new Error(detail));
      });
      xhr.addEventListener("error", () => reject(new Error("the connection failed")));
      xhr.send(this.file);
    });
  }

  notice({ type, detail }) {
    if (!detail || detail.video_id !== this.videoId) return;
    this.notices += 1;
    this.el.dataset.notices = String(this.notices);
    this.el.dataset.lastNotice = type;
    this.refresh();
  }

  async refresh() {
    if (!this.videoId) return;
    try {
      this.show(await this.app.api.get(`/v1/videos/${encodeURIComponent(this.videoId)}`));
    } catch (err) {
      this.message.textContent = `Status unavailable: ${err.message}`;
    }
  }

  show(v) {
    if (v.chunks_total) {
      this.chunksBar.hidden = false;
      this.chunksBar.max = v.chunks_total;
      this.chunksBar.value = v.chunks_done;
      this.chunksBar.setAttribute("aria-label", `${v.chunks_done} of ${v.chunks_total} chunks`);
    }
    let message = `${v.chunks_done}/${v.chunks_total || "?"} chunks`;
    if (v.status === "completed") message = `${v.chunks_done} chunks, ${v.events_count} events`;
    if (v.status === "failed") message = v.failure_reason || "processing failed";
    this.setStatus(v.status, message);
    if (v.status === "completed") {
      mount(this.link, h("a", { href: `#/video/${encodeURIComponent(v.video_id)}` }, "Open"));
      toast(`${this.file.name} is ready`);
    }
    if (TERMINAL.has(v.status)) this.stop();
  }

  poll() {
    clearTimeout(this.timer);
    if (TERMINAL.has(this.status)) return;
    const wait = this.app.live?.connected ? POLL_LIVE_MS : POLL_MS;
    this.timer = setTimeout(async () => {
      await this.refresh();
      this.poll();
    }, wait);
  }

  stop() {
    clearTimeout(this.timer);
    this.app.live?.removeEventListener("notice", this.onNotice);
  }
}

export function renderUpload(app, main) {
  const input = h("input", {
    type: "file",
    id: "upload-file",
    accept: "video/*,.avi,.mkv,.mov,.mp4,.webm",
    multiple: true,
  });
  const list = h("ul", { class: "uploads", id: "uploads", "aria-live": "polite" });
  const liveNote = h("p", { class: "muted small", id: "live-state" });
  const showLive = () => {
    const on = Boolean(app.live?.connected);
    liveNote.dataset.live = on ? "on" : "off";
    liveNote.textContent = on
      ? "Status updates arrive live from the server."
      : "Status updates by polling (no live stream here).";
  };
  app.live?.addEventListener("status", showLive);
  showLive();

  const add = (files) => {
    for (const file of files) {
      const u = new Upload(app, file);
      uploads.unshift(u);
      list.prepend(u.el);
      u.start();
    }
  };
  input.addEventListener("change", () => {
    add([...input.files]);
    input.value = "";
  });
  const drop = h(
    "label",
    { class: "drop", for: "upload-file" },
    h("strong", {}, "Choose video files"),
    h("span", { class: "muted" }, " or drop them here"),
    input,
  );
  drop.addEventListener("dragover", (ev) => {
    ev.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    drop.classList.remove("over");
    add([...ev.dataTransfer.files]);
  });
  list.append(...uploads.map((u) => u.el));
  mount(
    main,
    h(
      "section",
      { class: "upload-view" },
      h("div", { class: "section-head" }, h("h1", {}, "Upload")),
      drop,
      liveNote,
      list,
    ),
  );
  return () => app.live?.removeEventListener("status", showLive);
}
