// SPDX-License-Identifier: GPL-3.0-or-later
// The console: log in, then watch the stream and drive the machine through the public API.

import { AdminPanel } from "./admin.js";
import { ApiError, get, post } from "./api.js";
import { $, act, h } from "./dom.js";
import { Capture } from "./input.js";
import { Osk } from "./osk.js";
import { AtxPanel, GpioPanel, LogPanel, MsdPanel, VideoPanel, renderInfo } from "./panels.js";
import { Link } from "./socket.js";
import { Stream } from "./stream.js";

// Shortcuts of the special-keys bar: what a browser or the local OS would keep for itself.
const SPECIAL_KEYS = [
  ["Ctrl+Alt+Del", "ControlLeft,AltLeft,Delete"],
  ["Esc", "Escape"],
  ["Tab", "Tab"],
  ["Win", "MetaLeft"],
  ["Alt+Tab", "AltLeft,Tab"],
  ["Alt+F4", "AltLeft,F4"],
  ["PrtSc", "PrintScreen"],
  ["Ctrl+Alt+Bksp", "ControlLeft,AltLeft,Backspace"],
  ["Enter", "Enter"],
  ["Bksp", "Backspace"],
  ["↑", "ArrowUp"],
  ["↓", "ArrowDown"],
  ["←", "ArrowLeft"],
  ["→", "ArrowRight"],
  ...Array.from({ length: 12 }, (_, i) => [`F${i + 1}`, `F${i + 1}`]),
];

// The mouse outputs of an OTG HID (PiKVM's names), as the selector shows them.
const MOUSE_OUTPUTS = {
  usb: "absolute",
  usb_win98: "absolute (Windows 98)",
  usb_rel: "relative (pointer lock)",
};

const KEY_LABELS = { "↑": "Arrow up", "↓": "Arrow down", "←": "Arrow left", "→": "Arrow right" };

class Console {
  constructor() {
    this.permissions = new Set();
    this.control = false; // may type and click: holds `hid` and is not view only
    this.atx = new AtxPanel();
    this.msd = new MsdPanel();
    this.gpio = new GpioPanel();
    this.video = new VideoPanel();
    this.log = new LogPanel();
    this.admin = new AdminPanel();
    this.link = new Link(
      (type, state) => this.event(type, state),
      (status, detail) => this.linkStatus(status, detail),
    );
    this.stream = new Stream(() => this.status());
    this.capture = new Capture(
      $("screen"),
      () => this.stream.element,
      (bytes) => this.link.send(bytes),
      () => this.hidState(),
    );
    this.osk = new Osk((bytes) => this.link.send(bytes));
    this.controls();
  }

  controls() {
    $("logout").addEventListener("click", async () => {
      await act($("unreachable"), $("logout"), () => post("/auth/logout"));
      this.stop();
      showLogin();
    });
    // Relative moves reach the target only through a relative mouse: the mode is the output.
    $("mouse-mode").addEventListener("change", () =>
      act($("hid-result"), $("mouse-mode"), () => post("/hid/set_params", { mouse_output: $("mouse-mode").value })),
    );
    $("special-keys").replaceChildren(
      ...SPECIAL_KEYS.map(([text, keys]) =>
        h(
          "button",
          {
            type: "button",
            "aria-label": KEY_LABELS[text] || `Send ${text}`,
            onclick: (e) => act($("hid-result"), e.target, () => post("/hid/events/send_shortcut", { keys })),
          },
          text,
        ),
      ),
    );
    $("paste-send").addEventListener("click", () =>
      act($("paste-result"), $("paste-send"), async () => {
        const keymap = $("paste-keymap").value || null;
        const { skipped } = await post("/hid/print", { limit: 0, keymap }, $("paste-text").value);
        // What the layout has no key for was left out: say which, the target will not.
        $("paste-result").textContent = skipped ? `Skipped: ${skipped}` : "Typed.";
      }),
    );
  }

  start() {
    $("console-view").hidden = false;
    this.stream.start();
    this.link.start();
  }

  stop() {
    this.link.stop();
    this.capture.setEnabled(false);
    this.osk.setEnabled(false);
    this.log.stop();
    this.stream.stop();
    $("console-view").hidden = true;
  }

