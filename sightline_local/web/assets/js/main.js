// The page: configuration, sign-in, a hash router and the views.
//
// Routes (the hash keeps the server stateless and makes every view a link):
//   #/search?q=..&video=..&camera=..&type=..&from=..&to=..   search and results
//   #/video/<video_id>?t=<seconds>                             review one video
//   #/videos  #/cameras  #/upload

import { Api } from "./api.js";
import {
  claims,
  currentToken,
  devToken,
  expired,
  setToken,
  signOut,
  startOidc,
  takeTokenFromUrl,
} from "./auth.js";
import { renderCameras } from "./cameras.js";
import { LiveFeed } from "./live.js";
import { renderSearch } from "./search.js";
import { renderUpload } from "./upload.js";
import { h, mount, toast } from "./util.js";
import { renderVideos } from "./videos.js";
import { renderViewer } from "./viewer.js";

const VIEWS = {
  search: renderSearch,
  video: renderViewer,
  videos: renderVideos,
  cameras: renderCameras,
  upload: renderUpload,
};

const app = {
  config: null,
  api: null,
  live: null,
  cleanup: null,
  main: null,
  /** Parsed route: {view, id, params}. */
  route() {
    const raw = window.location.hash.replace(/^#\/?/, "");
    const [path, query = ""] = raw.split("?");
    const [view, ...rest] = path.split("/");
    return {
      view: VIEWS[view] ? view : "search",
      id: rest.length ? decodeURIComponent(rest.join("/")) : null,
      params: new URLSearchParams(query),
    };
  },
  /** Change the hash without adding a history entry (search as you type, seeking). */
  replace(hash) {
    history.replaceState(history.state, "", hash);
  },
};

async function loadConfig() {
  const resp = await fetch("/config.json", { cache: "no-store" });
  if (!resp.ok) throw new Error(`config.json: ${resp.status}`);
  const config = await resp.json();
  config.auth = config.auth || { mode: "token" };
  return config;
}

function renderWho() {
  const el = document.getElementById("who");
  const c = claims();
  if (!c || expired()) {
    mount(el);
    return;
  }
  const tenant = c.org_id && c.project_id ? `${c.org_id}/${c.project_id}` : "";
  const role = Array.isArray(c.roles) ? c.roles.join(", ") : c.roles || "";
  const until = c.exp ? new Date(c.exp * 1000).toLocaleTimeString([], { timeStyle: "short" }) : "";
  mount(
    el,
    h(
      "span",
      { class: "who-text", title: `${c.sub || ""} · token valid until ${until}` },
      h("strong", {}, tenant || c.sub || "signed in"),
      role ? h("span", { class: "muted" }, ` · ${role}`) : null,
    ),
    h(
      "button",
      {
        type: "button",
        class: "ghost small",
        onclick: () => {
          signOut(app.config);
          app.live?.stop();
          renderWho();
          route();
        },
      },
      "Sign out",
    ),
  );
}

function renderSignIn(message) {
  app.cleanup?.();
  app.cleanup = null;
  const { auth } = app.config;
  const status = h("p", { class: "error", role: "alert" }, message || "");
  const options = [];
  if (auth.mode === "oidc") {
    options.push(
      h(
        "button",
        { type: "button", class: "primary", onclick: () => startOidc(auth) },
        `Sign in${auth.providerName ? ` with ${auth.providerName}` : ""}`,
      ),
    );
  }
  if (auth.mode === "local" && auth.devToken) {
    options.push(
      h(
        "button",
        {
          type: "button",
          class: "primary",
          id: "dev-token",
          onclick: async (ev) => {
            ev.currentTarget.disabled = true;
            try {
              const got = await devToken("editor");
              toast(`Signed in to ${got.tenant_id} as ${got.role} (development token)`);
              started();
            } catch (err) {
              status.textContent = `No development token: ${err.message}`;
              ev.currentTarget.disabled = false;
            }
          },
        },
        "Use a development token",
      ),
    );
  }
  const pasted = h("textarea", {
    id: "paste-token",
    rows: 3,
    placeholder: "eyJhbGciOiJSUzI1NiIs…",
    spellcheck: "false",
    autocomplete: "off",
  });
  const pasteForm = h(
    "form",
    {
      class: "paste",
      onsubmit: (ev) => {
        ev.preventDefault();
        const token = pasted.value.trim();
        if (!claims(token)) {
          status.textContent = "That is not a JWT.";
          return;
        }
        if (expired(token)) {
          status.textContent = "That token has expired.";
          return;
        }
        setToken(token);
        started();
      },
    },
    h("label", { for: "paste-token" }, "Or paste a token"),
    pasted,
    h("button", { type: "submit" }, "Use this token"),
  );
  const hint =
    auth.mode === "local"
      ? h(
          "p",
          { class: "muted" },
          "Mint one on this machine with ",
          h("code", {}, "sightline token --org ORG --project PROJECT"),
          ", or open this page as ",
          h("code", {}, "/?token=…"),
          ".",
        )
      : null;
  mount(
    app.main,
    h(
      "section",
      { class: "signin card" },
      h("h1", {}, "Sign in to Sightline"),
      h("p", {}, "Search and review your video: descriptions, events and regions."),
      ...options,
      auth.mode !== "oidc" || auth.allowPaste ? pasteForm : null,
      hint,
      status,
    ),
  );
  renderWho();
}

function highlightNav(view) {
  for (const a of document.querySelectorAll("[data-nav]")) {
    const active = a.dataset.nav === view || (view === "video" && a.dataset.nav === "videos");
    if (active) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

function route() {
  if (!currentToken() || expired()) {
    renderSignIn(currentToken() ? "Your session has expired; sign in again." : "");
    return;
  }
  const r = app.route();
  highlightNav(r.view);
  app.cleanup?.();
  app.cleanup = null;
  mount(app.main);
  try {
    app.cleanup = VIEWS[r.view](app, app.main, r) || null;
  } catch (err) {
    mount(app.main, h("p", { class: "error" }, `This view failed: ${err.message}`));
  }
}

function started() {
  renderWho();
  app.live?.stop();
  app.live = new LiveFeed(app.api, { enabled: app.config.stream !== false });
  app.live.start();
  route();
}

function onUnauthorized(error) {
  setToken(null);
  app.live?.stop();
  renderSignIn(`Signed out: ${error.detail || error.title}. Sign in again.`);
}

async function boot() {
  app.main = document.getElementById("main");
  try {
    app.config = await loadConfig();
  } catch (err) {
    mount(app.main, h("p", { class: "error" }, `The page cannot start: ${err.message}`));
    return;
  }
  document.documentElement.dataset.environment = app.config.environment || "";
  app.api = new Api(app.config.apiBase || "", currentToken, onUnauthorized);
  try {
    await takeTokenFromUrl(app.config);
  } catch (err) {
    renderSignIn(err.message);
    return;
  }
  window.addEventListener("hashchange", () => route());
  document.addEventListener("keydown", (ev) => {
    // "/" jumps to the search box from anywhere but a text field.
    const typing = ev.target.closest?.("input, textarea, select, [contenteditable]");
    if (ev.key === "/" && !typing && !ev.ctrlKey && !ev.metaKey && !ev.altKey) {
      ev.preventDefault();
      if (app.route().view !== "search") window.location.hash = "#/search";
      setTimeout(() => document.getElementById("q")?.focus(), 0);
    }
  });
  if (currentToken() && !expired()) started();
  else route();
  document.documentElement.dataset.ready = "true";
}

boot();
