// SPDX-License-Identifier: GPL-3.0-or-later
// The remote screen's video: ustreamer's MJPEG in the <img>, or direct H.264 from
// /api/media/ws decoded by WebCodecs into the <canvas> (MEDIA.md §2.3–2.5), chosen as
// PiKVM's UI chooses: what `stream.mode` asks for, when this browser and the device can.

import { get } from "./api.js";
import { $ } from "./dom.js";

const MODE_KEY = "stream.mode"; // PiKVM's key and values: "mjpeg" or "media"
// With nothing stored, H.264 where it can play, as PiKVM's UI (its Janus default falls back
// to direct H.264, then to MJPEG); MJPEG is one click in the video panel.
const DEFAULT_MODE = "media";

const OP_PING = 0x00;
const OP_VIDEO = 0x01; // server: a frame; client: "send a key frame"
const OP_PONG = 0xff;
const PING_EVERY_MS = 1000;
const MAX_MISSED_PONGS = 5; // as PiKVM's stream_media.js
const RECONNECT_MS = 1000;
// Frames waiting for the decoder: beyond this it can't keep up, so start again from a key
// frame rather than show the screen ever later.
const MAX_DECODE_QUEUE = 30;

/** How a picture is sized: an <img> by its image, a <canvas> by its frames; null if none. */
export function intrinsic(el) {
  const [w, h] = el instanceof HTMLCanvasElement ? [el.width, el.height] : [el.naturalWidth, el.naturalHeight];
  return w && h ? [w, h] : null;
}

/**
 * Plays /api/media/ws into `canvas`. `onChange()` after each second (for the frame rate)
 * and when a problem shows or clears.
 */
