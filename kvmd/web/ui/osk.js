// SPDX-License-Identifier: GPL-3.0-or-later
// The on-screen keyboard: an ISO 105-key main block whose caps show what the chosen layout
// types (/api/hid/keymaps/layout). A click sends the key as the captured keyboard does, as
// websocket key events; modifiers latch until the next key, as on a phone.

import { get } from "./api.js";
import { $, act, h } from "./dom.js";
import { keyMessage } from "./input.js";

// Each row: web key names (KeyboardEvent.code), with a width in key units where it is not 1.
const ROWS = [
  ["Escape", "ArrowLeft", "ArrowUp", "ArrowDown", "ArrowRight"],
  [
    "Backquote", "Digit1", "Digit2", "Digit3", "Digit4", "Digit5", "Digit6", "Digit7", "Digit8",
    "Digit9", "Digit0", "Minus", "Equal", ["Backspace", 2],
  ],
  [
    ["Tab", 1.5], "KeyQ", "KeyW", "KeyE", "KeyR", "KeyT", "KeyY", "KeyU", "KeyI", "KeyO", "KeyP",
    "BracketLeft", "BracketRight", ["Enter", 1.5],
  ],
  [
    ["CapsLock", 1.75], "KeyA", "KeyS", "KeyD", "KeyF", "KeyG", "KeyH", "KeyJ", "KeyK", "KeyL",
    "Semicolon", "Quote", "Backslash", ["Enter", 1.25],
  ],
  [
    ["ShiftLeft", 1.25], "IntlBackslash", "KeyZ", "KeyX", "KeyC", "KeyV", "KeyB", "KeyN", "KeyM",
    "Comma", "Period", "Slash", ["ShiftRight", 2.75],
  ],
  [
    ["ControlLeft", 1.5], ["MetaLeft", 1.25], ["AltLeft", 1.25], ["Space", 6.25], ["AltRight", 1.25],
    ["ControlRight", 1.5],
  ],
];

// Keys whose cap is their name, whatever the layout.
const NAMES = {
  Escape: "Esc",
  ArrowLeft: "←",
  ArrowUp: "↑",
  ArrowDown: "↓",
  ArrowRight: "→",
  Backspace: "Backspace",
  Tab: "Tab",
  Enter: "Enter",
  CapsLock: "Caps Lock",
  ShiftLeft: "Shift",
  ShiftRight: "Shift",
  ControlLeft: "Ctrl",
  ControlRight: "Ctrl",
  MetaLeft: "Win",
  AltLeft: "Alt",
  AltRight: "AltGr",
  Space: "Space",
};

// Held down for the next key only, then let go: a click cannot hold a key while clicking another.
const MODIFIERS = new Set(["ShiftLeft", "ShiftRight", "ControlLeft", "ControlRight", "MetaLeft", "AltLeft", "AltRight"]);

export class Osk {
  /** `send(bytes)` sends a binary websocket message, as the captured keyboard's input. */
  constructor(send) {
    this.send = send;
    this.enabled = false;
    this.latched = new Set();
    this.legends = new Map(); // keymap name -> legend, fetched once
    this.board = $("osk");
    this.board.replaceChildren(...ROWS.map((row) => h("div", { class: "osk-row" }, row.map((key) => this.cap(key)))));
    $("osk-toggle").addEventListener("click", () => this.setOpen(this.board.hidden));
    $("osk-keymap").addEventListener("change", () => this.load());
  }

  cap(key) {
    const [code, width] = Array.isArray(key) ? key : [key, 1];
    return h("button", {
      type: "button",
      class: "osk-key",
      "data-code": code,
      "data-w": width === 1 ? null : String(width),
      "aria-label": NAMES[code] ? `${NAMES[code]} (${code})` : code,
      "aria-pressed": MODIFIERS.has(code) ? "false" : null,
      onclick: () => this.click(code),
    });
  }

  keys(code) {
    return this.board.querySelectorAll(`[data-code="${code}"]`);
  }

  setEnabled(enabled) {
    this.enabled = enabled;
    $("osk-toggle").disabled = !enabled;
    $("osk-keymap").disabled = !enabled;
    for (const button of this.board.querySelectorAll("button")) {
      button.disabled = !enabled;
    }
    if (!enabled) {
      this.latched.clear();
      this.setOpen(false);
    }
  }

  setOpen(open) {
    const show = open && this.enabled;
    this.board.hidden = !show;
    $("osk-toggle").setAttribute("aria-expanded", String(show));
    if (show) {
      this.load();
    }
  }

  /** Fill the layout select once: every keymap, the configured one chosen. */
  setKeymaps(keymaps) {
    const select = $("osk-keymap");
    if (!select.options.length) {
      select.replaceChildren(
        ...keymaps.available.map((name) => h("option", { value: name, selected: name === keymaps.default }, name)),
      );
    }
  }

  async load() {
    const name = $("osk-keymap").value;
    if (!name || this.board.hidden) {
      return;
    }
    const legend = await act($("osk-result"), null, async () => {
      if (!this.legends.has(name)) {
        this.legends.set(name, (await get("/hid/keymaps/layout", { keymap: name })).keys);
      }
      return this.legends.get(name);
    });
    // A slow answer for a layout no longer chosen is not drawn.
    if (legend && name === $("osk-keymap").value) {
      this.draw(legend);
      this.board.dataset.keymap = name;
    }
  }

  draw(legend) {
    for (const button of this.board.querySelectorAll("button")) {
      const code = button.dataset.code;
      if (NAMES[code]) {
        button.replaceChildren(h("span", { class: "osk-plain osk-name" }, NAMES[code]));
        continue;
      }
      const [plain, shift, altgr] = legend[code] || ["", "", ""];
      // A letter's capital goes without saying; any other Shift level is shown.
      const shown = shift && shift !== plain.toUpperCase() ? shift : "";
      button.replaceChildren(
        h("span", { class: "osk-shift" }, shown),
        h("span", { class: "osk-plain" }, plain),
        h("span", { class: "osk-altgr" }, altgr),
      );
    }
  }

  click(code) {
    if (!this.enabled) {
      return;
    }
    if (MODIFIERS.has(code)) {
      if (!this.latched.delete(code)) {
        this.latched.add(code);
      }
      this.showLatched();
      return;
    }
    const held = [...this.latched];
    for (const modifier of held) {
      this.send(keyMessage(modifier, true));
    }
    this.send(keyMessage(code, true));
    this.send(keyMessage(code, false));
    for (const modifier of held.reverse()) {
      this.send(keyMessage(modifier, false));
    }
    this.latched.clear();
    this.showLatched();
  }

  showLatched() {
    for (const code of MODIFIERS) {
      for (const button of this.keys(code)) {
        button.setAttribute("aria-pressed", String(this.latched.has(code)));
      }
    }
  }
}
