// The event timeline (one lane per event type) and the activity plot beneath it, on one
// time axis. Clicking an event seeks to its start; clicking anywhere else in a lane or on
// the plot seeks to that moment.

import { clock, h, svg, typeColour } from "./util.js";

const PLOT_W = 1000;
const PLOT_H = 60;

function niceStep(duration) {
  const target = duration / 6;
  const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
  return steps.find((s) => s >= target) || 3600;
}

function fraction(ev, el) {
  const r = el.getBoundingClientRect();
  return Math.max(0, Math.min(1, (ev.clientX - r.left) / r.width));
}

const pct = (x) => `${(x * 100).toFixed(3)}%`;

/**
 * @param {{duration: number, events: object[], anomaly: {t: number, score: number}[] | null,
 *          bucket: number, onSeek: (t: number, event?: object) => void}} opts
 */
export function buildTimeline({ duration, events, anomaly, bucket, onSeek }) {
  const span = Math.max(duration || 0, ...events.map((e) => e.end_s), 0.001);
  const playheads = [];
  const bars = [];
  const lanes = new Map();
  for (const e of [...events].sort((a, b) => a.start_s - b.start_s)) {
    if (!lanes.has(e.type)) lanes.set(e.type, []);
    lanes.get(e.type).push(e);
  }

  const track = (children, label, onclick) => {
    const playhead = h("div", { class: "playhead", "aria-hidden": "true" });
    playheads.push(playhead);
    const el = h("div", { class: "track", role: "presentation" }, children, playhead);
    el.addEventListener("click", (ev) => {
      if (ev.target.closest("button")) return;
      onclick ? onclick(ev, el) : onSeek(fraction(ev, el) * span);
    });
    el.title = `${label}: click to go to that moment`;
    return el;
  };

  const step = niceStep(span);
  const ticks = [];
  for (let t = 0; t <= span + 1e-6; t += step) {
    ticks.push(
      h("span", { class: "tick", style: { left: pct(t / span) } }, clock(t, { tenths: false })),
    );
  }
  const rows = [
    h(
      "div",
      { class: "lane axis", "aria-hidden": "true" },
      h("span", { class: "lane-label" }, ""),
      h("div", { class: "track ticks" }, ticks),
    ),
  ];

  for (const [type, list] of lanes) {
    const colour = typeColour(type);
    const buttons = list.map((e) => {
      const label = `${type} ${clock(e.start_s)}–${clock(e.end_s)}, ${Math.round(e.confidence * 100)}%: ${e.description}`;
      const b = h("button", {
        type: "button",
        class: "event-bar",
        "aria-label": label,
        title: label,
        dataset: { type, start: String(e.start_s), end: String(e.end_s) },
        style: {
          left: pct(e.start_s / span),
          width: `max(6px, ${pct((e.end_s - e.start_s) / span)})`,
          backgroundColor: colour,
        },
        onclick: () => onSeek(e.start_s, e),
      });
      b._event = e;
      bars.push(b);
      return b;
    });
    rows.push(
      h(
        "div",
        { class: "lane", dataset: { type } },
        h(
          "span",
          { class: "lane-label" },
          h("span", { class: "swatch", style: { backgroundColor: colour } }),
          `${type} `,
          h("span", { class: "muted" }, `(${list.length})`),
        ),
        track(buttons, type),
      ),
    );
  }
  if (!lanes.size) {
    rows.push(
      h(
        "div",
        { class: "lane" },
        h("span", { class: "lane-label muted" }, "events"),
        track([h("span", { class: "muted small none" }, "no events detected")], "events"),
      ),
    );
  }

  const plot = activityPlot(anomaly, span, bucket);
  rows.push(
    h(
      "div",
      { class: "lane activity" },
      h(
        "span",
        { class: "lane-label stacked", title: "activity from the codec tokens, no decode" },
        "activity",
        anomaly && anomaly.length ? h("span", { class: "muted small" }, scoreRange(anomaly)) : null,
      ),
      track(plot, "activity"),
    ),
  );

  const el = h("section", { class: "timeline", "aria-label": "Event timeline" }, rows);
  return {
    el,
    setTime(t) {
      const left = pct(Math.max(0, Math.min(1, t / span)));
      for (const p of playheads) p.style.left = left;
      for (const b of bars) {
        const e = b._event;
        b.classList.toggle("now", t >= e.start_s && t <= e.end_s);
      }
    },
    select(event) {
      for (const b of bars) b.classList.toggle("selected", b._event === event);
    },
  };
}

function scoreRange(points) {
  const scores = points.map((p) => p.score);
  return `${Math.min(...scores).toFixed(2)}–${Math.max(...scores).toFixed(2)}`;
}

function activityPlot(points, span, bucket) {
  if (!points) return h("span", { class: "muted small none" }, "activity unavailable");
  if (!points.length) return h("span", { class: "muted small none" }, "no activity data");
  // Scaled to the scores' own range (labelled): the changes are what a reviewer looks for.
  const scores = points.map((p) => p.score);
  const hi = Math.max(...scores);
  const lo = Math.min(...scores);
  const range = Math.max(hi - lo, 1e-6);
  const x = (t) => ((t + bucket / 2) / span) * PLOT_W;
  const y = (s) => PLOT_H - 2 - ((s - lo) / range) * (PLOT_H - 6);
  const line = points.map(
    (p, i) => `${i ? "L" : "M"}${x(p.t).toFixed(1)},${y(p.score).toFixed(1)}`,
  );
  const first = x(points[0].t).toFixed(1);
  const last = x(points[points.length - 1].t).toFixed(1);
  const peak = points.reduce((a, b) => (b.score > a.score ? b : a));
  return svg(
    "svg",
    {
      class: "plot",
      viewBox: `0 0 ${PLOT_W} ${PLOT_H}`,
      preserveAspectRatio: "none",
      role: "img",
      "aria-label": `Activity over time, ${lo.toFixed(2)} to ${hi.toFixed(2)}; peak at ${clock(peak.t)}`,
      "data-points": points.length,
      "data-low": lo,
      "data-high": hi,
    },
    svg("title", {}, `Activity ${lo.toFixed(3)}–${hi.toFixed(3)}, peak at ${clock(peak.t)}`),
    svg("path", {
      class: "area",
      d: `${line.join(" ")} L${last},${PLOT_H} L${first},${PLOT_H} Z`,
    }),
    svg("path", { class: "line", d: line.join(" "), "vector-effect": "non-scaling-stroke" }),
  );
}
