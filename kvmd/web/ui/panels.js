// SPDX-License-Identifier: GPL-3.0-or-later
// The side panels: ATX, virtual media, GPIO, video, system info and the log. Each renders
// the state the websocket holds and acts through the HTTP API.

import { lines, post, upload } from "./api.js";
import { $, act, bytes, confirmed, h, setLed } from "./dom.js";

// --- ATX -------------------------------------------------------------------------------

const ATX_QUESTIONS = {
  power: "Press the power button of the remote machine?",
  power_long: "Hold the power button for 5 seconds (forced power off)?",
  reset: "Press the reset button of the remote machine?",
};

export class AtxPanel {
  constructor() {
    this.may = false;
    this.state = null;
    for (const id of ["atx-power", "atx-power-long", "atx-reset"]) {
      const control = $(id);
      control.addEventListener("click", () => this.click(control));
    }
  }

  async click(control) {
    const button = control.dataset.button;
    if (await confirmed(ATX_QUESTIONS[button])) {
      // Answered when the press is over, so the buttons stay off until ATX is free again.
      await act($("atx-result"), control, () => post("/atx/click", { button, wait: true }));
      this.render(this.state);
    }
  }

  render(state) {
    this.state = state;
    if (!state) {
      return;
    }
    setLed($("led-power"), state.leds.power, "Power LED");
    setLed($("led-hdd"), state.leds.hdd, "HDD LED");
    const usable = this.may && state.enabled && !state.busy;
    for (const id of ["atx-power", "atx-power-long", "atx-reset"]) {
      $(id).disabled = !usable;
    }
  }
}

// --- Mass storage ----------------------------------------------------------------------

export class MsdPanel {
  constructor() {
    this.may = false;
    this.state = null;
    this.transfer = false; // an upload or download of ours is running
    const on = (id, handler) => $(id).addEventListener("click", () => handler($(id)));
    on("msd-connect", (control) => this.connect(control));
    on("msd-disconnect", (control) => this.run(control, () => post("/msd/set_connected", { connected: false })));
    on("msd-remove", (control) => this.remove(control));
    on("msd-upload", (control) => this.upload(control));
    on("msd-download", (control) => this.download(control));
  }

  /** An action from a control; a `transfer` keeps the drive's controls off until it ends. */
  run(control, action, transfer = false) {
    this.transfer ||= transfer;
    return act($("msd-result"), control, action).finally(() => {
      if (transfer) {
        this.transfer = false;
      }
      this.render(this.state);
    });
  }

  connect(control) {
    const image = $("msd-image").value;
    const cdrom = $("msd-cdrom").checked;
    return this.run(control, async () => {
      await post("/msd/set_params", { image, cdrom, rw: !cdrom && $("msd-rw").checked });
      await post("/msd/set_connected", { connected: true });
    });
  }

  async remove(control) {
    const image = $("msd-image").value;
    if (image && (await confirmed(`Remove the image ${image}?`))) {
      await this.run(control, () => post("/msd/remove", { image }));
    }
  }

  async upload(control) {
    const file = $("msd-file").files[0];
    if (!file) {
      $("msd-result").textContent = "Choose a file to upload first.";
      return;
    }
    const progress = (fraction) => {
      const percent = Math.floor(fraction * 100);
      $("msd-progress").value = percent;
      $("msd-percent").textContent = `${percent}%`;
    };
    progress(0);
    await this.run(control, () => upload("/msd/write", { image: file.name }, file, progress), true);
  }

  async download(control) {
    const url = $("msd-url").value.trim();
    if (!url) {
      $("msd-result").textContent = "Enter the URL of an image first.";
      return;
    }
    const bar = $("msd-download-progress");
    bar.value = 0;
    const download = async () => {
      // The answer streams JSON lines {image: {name, size, written}} until the end.
      for await (const line of lines("/msd/write_remote", { url }, { method: "POST" })) {
        if (!line.trim()) {
          continue;
        }
        const data = JSON.parse(line);
        if (data.ok === false) {
          throw new Error(`${data.result.error}: ${data.result.error_msg}`);
        }
        const image = data.result && data.result.image;
        if (image && image.size) {
          bar.value = Math.floor((image.written / image.size) * 100);
        }
      }
    };
    await this.run(control, download, true);
  }

