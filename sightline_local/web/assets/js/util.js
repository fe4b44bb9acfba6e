// Small DOM and formatting helpers. Text always goes in through textContent, never HTML,
// so nothing a video description or a camera name holds can run as markup.

/**
 * Create an element: h("a", {href: "#/x", class: "card", onclick: fn}, "text", child).
 * Keys starting with "on" become listeners, "class" the class name, "dataset" data-*,
 * "style" an object of CSSOM properties (allowed under the page's CSP, unlike style="").
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "style") Object.assign(el.style, value);
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key in el && !key.includes("-") && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** SVG elements need their namespace. */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

/** Replace an element's children. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** 75.25 -> "1:15.2"; the tenths matter when a reviewer steps through a scene. */
export function clock(seconds, { tenths = true } = {}) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "–";
  const sign = seconds < 0 ? "-" : "";
  let s = Math.abs(seconds);
  const hours = Math.floor(s / 3600);
  s -= hours * 3600;
  const minutes = Math.floor(s / 60);
  s -= minutes * 60;
  const secs = tenths ? s.toFixed(1).padStart(4, "0") : String(Math.floor(s)).padStart(2, "0");
  const mm = hours ? String(minutes).padStart(2, "0") : String(minutes);
  return `${sign}${hours ? `${hours}:` : ""}${mm}:${secs}`;
}

/** "90", "1:30", "1:02:03" or "" -> seconds or null; throws on anything else. */
export function parseClock(text) {
  const t = String(text || "").trim();
  if (!t) return null;
  if (!/^\d+(?::\d{1,2}){0,2}(?:\.\d+)?$/.test(t)) throw new Error(`"${t}" is not a time`);
  return t.split(":").reduce((acc, part) => acc * 60 + Number(part), 0);
}

export function when(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function ago(iso) {
  if (!iso) return "never";
  const s = (Date.now() - new Date(iso).getTime()) / 1000;
  if (!Number.isFinite(s)) return String(iso);
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return when(iso);
}

export function bytes(n) {
  if (!Number.isFinite(n)) return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i += 1;
  }
  return `${n.toFixed(n < 10 && i ? 1 : 0)} ${units[i]}`;
}

const TOAST_MS = 5000;
let toastTimer = 0;

/** A short message in the polite live region (screen readers hear it too). */
export function toast(message, kind = "info") {
  const el = document.getElementById("toast");
  if (!el) return;
  el.textContent = message;
  el.dataset.kind = kind;
  el.classList.add("show");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el.classList.remove("show"), TOAST_MS);
}

/** Event types keep one colour everywhere (chips, timeline lanes, boxes on the frame). */
const TYPE_COLOURS = {
  person: "#38bdf8",
  vehicle: "#f59e0b",
  crowd: "#a78bfa",
  motion: "#94a3b8",
  anomaly: "#f43f5e",
  loitering: "#fb7185",
  animal: "#34d399",
};
const SPARE = ["#22d3ee", "#e879f9", "#facc15", "#4ade80", "#fb923c", "#60a5fa"];

export function typeColour(type) {
  if (TYPE_COLOURS[type]) return TYPE_COLOURS[type];
  let hash = 0;
  for (const ch of String(type)) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  return SPARE[hash % SPARE.length];
}

/** Run at most `limit` async jobs at once (decodes are the server's heaviest calls). */
export class Limiter {
  constructor(limit) {
    this.limit = limit;
    this.active = 0;
    this.queue = [];
  }

  run(job) {
    return new Promise((resolve, reject) => {
      this.queue.push({ job, resolve, reject });
      this.next();
    });
  }

  next() {
    while (this.active < this.limit && this.queue.length) {
      const { job, resolve, reject } = this.queue.shift();
      this.active += 1;
      Promise.resolve()
        .then(job)
        .then(resolve, reject)
        .finally(() => {
          this.active -= 1;
          this.next();
        });
    }
  }

  clear() {
    for (const { reject } of this.queue.splice(0))
      reject(new DOMException("cancelled", "AbortError"));
  }
}