export class H264Player {
  constructor(canvas, onChange) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.onChange = onChange;
    this.stopped = true;
    this.ws = null;
    this.decoder = null;
    this.codec = null;
    this.problem = ""; // what keeps the picture away, in words
    this.frames = 0; // decoded since the page loaded, for the tests and the rate
    this.fps = 0;
    this.timers = [];
  }

  start() {
    this.stopped = false;
    this.fps = 0;
    this.counted = this.frames;
    this.timers.push(setInterval(() => this.tick(), 1000));
    this.connect();
  }

  stop() {
    this.stopped = true;
    this.timers.forEach(clearTimeout); // timeouts and intervals share their ids
    this.timers = [];
    this.drop();
  }

  tick() {
    this.fps = this.frames - this.counted;
    this.counted = this.frames;
    this.onChange();
  }

  connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${proto}//${location.host}/api/media/ws`);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.missed = 0;
    ws.onopen = () => {
      this.pinger = setInterval(() => this.ping(), PING_EVERY_MS);
    };
    ws.onmessage = (message) => this.receive(message.data);
    // Only the current socket's end counts: an old one may close after a reconnect.
    ws.onclose = () => this.ws === ws && this.closed();
  }

  /** Close the socket and the decoder, quietly. */
  drop() {
    clearInterval(this.pinger);
    if (this.ws) {
      this.ws.onclose = null;
      this.ws.close();
      this.ws = null;
    }
    this.closeDecoder();
  }

  closed() {
    this.drop();
    if (!this.stopped) {
      this.timers.push(setTimeout(() => this.connect(), RECONNECT_MS));
    }
  }

  ping() {
    if (this.missed >= MAX_MISSED_PONGS) {
      // A dead peer may never finish the closing handshake: give up on it now.
      this.setProblem("The H.264 stream stopped answering; reconnecting…");
      this.closed();
      return;
    }
    this.missed += 1;
    this.send([OP_PING]);
  }

  /** A binary message (an array of bytes) or a JSON event, when the socket is open. */
  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(Array.isArray(message) ? new Uint8Array(message) : JSON.stringify(message));
    }
  }

  receive(data) {
    if (typeof data === "string") {
      const message = JSON.parse(data);
      if (message.event_type === "media") {
        this.offered(message.event);
      }
      return;
    }
    const bytes = new Uint8Array(data);
    if (bytes[0] === OP_PONG) {
      this.missed = 0;
    } else if (bytes[0] === OP_VIDEO && bytes.length > 2) {
      this.decode(bytes[1] === 1, bytes.subarray(2));
    }
  }

  offered(media) {
    const h264 = media?.video?.h264;
    if (!h264) {
      this.setProblem("No H.264 stream available on the device.");
      return;
    }
    this.codec = `avc1.${h264.profile_level_id}`;
    this.send({ event_type: "start", event: { type: "video", format: "h264" } });
  }

  decode(key, data) {
    if (!this.decoder) {
      if (!key) {
        return; // a decoder starts on a key frame
      }
      this.openDecoder();
    }
    if (this.decoder.decodeQueueSize > MAX_DECODE_QUEUE) {
      this.closeDecoder();
      this.send([OP_VIDEO]);
      return;
    }
    // The browser's clock as the timestamp (µs), as PiKVM's UI: frames are shown at once.
    const chunk = new EncodedVideoChunk({ type: key ? "key" : "delta", timestamp: Math.round(performance.now() * 1000), data });
    this.decoder.decode(chunk);
  }

  openDecoder() {
    const decoder = new VideoDecoder({
      output: (frame) => this.draw(frame),
      error: (err) => {
        // The decoder closes itself: the next key frame opens a new one; ask for it now.
        if (this.decoder === decoder) {
          this.decoder = null;
          this.setProblem(`H.264 decoding failed: ${err.message}`);
          this.send([OP_VIDEO]);
        }
      },
    });
    // No `description`: the frames are Annex-B, with their parameter sets in band.
    decoder.configure({ codec: this.codec, optimizeForLatency: true });
    this.decoder = decoder;
  }

  closeDecoder() {
    const decoder = this.decoder;
    this.decoder = null;
    if (decoder && decoder.state !== "closed") {
      decoder.close();
    }
  }

  draw(frame) {
    const { canvas } = this;
    if (canvas.width !== frame.displayWidth || canvas.height !== frame.displayHeight) {
      canvas.width = frame.displayWidth;
      canvas.height = frame.displayHeight;
    }
    this.ctx.drawImage(frame, 0, 0);
    frame.close();
    this.frames += 1;
    document.body.dataset.h264Frames = String(this.frames);
    this.setProblem("");
  }

  setProblem(text) {
    if (text !== this.problem) {
      this.problem = text;
      this.onChange();
    }
  }
}

/**
 * The video element that shows the screen, MJPEG or H.264, and the mode choice of the
 * video panel. `onChange()` when what the status line says may have changed.
 */
export class Stream {
  constructor(onChange) {
    this.img = $("stream");
    this.canvas = $("stream-canvas");
    this.onChange = onChange;
    this.player = new H264Player(this.canvas, onChange);
    this.running = false;
    this.mode = null; // what plays: "mjpeg", "media" or null
    this.features = null; // the streamer's, once its state came
    this.codec = undefined; // from /api/media: "avc1.…", null when it offers none
    this.decodable = undefined; // whether this browser's WebCodecs takes that codec
    for (const radio of document.querySelectorAll("input[name='video-mode']")) {
      radio.addEventListener("change", () => {
        localStorage.setItem(MODE_KEY, radio.value);
        this.choose();
      });
    }
  }

  /** The element the screen shows in now, for the mouse. */
  get element() {
    return this.mode === "media" ? this.canvas : this.img;
  }

  get wanted() {
    const stored = localStorage.getItem(MODE_KEY);
    return stored === "media" || stored === "mjpeg" ? stored : DEFAULT_MODE;
  }

  start() {
    this.running = true;
    this.features = null;
    this.streamerRunning = undefined;
    this.askMedia();
    this.choose();
  }

  stop() {
    this.running = false;
    this.play(null);
  }

