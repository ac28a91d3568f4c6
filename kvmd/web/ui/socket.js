// SPDX-License-Identifier: GPL-3.0-or-later
// The main websocket (/api/ws): state events in, input out; reconnects with back-off.

const PING_EVERY_MS = 1000;
// As the PiKVM UI: this many binary pings without a [255] and the link is declared dead.
const MAX_UNANSWERED = 15;
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 10000;
// The daemon closes with this code when the session or key was revoked.
const CLOSE_REVOKED = 4401;

/** Merge a (possibly partial) event into the state held: top-level sections one level deep. */
export function merge(held, event) {
  const out = { ...(held || {}) };
  for (const [key, value] of Object.entries(event)) {
    const old = out[key];
    const bothObjects = value && old && typeof value === "object" && typeof old === "object";
    out[key] = bothObjects && !Array.isArray(value) ? { ...old, ...value } : value;
  }
  return out;
}

export class Link {
  /**
   * onEvent(type, state, event): after each event, with the merged state of that type.
   * onStatus(status, detail): "open", "lost" (detail = ms until the next try), "revoked".
   */
  constructor(onEvent, onStatus) {
    this.onEvent = onEvent;
    this.onStatus = onStatus;
    this.state = {};
    this.ws = null;
    this.attempt = 0;
    this.stopped = true;
    this.timers = [];
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    this.timers.forEach(clearTimeout);
    clearInterval(this.pinger);
    if (this.ws) {
      this.ws.close();
      this.ws = null;
    }
  }

  connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${proto}//${location.host}/api/ws?stream=1`);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.unanswered = 0;
    ws.onopen = () => {
      this.attempt = 0;
      this.onStatus("open");
      this.pinger = setInterval(() => this.ping(), PING_EVERY_MS);
    };
    ws.onmessage = (message) => this.receive(message.data);
    // Only the current socket's end counts: an old one may close after a restart.
    ws.onclose = (event) => this.ws === ws && this.closed(event.code);
  }

  closed(code) {
    clearInterval(this.pinger);
    this.ws = null;
    if (this.stopped) {
      return;
    }
    if (code === CLOSE_REVOKED) {
      this.onStatus("revoked");
      return;
    }
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.attempt);
    this.attempt += 1;
    this.onStatus("lost", delay);
    this.timers.push(setTimeout(() => this.connect(), delay));
  }

  receive(data) {
    if (typeof data !== "string") {
      if (new Uint8Array(data)[0] === 255) {
        this.unanswered = 0;
      }
      return;
    }
    const message = JSON.parse(data);
    const type = message.event_type;
    this.state[type] = merge(this.state[type], message.event);
    this.onEvent(type, this.state[type], message.event);
  }

  ping() {
    this.unanswered += 1;
    if (this.unanswered > MAX_UNANSWERED) {
      // A dead peer may never finish the closing handshake: give up on it now.
      const ws = this.ws;
      ws.onclose = null;
      ws.close();
      this.closed(1006);
      return;
    }
    this.send(new Uint8Array([0]));
  }

  /** Send a binary message; false when there is no open link to send it on. */
  send(bytes) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(bytes);
      return true;
    }
    return false;
  }
}
