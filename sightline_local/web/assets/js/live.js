// Live notices from the server: the tenant's bus events (VideoProcessed, VideoFailed,
// EventDetected, ...) as server-sent events from GET /v1/stream.
//
// EventSource cannot send an Authorization header, so the stream is read with fetch() and
// parsed here; the token never goes into a URL. Where there is no stream (API Gateway
// cannot hold one open) callers fall back to polling: `connected` says which applies.

const RETRY_MS = [1000, 2000, 5000, 10000];

export class LiveFeed extends EventTarget {
  constructor(api, { enabled = true } = {}) {
    super();
    this.api = api;
    this.enabled = enabled;
    this.connected = false;
    this.controller = null;
    this.failures = 0;
    this.received = 0;
  }

  start() {
    if (!this.enabled || this.controller) return;
    this.controller = new AbortController();
    this.loop(this.controller.signal);
  }

  stop() {
    this.controller?.abort();
    this.controller = null;
    this.setConnected(false);
  }

  setConnected(value) {
    if (this.connected === value) return;
    this.connected = value;
    this.dispatchEvent(new CustomEvent("status", { detail: { connected: value } }));
  }

  async loop(signal) {
    while (!signal.aborted) {
      try {
        const resp = await fetch(this.api.url("/v1/stream"), {
          headers: this.api.headers({ Accept: "text/event-stream" }),
          signal,
          cache: "no-store",
        });
        const type = resp.headers.get("Content-Type") || "";
        if (!resp.ok || !resp.body || !type.startsWith("text/event-stream")) {
          // No stream on this deployment (or no permission): polling only, for good.
          if (resp.status === 401) await this.api.problem(resp);
          this.enabled = false;
          this.setConnected(false);
          return;
        }
        this.failures = 0;
        this.setConnected(true);
        await this.read(resp.body, signal);
      } catch (err) {
        if (signal.aborted) return;
      }
      this.setConnected(false);
      const wait = RETRY_MS[Math.min(this.failures, RETRY_MS.length - 1)];
      this.failures += 1;
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  async read(body, signal) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    while (!signal.aborted) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replace(/\r\n?/g, "\n");
      let end = buffer.indexOf("\n\n");
      while (end >= 0) {
        this.dispatch(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        end = buffer.indexOf("\n\n");
      }
    }
  }

  dispatch(block) {
    let type = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") type = value;
      else if (field === "data") data.push(value);
    }
    if (!data.length) return;
    let detail;
    try {
      detail = JSON.parse(data.join("\n"));
    } catch {
      return;
    }
    this.received += 1;
    this.dispatchEvent(new CustomEvent("notice", { detail: { type, detail } }));
  }
}
