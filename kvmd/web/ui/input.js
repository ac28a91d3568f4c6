// SPDX-License-Identifier: GPL-3.0-or-later
// Keyboard and mouse capture on the screen element, sent as the websocket's binary events
// (API.md §4): 1 key, 2 mouse button, 3 absolute move, 4 relative move, 5 wheel.

import { intrinsic } from "./stream.js";

const encoder = new TextEncoder();
// Web key names are KeyboardEvent.code values; the daemon takes at most 32 ASCII bytes.
const KEY_NAME = /^[A-Za-z][A-Za-z0-9]{0,31}$/;
const BUTTONS = ["left", "middle", "right", "up", "down"]; // by MouseEvent.button
const FLUSH_MS = 10; // at most 100 moves a second: plenty for the host, light on the link

export function keyMessage(code, state) {
  return named(1, code, state);
}

export function buttonMessage(button, state) {
  return named(2, button, state);
}

function named(type, name, state) {
  const text = encoder.encode(name);
  const out = new Uint8Array(2 + text.length);
  out[0] = type;
  out[1] = state ? 1 : 0;
  out.set(text, 2);
  return out;
}

export function moveMessage(x, y) {
  const view = new DataView(new ArrayBuffer(5));
  view.setUint8(0, 3);
  view.setInt16(1, x);
  view.setInt16(3, y);
  return new Uint8Array(view.buffer);
}

/** Relative moves (type 4) or wheel steps (type 5): pairs of signed bytes. */
export function deltaMessage(type, deltas) {
  const out = new Int8Array(2 + deltas.length * 2);
  out[0] = type;
  out[1] = 0; // no squash: every step counts
  deltas.forEach(([dx, dy], index) => {
    out[2 + index * 2] = dx;
    out[3 + index * 2] = dy;
  });
  return new Uint8Array(out.buffer);
}

/** Split a large delta into steps of at most 127 per axis. */
export function steps(dx, dy) {
  const out = [];
  let [x, y] = [Math.round(dx), Math.round(dy)];
  while (x || y) {
    const sx = Math.max(-127, Math.min(127, x));
    const sy = Math.max(-127, Math.min(127, y));
    out.push([sx, sy]);
    x -= sx;
    y -= sy;
  }
  return out;
}

/**
 * Where a point falls on the picture (object-fit: contain), as −32768..32767 per axis.
 * `frame` is the video's [width, height]: an MJPEG <img> may report no natural size, and
 * an H.264 <canvas> has none before its first frame.
 */
export function absolute(el, frame, clientX, clientY) {
  const rect = el.getBoundingClientRect();
  const [w, h] = intrinsic(el) || frame || [rect.width, rect.height];
  const scale = Math.min(rect.width / w, rect.height / h);
  const [shownW, shownH] = [w * scale, h * scale];
  const left = rect.left + (rect.width - shownW) / 2;
  const top = rect.top + (rect.height - shownH) / 2;
  const fx = Math.max(0, Math.min(1, (clientX - left) / shownW));
  const fy = Math.max(0, Math.min(1, (clientY - top) / shownH));
  return [Math.round(fx * 65535 - 32768), Math.round(fy * 65535 - 32768)];
}

/**
 * Captures input on `screen` while `enabled` (the principal holds `hid`) and sends it
 * through `send(bytes)`. Keyboard capture follows focus; losing it releases every key.
 * The mouse acts on the picture `view()` returns: the MJPEG <img> or the H.264 <canvas>.
 */
export class Capture {
  constructor(screen, view, send, onChange) {
    this.screen = screen;
    this.view = view;
    this.send = send;
    this.onChange = onChange;
    this.frame = null; // [width, height] of the video, from the streamer's state
    this.enabled = false;
    this.mode = "absolute";
    this.held = new Set();
    this.buttons = new Set();
    this.pendingMove = null;
    this.pendingDelta = [0, 0];
    this.pendingWheel = [];
    this.flushing = null;
    this.listen();
  }