  render(state) {
    this.state = state;
    if (!state) {
      return;
    }
    const { drive, storage } = state;
    const names = Object.keys(storage.images || {}).sort();
    const select = $("msd-image");
    // A connected drive shows its image; otherwise the owner's choice stands (the image
    // the drive last had only fills an empty choice), whatever events come meanwhile.
    const chosen = (drive.connected && drive.image?.name) || select.value || drive.image?.name;
    select.replaceChildren(
      ...names.map((name) =>
        h("option", { value: name, selected: name === chosen }, `${name} (${bytes(storage.images[name].size)})`),
      ),
    );
    const where = drive.connected ? `connected as ${drive.cdrom ? "CD-ROM" : "flash"}` : "disconnected";
    const image = drive.image ? drive.image.name : "no image";
    $("msd-state").textContent = `${image}, ${where}; ${bytes(storage.free)} free of ${bytes(storage.size)}`;
    if (drive.connected) {
      $(drive.cdrom ? "msd-cdrom" : "msd-flash").checked = true;
    }
    const usable = this.may && state.enabled && state.online && !state.busy;
    const idle = usable && !this.transfer;
    $("msd-connect").disabled = !idle || drive.connected || !names.length;
    $("msd-disconnect").disabled = !usable || !drive.connected;
    $("msd-remove").disabled = !idle || !names.length || (drive.connected && drive.image?.name === select.value);
    for (const id of ["msd-upload", "msd-download", "msd-file", "msd-url"]) {
      $(id).disabled = !idle;
    }
    for (const id of ["msd-image", "msd-cdrom", "msd-flash", "msd-rw"]) {
      $(id).disabled = !usable || drive.connected;
    }
  }
}

// --- GPIO --------------------------------------------------------------------------------

export class GpioPanel {
  constructor() {
    this.may = false;
    this.model = null; // as JSON, to compare
    this.cells = []; // [channel, kind, element] to refresh on state events
    this.pending = new Set(); // controls whose request is under way
  }

  render(event) {
    this.last = event;
    // Every gpio event carries the model: rebuild the controls only when it changed, or a
    // click in progress would lose its element.
    const model = event.model && JSON.stringify(event.model);
    if (model && model !== this.model) {
      this.model = model;
      this.build(event.model);
    }
    const state = event.state || {};
    for (const [channel, kind, el] of this.cells) {
      const now = (state[kind] || {})[channel];
      if (!now) {
        continue;
      }
      if (kind === "inputs") {
        setLed(el, now.state, channel);
      } else {
        // While a switch is under way its state is the old one: keep showing the new one.
        if (el.type === "checkbox" && !now.busy && !this.pending.has(el)) {
          el.checked = now.state;
        }
        el.disabled = !this.may || !now.online || now.busy || this.pending.has(el);
      }
    }
  }

  build(model) {
    const title = model.view.header.title;
    $("gpio-title").textContent = Array.isArray(title) ? title.map((cell) => cell.text || "").join(" ") : title;
    this.cells = [];
    const rows = model.view.table.map((row) =>
      h("tr", {}, ...(row || [h("hr")]).map((cell) => h("td", {}, this.cell(model, cell)))),
    );
    $("gpio-table").replaceChildren(...rows);
  }

  /**
   * One request at a time per control, answered when the operation is over (wait=1: the
   * channel is busy a little after its write). Then the control shows the daemon's state.
   */
  async run(control, action) {
    this.pending.add(control);
    await act($("gpio-result"), control, action);
    this.pending.delete(control);
    this.render(this.last);
  }

