// The Sightline API as the page uses it: every call carries the bearer token, every error
// is an RFC 9457 problem turned into an ApiError with the server's own words.

export class ApiError extends Error {
  constructor(status, title, detail, errors) {
    super(detail ? `${title}: ${detail}` : title);
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.errors = errors;
  }
}

// Chunk media arrives in ranges of at most this size (the API caps one answer at 4 MiB).
const RANGE_BYTES = 4 * 1024 * 1024;

export class Api {
  /**
   * @param {string} base  "" for the page's own origin, else the API's URL
   * @param {() => string | null} token
   * @param {(error: ApiError) => void} onUnauthorized
   */
  constructor(base, token, onUnauthorized) {
    this.base = base.replace(/\/$/, "");
    this.token = token;
    this.onUnauthorized = onUnauthorized;
  }

  url(path) {
    return `${this.base}${path}`;
  }

  headers(extra = {}) {
    const token = this.token();
    return { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...extra };
  }

  async raw(method, path, { body, headers = {}, signal } = {}) {
    const init = { method, headers: this.headers(headers), signal, cache: "no-store" };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
    let resp;
    try {
      resp = await fetch(this.url(path), init);
    } catch (err) {
      if (err.name === "AbortError") throw err;
      throw new ApiError(0, "The server cannot be reached", err.message);
    }
    if (!resp.ok) throw await this.problem(resp);
    return resp;
  }

  async problem(resp) {
    let title = resp.statusText || `HTTP ${resp.status}`;
    let detail;
    let errors;
    try {
      const p = await resp.json();
      title = p.title || title;
      detail = p.detail;
      errors = p.errors;
    } catch {
      // not a problem document (a proxy's error page): keep the status line
    }
    const error = new ApiError(resp.status, title, detail, errors);
    if (resp.status === 401 && this.onUnauthorized) this.onUnauthorized(error);
    return error;
  }

  async json(method, path, body, opts = {}) {
    const resp = await this.raw(method, path, { ...opts, body });
    return resp.status === 204 ? null : resp.json();
  }

  get(path, opts) {
    return this.json("GET", path, undefined, opts);
  }

  post(path, body, opts) {
    return this.json("POST", path, body, opts);
  }

  patch(path, body, opts) {
    return this.json("PATCH", path, body, opts);
  }

  del(path, opts) {
    return this.json("DELETE", path, undefined, opts);
  }

  /** POST /v1/decode -> {blob, width, height, frames, bytes}. */
  async decode(request, { signal } = {}) {
    const resp = await this.raw("POST", "/v1/decode", { body: request, signal });
    const blob = await resp.blob();
    return {
      blob,
      width: Number(resp.headers.get("X-Width")) || null,
      height: Number(resp.headers.get("X-Height")) || null,
      frames: Number(resp.headers.get("X-Frames")) || null,
      bytes: blob.size,
    };
  }

  /** A chunk's MP4, range by range, as one Blob (a <video> cannot send the token itself). */
  async media(path, { signal } = {}) {
    const parts = [];
    let start = 0;
    let total = null;
    for (;;) {
      const resp = await this.raw("GET", path, {
        headers: { Range: `bytes=${start}-${start + RANGE_BYTES - 1}` },
        signal,
      });
      const part = await resp.arrayBuffer();
      parts.push(part);
      if (resp.status === 200) break;
      const range = /bytes (\d+)-(\d+)\/(\d+)/.exec(resp.headers.get("Content-Range") || "");
      if (!range) break;
      total = Number(range[3]);
      start = Number(range[2]) + 1;
      if (start >= total || part.byteLength === 0) break;
    }
    return new Blob(parts, { type: "video/mp4" });
  }
}