  listen() {
    const { screen } = this;
    screen.addEventListener("keydown", (event) => this.key(event, true));
    screen.addEventListener("keyup", (event) => this.key(event, false));
    screen.addEventListener("focus", () => this.changed());
    screen.addEventListener("blur", () => this.releaseAll());
    document.addEventListener("visibilitychange", () => document.hidden && this.releaseAll());
    // On the screen, for whichever picture shows there: events on the other one (hidden)
    // and on the badge are left alone.
    const onView = (handler) => (event) => event.target === this.view() && handler(event);
    screen.addEventListener("pointerdown", onView((event) => this.pointer(event, true)));
    screen.addEventListener("pointerup", onView((event) => this.pointer(event, false)));
    screen.addEventListener("pointermove", onView((event) => this.move(event)));
    screen.addEventListener("contextmenu", onView((event) => event.preventDefault()));
    screen.addEventListener("wheel", onView((event) => this.wheel(event)), { passive: false });
    document.addEventListener("mousemove", (event) => this.locked() && this.relative(event));
    document.addEventListener("pointerlockchange", () => this.locked() || this.releaseButtons());
  }

  get captured() {
    return this.enabled && document.activeElement === this.screen;
  }

  setEnabled(enabled) {
    if (!enabled) {
      this.releaseAll();
    }
    this.enabled = enabled;
    this.screen.dataset.input = enabled ? "1" : "0";
    this.changed();
  }

  setMode(mode) {
    this.mode = mode;
    this.screen.dataset.mode = mode;
    if (mode !== "relative" && this.locked()) {
      document.exitPointerLock();
    }
  }

  changed() {
    this.screen.dataset.captured = this.captured ? "1" : "0";
    this.onChange(this.captured);
  }

  key(event, state) {
    if (!this.enabled || !KEY_NAME.test(event.code)) {
      return;
    }
    event.preventDefault();
    if (state && event.repeat) {
      return; // the target's own autorepeat handles a held key
    }
    if (state) {
      this.held.add(event.code);
    } else if (!this.held.delete(event.code)) {
      return;
    }
    this.send(keyMessage(event.code, state));
  }

  releaseAll() {
    for (const code of this.held) {
      this.send(keyMessage(code, false));
    }
    this.held.clear();
    this.releaseButtons();
    this.changed();
  }

  releaseButtons() {
    for (const button of this.buttons) {
      this.send(buttonMessage(button, false));
    }
    this.buttons.clear();
  }

  locked() {
    return document.pointerLockElement === this.view();
  }

  pointer(event, state) {
    if (!this.enabled) {
      return;
    }
    event.preventDefault();
    this.screen.focus({ preventScroll: true });
    if (this.mode === "relative" && !this.locked()) {
      if (state) {
        this.view().requestPointerLock();
      }
      return;
    }
    const button = BUTTONS[event.button];
    if (!button) {
      return;
    }
    if (this.mode === "absolute") {
      this.flushNow();
      this.send(moveMessage(...absolute(this.view(), this.frame, event.clientX, event.clientY)));
    }
    if (state) {
      this.buttons.add(button);
    } else if (!this.buttons.delete(button)) {
      return;
    }
    this.send(buttonMessage(button, state));
  }

  move(event) {
    if (this.enabled && this.mode === "absolute") {
      this.pendingMove = absolute(this.view(), this.frame, event.clientX, event.clientY);
      this.schedule();
    }
  }

  relative(event) {
    if (this.enabled) {
      this.pendingDelta[0] += event.movementX;
      this.pendingDelta[1] += event.movementY;
      this.schedule();
    }
  }

  wheel(event) {
    if (!this.enabled) {
      return;
    }
    event.preventDefault();
    // One step per event, in the USB sense: positive y scrolls up.
    this.pendingWheel.push([Math.sign(event.deltaX), -Math.sign(event.deltaY)]);
    this.schedule();
  }

  schedule() {
    this.flushing ??= setTimeout(() => this.flushNow(), FLUSH_MS);
  }

  flushNow() {
    clearTimeout(this.flushing);
    this.flushing = null;
    if (this.pendingMove) {
      this.send(moveMessage(...this.pendingMove));
      this.pendingMove = null;
    }
    const [dx, dy] = this.pendingDelta;
    if (dx || dy) {
      this.send(deltaMessage(4, steps(dx, dy)));
      this.pendingDelta = [0, 0];
    }
    if (this.pendingWheel.length) {
      this.send(deltaMessage(5, this.pendingWheel));
      this.pendingWheel = [];
    }
  }
}