  cell(model, cell) {
    if (!cell || !cell.type) {
      return null;
    }
    if (cell.type === "label") {
      return cell.text;
    }
    if (cell.type === "input") {
      const led = h("span", { class: `led ${cell.color || "green"}`, role: "img", "aria-label": cell.channel });
      this.cells.push([cell.channel, "inputs", led]);
      return led;
    }
    const output = model.scheme.outputs[cell.channel];
    if (!output || cell.hide) {
      return null;
    }
    const label = cell.text || cell.channel;
    let control;
    if (output.switch) {
      control = h("input", { type: "checkbox", "aria-label": `${label} switch` });
      control.addEventListener("change", async () => {
        const state = control.checked;
        if (cell.confirm && !(await confirmed(`Switch ${label} ${state ? "on" : "off"}?`))) {
          control.checked = !state;
          return;
        }
        await this.run(control, () => post("/gpio/switch", { channel: cell.channel, state, wait: true }));
      });
    } else {
      control = h("button", { type: "button" }, label);
      control.addEventListener("click", async () => {
        if (!cell.confirm || (await confirmed(`Press ${label}?`))) {
          await this.run(control, () => post("/gpio/pulse", { channel: cell.channel, wait: true }));
        }
      });
    }
    this.cells.push([cell.channel, "outputs", control]);
    return control;
  }
}

// --- Video -------------------------------------------------------------------------------

// The H.264 sliders: streamer parameter → [element id, unit shown after the value].
const H264_SLIDERS = {
  h264_bitrate: ["video-h264-bitrate", "kbit/s"],
  h264_gop: ["video-h264-gop", "frames"],
};
// How long a value sent from a slider is shown before the streamer applies it: the
// streamer restarts for a new bitrate or GOP, which takes a few seconds.
const SENT_SHOWN_MS = 15000;

export class VideoPanel {
  constructor() {
    this.may = false;
    this.edited = false;
    this.state = null;
    this.sent = {}; // param → {value, until}: set here, not yet applied
    this.moving = new Set(); // sliders being dragged: state events leave them alone
    for (const [param, [id, unit]] of Object.entries(H264_SLIDERS)) {
      const slider = $(id);
      $(`${id}-value`).textContent = `${slider.value} ${unit}`; // PiKVM's default until state comes
      slider.addEventListener("input", () => {
        this.moving.add(param);
        $(`${id}-value`).textContent = `${slider.value} ${unit}`;
      });
      slider.addEventListener("change", async () => {
        this.moving.delete(param);
        this.sent[param] = { value: Number(slider.value), until: Date.now() + SENT_SHOWN_MS };
        const done = await act($("video-result"), slider, async () => {
          await post("/streamer/set_params", { [param]: slider.value });
          return true;
        });
        if (!done) {
          delete this.sent[param]; // refused: back to what the streamer has
        }
        this.render(this.state);
      });
    }
    const quality = $("video-quality");
    quality.addEventListener("input", () => {
      this.edited = true;
      $("video-quality-value").textContent = quality.value;
    });
    $("video-fps").addEventListener("input", () => {
      this.edited = true;
    });
    $("video-apply").addEventListener("click", async () => {
      const params = { desired_fps: $("video-fps").value };
      if (!quality.disabled) {
        params.quality = quality.value;
      }
      await act($("video-result"), $("video-apply"), () => post("/streamer/set_params", params));
      this.edited = false;
    });
    $("video-reset").addEventListener("click", () =>
      act($("video-result"), $("video-reset"), () => post("/streamer/reset")),
    );
  }

  render(state) {
    this.state = state;
    if (!state) {
      return;
    }
    this.renderH264(state);
    const fps = $("video-fps");
    fps.min = state.limits.desired_fps.min;
    fps.max = state.limits.desired_fps.max;
    if (!this.edited) {
      $("video-quality").value = state.params.quality;
      $("video-quality-value").textContent = state.params.quality;
      fps.value = state.params.desired_fps;
    }
    $("video-quality").disabled = !this.may || !state.features.quality;
    for (const id of ["video-fps", "video-apply", "video-reset"]) {
      $(id).disabled = !this.may;
    }
  }

