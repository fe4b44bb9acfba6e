// Live cameras: state and last event at a glance, add / pause / resume / remove, and one
// camera's events. Kept fresh by the live feed (CameraWindowCommitted, EventDetected)
// and by a slow poll where there is no feed.

import { ago, clock, h, mount, toast, when } from "./util.js";

const POLL_MS = 10000;

function gapsOf(camera) {
  const g = camera.gaps;
  if (Array.isArray(g)) return g.length;
  return Number.isFinite(g) ? g : 0;
}

export function renderCameras(app, main) {
  const abort = new AbortController();
  const signal = abort.signal;
  const note = h("p", { class: "muted", "aria-live": "polite" }, "Loading cameras…");
  const rows = h("tbody");
  const detail = h("section", { class: "panel camera-events", hidden: true });
  let selected = null;
  let timer = 0;

  const name = h("input", { id: "cam-name", name: "name", required: true, maxlength: 100 });
  const source = h("input", {
    id: "cam-source",
    name: "source_url",
    placeholder: "rtsp://… or a file path on the server",
  });
  const kvs = h("input", {
    id: "cam-kvs",
    name: "kvs_stream_arn",
    placeholder: "arn:aws:kinesisvideo:…",
  });
  const clip = h("input", {
    id: "cam-clip",
    name: "clip_seconds",
    type: "number",
    min: 2,
    max: 120,
    step: 1,
    value: "10",
  });
  const paused = h("input", { id: "cam-paused", name: "paused", type: "checkbox" });
  const formStatus = h("p", { class: "small", "aria-live": "polite" });
  const field = (label, control) => h("label", { class: "field" }, h("span", {}, label), control);
  const form = h(
    "form",
    {
      class: "card add-camera",
      onsubmit: async (ev) => {
        ev.preventDefault();
        const body = { name: name.value.trim(), clip_seconds: Number(clip.value) || 10 };
        if (source.value.trim()) body.source_url = source.value.trim();
        if (kvs.value.trim()) body.kvs_stream_arn = kvs.value.trim();
        if (paused.checked) body.state = "paused";
        if (!body.source_url && !body.kvs_stream_arn) {
          formStatus.textContent = "Give a source URL or a Kinesis Video stream.";
          return;
        }
        formStatus.textContent = "Adding…";
        try {
          const cam = await app.api.post("/v1/cameras", body, {
            headers: { "Idempotency-Key": crypto.randomUUID() },
          });
          formStatus.textContent = "";
          form.reset();
          toast(`Camera “${cam.name}” added`);
          await refresh();
        } catch (err) {
          formStatus.textContent = `Not added: ${err.message}`;
        }
      },
    },
    h("h2", {}, "Add a camera"),
    h(
      "div",
      { class: "filter-row" },
      field("Name", name),
      field("Source URL", source),
      field("KVS stream ARN", kvs),
      field("Clip seconds", clip),
    ),
    h("label", { class: "check" }, paused, " Add it paused (nothing is processed until resumed)"),
    h("button", { type: "submit", class: "primary" }, "Add camera"),
    formStatus,
  );

  const table = h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "list cameras" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", { scope: "col" }, "Camera"),
          h("th", { scope: "col" }, "State"),
          h("th", { scope: "col" }, "Last event"),
          h("th", { scope: "col", class: "num" }, "Windows"),
          h("th", { scope: "col", class: "num" }, "Gaps"),
          h("th", { scope: "col" }, "Actions"),
        ),
      ),
      rows,
    ),
  );
  mount(
    main,
    h(
      "section",
      { class: "cameras" },
      h("div", { class: "section-head" }, h("h1", {}, "Cameras")),
      note,
      table,
      detail,
      form,
    ),
  );

  async function act(camera, fn, done) {
    try {
      await fn();
      toast(done);
      await refresh();
    } catch (err) {
      toast(`${camera.name}: ${err.message}`, "error");
    }
  }

  function row(c) {
    const id = encodeURIComponent(c.camera_id);
    const isPaused = c.state === "paused";
    return h(
      "tr",
      {
        dataset: { cameraId: c.camera_id, state: c.state },
        class: selected === c.camera_id ? "selected" : "",
      },
      h(
        "td",
        {},
        h("strong", {}, c.name),
        h("div", { class: "muted small" }, c.source_url || c.kvs_stream_arn || c.camera_id),
        c.last_error ? h("div", { class: "error small" }, c.last_error) : null,
      ),
      h(
        "td",
        {},
        h("span", { class: `pill state-${c.state}`, dataset: { state: c.state } }, c.state),
        c.watermark
          ? h("div", { class: "muted small", title: "processed up to" }, when(c.watermark))
          : null,
      ),
      h("td", { title: c.last_event_at || "" }, ago(c.last_event_at)),
      h("td", { class: "num" }, String(c.windows_done ?? 0)),
      h(
        "td",
        { class: "num", title: "windows with no media (gaps) / that failed to process" },
        c.failed ? `${gapsOf(c)} / ${c.failed} failed` : String(gapsOf(c)),
      ),
      h("td", {}, h("div", { class: "actions" }, actions(c, id, isPaused))),
    );
  }

  function actions(c, id, isPaused) {
    const toggle = () =>
      act(
        c,
        () => app.api.patch(`/v1/cameras/${id}`, { state: isPaused ? "active" : "paused" }),
        `${c.name} ${isPaused ? "resumed" : "paused"}`,
      );
    const remove = () => {
      if (!window.confirm(`Remove camera “${c.name}”? Its stored video stays.`)) return;
      act(c, () => app.api.del(`/v1/cameras/${id}`), `${c.name} removed`);
    };
    return [
      h(
        "button",
        { type: "button", class: "small", onclick: toggle },
        isPaused ? "Resume" : "Pause",
      ),
      h("button", { type: "button", class: "small", onclick: () => showEvents(c) }, "Events"),
      h("button", { type: "button", class: "small danger", onclick: remove }, "Remove"),
    ];
  }

  async function showEvents(c) {
    selected = c.camera_id;
    for (const tr of rows.children)
      tr.classList.toggle("selected", tr.dataset.cameraId === selected);
    detail.hidden = false;
    mount(detail, h("h2", {}, `Events of ${c.name}`), h("p", { class: "muted" }, "Loading…"));
    try {
      const { events } = await app.api.get(
        `/v1/events?camera_id=${encodeURIComponent(c.camera_id)}`,
        { signal },
      );
      events.sort((a, b) => b.start_s - a.start_s);
      mount(
        detail,
        h("h2", {}, `Events of ${c.name} (${events.length})`),
        events.length
          ? h(
              "ul",
              { class: "event-list" },
              events
                .slice(0, 100)
                .map((e) =>
                  h(
                    "li",
                    {},
                    h("span", { class: "chip type" }, e.type),
                    " ",
                    e.video_id
                      ? h(
                          "a",
                          { href: `#/video/${encodeURIComponent(e.video_id)}?t=${e.start_s}` },
                          clock(e.start_s),
                        )
                      : clock(e.start_s),
                    ` ${e.description}`,
                  ),
                ),
            )
          : h("p", { class: "muted" }, "No events from this camera yet."),
      );
    } catch (err) {
      if (err.name !== "AbortError") mount(detail, h("p", { class: "error" }, err.message));
    }
  }

  async function refresh() {
    let cameras;
    try {
      ({ cameras } = await app.api.get("/v1/cameras", { signal }));
    } catch (err) {
      if (err.name === "AbortError") return;
      if (err.status === 404 || err.status === 405) {
        note.textContent = "This server does not offer cameras yet (no /v1/cameras route).";
        note.dataset.unavailable = "true";
        table.hidden = true;
        form.hidden = true;
        return;
      }
      note.textContent = `Cameras failed to load: ${err.message}`;
      return;
    }
    note.textContent = cameras.length
      ? `${cameras.length} camera${cameras.length === 1 ? "" : "s"}`
      : "No cameras yet: add one below.";
    table.hidden = !cameras.length;
    mount(rows, cameras.map(row));
  }

  const onNotice = (ev) => {
    const t = ev.detail.type;
    if (t.startsWith("Camera") || (t === "EventDetected" && ev.detail.detail.camera_id)) refresh();
  };
  app.live?.addEventListener("notice", onNotice);
  refresh();
  timer = setInterval(refresh, POLL_MS);
  return () => {
    abort.abort();
    clearInterval(timer);
    app.live?.removeEventListener("notice", onNotice);
  };
}