  async askMedia() {
    this.codec = undefined;
    this.decodable = undefined;
    try {
      const { media } = await get("/media");
      const h264 = media?.video?.h264;
      this.codec = h264 ? `avc1.${h264.profile_level_id}` : null;
    } catch {
      this.codec = null; // an older daemon: no direct H.264
    }
    if (this.codec && window.VideoDecoder) {
      const { supported } = await VideoDecoder.isConfigSupported({ codec: this.codec, optimizeForLatency: true }).catch(
        () => ({ supported: false }),
      );
      this.decodable = Boolean(supported);
    }
    this.choose();
  }

  /** Why H.264 can't play here ("" when it can), or undefined while that is not known yet. */
  whyNotH264() {
    if (this.features && !this.features.h264) {
      return "No H.264 from the streamer.";
    }
    if (!window.VideoDecoder) {
      // WebCodecs exists only on secure pages (https, or http on the loopback).
      return window.isSecureContext
        ? "This browser can't decode H.264 (no WebCodecs)."
        : "H.264 needs HTTPS: browsers decode it only on secure pages.";
    }
    if (this.codec === null) {
      return "No H.264 stream available on the device.";
    }
    if (this.decodable === false) {
      return `This browser can't decode H.264 (${this.codec}).`;
    }
    return this.features && this.decodable ? "" : undefined;
  }

  /** Play what is wanted, once it is known whether H.264 can play. */
  choose() {
    if (!this.running) {
      return;
    }
    const why = this.whyNotH264();
    $("video-mode").disabled = why !== "";
    $("video-mode-why").textContent = why || "";
    if (why === undefined && this.wanted === "media") {
      return; // the first streamer state or /api/media is still to come
    }
    this.play(this.wanted === "media" && why === "" ? "media" : "mjpeg");
  }

  play(mode) {
    if (mode === this.mode) {
      return;
    }
    this.mode = mode;
    document.body.dataset.streamMode = mode || "";
    if (mode) {
      $(`video-mode-${mode}`).checked = true;
    }
    if (mode === "media") {
      this.player.start();
    } else {
      this.player.stop();
    }
    if (mode === "mjpeg") {
      this.reloadMjpeg();
    } else {
      this.img.removeAttribute("src"); // ends the MJPEG response
    }
    this.img.hidden = mode === "media";
    this.canvas.hidden = mode !== "media";
    this.onChange();
  }

  /** The streamer's state (`/api/ws` streamer event, merged). */
  streamer(state) {
    this.features = state.features;
    this.restarted(state.streamer);
    this.choose();
  }

  /**
   * A streamer that stopped and came back ended our MJPEG response: ask for a new one.
   * A quick restart may never show as stopped, so, as PiKVM's UI does, our response is also
   * known by the cookie it set (`stream_client=<key>/<id>`, ustreamer's), and asked for again
   * once the streamer's clients_stat, which listed that id, no longer does.
   * (H.264 needs none of this: its socket stays with kvmd while the streamer restarts.)
   */
  restarted(streamer) {
    const running = Boolean(streamer);
    if (this.mode === "mjpeg") {
      const clients = streamer?.stream?.clients_stat || {};
      const cookie = document.cookie.split("; ").find((c) => c.startsWith(`stream_client=${this.streamKey}/`));
      const id = cookie?.slice(cookie.indexOf("/") + 1);
      if (this.streamId === null && id in clients) {
        this.streamId = id;
      }
      const dropped = running && this.streamId !== null && !(this.streamId in clients);
      if ((running && this.streamerRunning === false) || dropped) {
        this.reloadMjpeg();
      }
    }
    this.streamerRunning = running;
  }

  /** The link came back after an outage: the MJPEG stream may have died with it. */
  relinked() {
    if (this.mode === "mjpeg") {
      this.reloadMjpeg();
    }
  }

  reloadMjpeg() {
    this.streamKey = Math.random().toString(36).slice(2);
    this.streamId = null;
    this.img.src = `/streamer/stream?key=${this.streamKey}`;
  }

  /** What the status line says about the video after the resolution. */
  describe(source) {
    if (this.mode !== "media") {
      return [`${source.captured_fps} fps`];
    }
    return this.player.problem ? ["H.264", this.player.problem] : ["H.264", `${this.player.fps} fps`];
  }
}