  /** Bitrate and GOP: ranges from `limits`, values as applied; only when H.264 is on. */
  renderH264(state) {
    const usable = this.may && Boolean(state.features?.h264);
    for (const [param, [id, unit]] of Object.entries(H264_SLIDERS)) {
      const slider = $(id);
      const limits = state.limits?.[param];
      if (limits) {
        slider.min = limits.min;
        slider.max = limits.max;
      }
      const applied = state.applied?.[param] ?? state.params?.[param];
      const sent = this.sent[param];
      if (sent && (applied === sent.value || Date.now() > sent.until)) {
        delete this.sent[param];
      }
      const value = this.sent[param]?.value ?? applied;
      if (value !== undefined && !this.moving.has(param)) {
        slider.value = value;
        $(`${id}-value`).textContent = `${value} ${unit}`;
      }
      slider.disabled = !usable;
    }
  }
}

// --- System info -------------------------------------------------------------------------

export function renderInfo(info) {
  const flags = info.health?.throttling?.parsed_flags || {};
  const now = Object.keys(flags).filter((name) => flags[name].now);
  const system = info.system || {};
  const rows = [
    ["Host", info.meta?.server?.host],
    ["kvmd", system.kvmd?.version],
    ["Streamer", system.streamer && `${system.streamer.app} ${system.streamer.version}`],
    ["Board", system.platform && `${system.platform.base || ""} (${system.platform.type || "?"})`],
    ["Kernel", system.kernel && `${system.kernel.system} ${system.kernel.release} ${system.kernel.machine}`],
    ["CPU temperature", info.health?.temp?.cpu != null ? `${info.health.temp.cpu.toFixed(1)} °C` : null],
    ["Memory used", info.health?.mem?.percent != null ? `${info.health.mem.percent}%` : null],
    ["Throttling", info.health ? now.join(", ") || "none" : null],
  ];
  $("info-list").replaceChildren(
    ...rows.filter(([, value]) => value).flatMap(([name, value]) => [h("dt", {}, name), h("dd", {}, value)]),
  );
}

// --- Log ---------------------------------------------------------------------------------

const LOG_LINES = 500; // what the panel keeps; the daemon holds the rest

export class LogPanel {
  constructor() {
    this.abort = null;
    $("log-follow").addEventListener("click", () => (this.abort ? this.stop() : this.follow()));
  }

  async follow() {
    const button = $("log-follow");
    const text = $("log-text");
    this.abort = new AbortController();
    button.textContent = "Stop following";
    button.setAttribute("aria-pressed", "true");
    const kept = [];
    let drawing = false;
    // Drawn once a frame, not once a line: an hour of log arrives at once, and redrawing
    // (and measuring) the whole text per line would hold the page for seconds.
    const draw = () => {
      drawing = false;
      const atBottom = text.scrollTop + text.clientHeight >= text.scrollHeight - 4;
      text.textContent = kept.slice(-LOG_LINES).join("\n");
      if (atBottom) {
        text.scrollTop = text.scrollHeight;
      }
    };
    try {
      const params = { seek: 3600, follow: true };
      for await (const line of lines("/log", params, { signal: this.abort.signal })) {
        kept.push(line);
        if (kept.length > 2 * LOG_LINES) {
          kept.splice(0, kept.length - LOG_LINES);
        }
        if (!drawing) {
          drawing = true;
          requestAnimationFrame(draw);
        }
      }
    } catch (err) {
      if (err.name !== "AbortError") {
        text.textContent += `\n${err.message}`;
      }
    }
    this.stop();
  }

  stop() {
    if (this.abort) {
      this.abort.abort();
      this.abort = null;
    }
    $("log-follow").textContent = "Follow the log";
    $("log-follow").setAttribute("aria-pressed", "false");
  }
}