  event(type, state) {
    switch (type) {
      case "session":
        return this.session(state);
      case "atx":
        return this.atx.render(state);
      case "msd":
        return this.msd.render(state);
      case "gpio":
        return this.gpio.render(state);
      case "streamer":
        this.video.render(state);
        this.stream.streamer(state);
        return this.status();
      case "hid":
        return this.hid(state);
      case "hid_keymaps":
        return this.keymaps(state.keymaps);
      case "info":
        $("host-name").textContent = state.meta?.server?.host || "kvmd";
        return renderInfo(state);
      case "clients":
        this.status();
        // The initial burst ends with `clients`: everything is drawn and wired.
        if (!document.body.dataset.ready) {
          document.body.dataset.ready = "1";
          window.kvmdReadyAt = performance.now();
        }
        return undefined;
      default:
        return undefined; // events of later versions are ignored, as PiKVM's UI does
    }
  }

  session(session) {
    this.permissions = new Set(session.permissions);
    const may = (name) => this.permissions.has(name) && !session.read_only;
    $("who").textContent = session.user || "";
    const control = may("hid") && session.access !== "view";
    this.control = control;
    $("view-only").hidden = control;
    this.capture.setEnabled(control);
    $("paste-send").disabled = !control;
    this.osk.setEnabled(control);
    for (const button of $("special-keys").children) {
      button.disabled = !control;
    }
    this.atx.may = may("atx");
    this.msd.may = may("msd");
    this.gpio.may = may("gpio");
    this.video.may = may("streamer");
    $("log-panel").hidden = !this.permissions.has("logs");
    $("admin-section").hidden = !this.permissions.has("admin");
    const { state } = this.link;
    this.atx.render(state.atx);
    this.msd.render(state.msd);
    if (state.gpio) {
      this.gpio.render(state.gpio);
    }
    if (state.streamer) {
      this.video.render(state.streamer);
    }
    if (state.hid) {
      this.hid(state.hid);
    }
  }

  keymaps(keymaps) {
    this.osk.setKeymaps(keymaps);
    const select = $("paste-keymap");
    if (!select.options.length) {
      select.replaceChildren(
        ...keymaps.available.map((name) => h("option", { value: name, selected: name === keymaps.default }, name)),
      );
    }
  }

  status() {
    const { streamer, clients } = this.link.state;
    const source = streamer?.streamer?.source;
    this.capture.frame = source ? [source.resolution.width, source.resolution.height] : null;
    const parts = [];
    if (!source) {
      parts.push("streamer starting");
    } else {
      const { width, height } = source.resolution;
      parts.push(`${width}×${height}`, ...this.stream.describe(source), source.online ? "online" : "no signal");
    }
    const count = clients ? clients.count : 0;
    parts.push(`${count} viewer${count === 1 ? "" : "s"}`);
    $("status-line").textContent = parts.join(" · ");
  }

  hid(hid) {
    this.capture.setMode(hid.mouse.absolute ? "absolute" : "relative");
    const { available, active } = hid.mouse.outputs;
    const select = $("mouse-mode");
    const shown = available.length ? available : [active || (hid.mouse.absolute ? "usb" : "usb_rel")];
    select.replaceChildren(
      ...shown.map((name) => h("option", { value: name, selected: name === active }, MOUSE_OUTPUTS[name] || name)),
    );
    select.disabled = !this.control || available.length < 2;
    this.hidState();
  }

  hidState() {
    const hid = this.link.state.hid;
    const parts = [];
    if (hid) {
      parts.push(hid.online ? "HID online" : "HID offline");
      const leds = hid.keyboard.leds;
      parts.push(...["caps", "num", "scroll"].filter((led) => leds[led]).map((led) => `${led} lock`));
    }
    if (this.capture.captured) {
      parts.push("keyboard captured (click outside to release)");
    }
    $("hid-state").textContent = parts.join(" · ");
  }

  linkStatus(status, detail) {
    const banner = $("unreachable");
    if (status === "open") {
      banner.hidden = true;
      // A reconnect after an outage: the stream may have died with the link.
      if (this.lost) {
        this.stream.relinked();
      }
      this.lost = false;
      return;
    }
    if (status === "revoked") {
      this.stop();
      showLogin("Your session was ended. Log in again.");
      return;
    }
    this.lost = true;
    banner.hidden = false;
    banner.textContent = `The device is unreachable; trying again in ${Math.round(detail / 1000)} s…`;
  }
}

let theConsole = null;

function showOnly(view) {
  for (const id of ["login-view", "passwd-view"]) {
    $(id).hidden = id !== view;
  }
}

function showConsole() {
  showOnly(null);
  theConsole ??= new Console();
  theConsole.start();
}

function showLogin(message) {
  showOnly("login-view");
  $("login-error").textContent = message || takeSignOnError();
  $("login-user").focus();
  showProviders();
}

/** A failed single sign-on comes back to this page with its reason in the fragment. */
function takeSignOnError() {
  const error = new URLSearchParams(location.hash.slice(1)).get("sso_error");
  if (error !== null) {
    history.replaceState(null, "", location.pathname + location.search);
  }
  return error ? `Single sign-on failed: ${error}` : "";
}

/** "Sign in with <provider>" beside the password form, for each provider configured. */
async function showProviders() {
  let providers = [];
  try {
    ({ providers } = await get("/auth/oidc"));
  } catch {
    return; // an older daemon, or none reachable: the password form alone
  }
  const back = location.pathname;
  $("login-sso-providers").replaceChildren(
    ...providers.map(({ name, title }) =>
      h("a", { href: `/api/auth/oidc/${encodeURIComponent(name)}/login?${new URLSearchParams({ redirect: back })}` }, `Sign in with ${title}`),
    ),
  );
  $("login-sso").hidden = providers.length === 0;
}

/** The password form: `forced` when the daemon refuses everything else until it is done. */
function showPasswd(forced) {
  showOnly("passwd-view");
  $("passwd-why").textContent = forced ? "Your password must be changed before you go on." : "";
  $("passwd-cancel").hidden = forced;
  $("passwd-old").focus();
}

/** Into the console, unless the password must be changed first (SECURITY.md). */
async function enter() {
  try {
    await get("/hid");
  } catch (err) {
    if (err.name === "PasswordChangeRequiredError") {
      showPasswd(true);
      return;
    }
  }
  showConsole();
}

async function login(event) {
  event.preventDefault();
  const code = $("login-code").value.trim();
  // With 2FA on, the daemon checks the password with the 6-digit code appended (API.md §2).
  const body = new URLSearchParams({ user: $("login-user").value.trim(), passwd: $("login-passwd").value + code });
  const ok = await act($("login-error"), $("login-submit"), async () => {
    try {
      await post("/auth/login", null, body);
      return true;
    } catch (err) {
      if (err.status === 403) {
        throw new Error("Wrong user, password or code.");
      }
      throw err;
    }
  });
  if (ok) {
    $("login-passwd").value = "";
    $("login-code").value = "";
    await enter();
  }
}

async function changePasswd(event) {
  event.preventDefault();
  const [old, passwd, repeat] = ["passwd-old", "passwd-new", "passwd-repeat"].map((id) => $(id).value);
  if (passwd !== repeat) {
    $("passwd-error").textContent = "The new passwords differ.";
    return;
  }
  const body = new URLSearchParams({ old_passwd: old, passwd });
  const done = await act($("passwd-error"), $("passwd-submit"), () => post("/auth/users/set_passwd", null, body));
  if (done) {
    for (const id of ["passwd-old", "passwd-new", "passwd-repeat"]) {
      $(id).value = "";
    }
    await enter();
  }
}

async function boot() {
  $("login-form").addEventListener("submit", login);
  $("passwd-form").addEventListener("submit", changePasswd);
  $("passwd-cancel").addEventListener("click", showConsole);
  $("change-passwd").addEventListener("click", () => {
    theConsole.stop();
    showPasswd(false);
  });
  try {
    await get("/auth/check");
  } catch (err) {
    const loggedOut = err instanceof ApiError && (err.status === 401 || err.status === 403);
    showLogin(loggedOut ? "" : `The device did not answer (${err.message}).`);
    return;
  }
  await enter();
}

boot();
