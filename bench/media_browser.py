# SPDX-License-Identifier: GPL-3.0-or-later
"""A frame's publication in the H.264 memsink -> its decode in Chromium, by the console.

A daemon of its own reads a memsink the bench publishes into, as the latency daemon of
bench/media.py, but with real H.264: x264 pictures of a counter and a moving bar. Its
simulated streamer has no sinks (it must not publish into the same one) and says it has
H.264, so the console (kvmd/web) in Debian's headless Chromium plays direct H.264 as a
user's would: /api/media/ws into a WebCodecs VideoDecoder, drawn on its canvas.

Each access unit carries its number in an SEI NAL unit (user data, which decoders skip).
An init script wraps `VideoDecoder`: decode() reads the number of each chunk, and each
output is kept as (number, time) before the console's own callback draws it. Once the
console decodes, the bench publishes SECONDS of frames at the stream's rate, a key frame
first, each stamped right after its put(). Outputs are matched to frames by that number,
not by their order: a frame the daemon skips (see `lost`) would shift every later match
by a frame interval.

Both stamps are the machine's wall clock: Python's time.time(), and Chromium's
`performance.timeOrigin + performance.now()` (timeOrigin is epoch-based; now() counts
from it on a monotonic clock, in steps of 0.1 ms). What the two clocks read at the same
moment is measured too and printed beside the figures.
"""

import asyncio
import contextlib
import json
import statistics
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont
from playwright.async_api import Page, async_playwright

from bench import timed
from bench.daemon import running
from kvmd.media.encoder import H264Encoder
from kvmd.media.memsink import FORMAT_H264, Frame
from kvmd.media.publisher import MemsinkPublisher

CHROMIUM = Path("/usr/bin/chromium")
SIZE = (640, 480)
SECONDS = timed(10.0, 2.0)
# The whole step: the daemon's start, Chromium's, the login and the frames.
STEP_LIMIT = timed(60.0, 15.0)
# Decoded by the console before the measured frames: it plays.
WARM_FRAMES = 10
# From the login to those frames, within the step's limit.
DECODE_LIMIT = timed(20.0, 8.0)
# After the last put: the outputs still on their way.
TAIL = 1.0

# SEI user_data_unregistered (payload type 5): a UUID, then the number in base 9 written
# with the digits 1 to 9, so that no byte is 0 and the payload needs no emulation prevention.
TAG_UUID = bytes(range(0x41, 0x51))
TAG_DIGITS = 8
TAG_HEADER = b"\x00\x00\x00\x01\x06\x05" + bytes([len(TAG_UUID) + TAG_DIGITS])
# Coded slices and SEI: ours goes before the first of them, after the parameter sets.
TAGGED_BEFORE = (1, 5, 6)

DECODE_TIMES = """
(() => {
  const Original = window.VideoDecoder;
  const decoded = (window.benchDecoded = []); // [tag, epoch ms] of each output
  if (!Original) {
    return;
  }
  const UUID = "UUID";
  const numberOf = (chunk) => {
    const bytes = new Uint8Array(chunk.byteLength);
    chunk.copyTo(bytes);
    const text = String.fromCharCode(...bytes.subarray(0, 256));
    const at = text.indexOf(UUID);
    return at < 0 ? "" : text.substr(at + UUID.length, DIGITS);
  };
  window.VideoDecoder = class extends Original {
    constructor(init) {
      const pending = []; // [chunk timestamp, tag], in decode order
      const output = init.output;
      super({
        ...init,
        output: (frame) => {
          const now = performance.timeOrigin + performance.now();
          // Chunks before this one that gave no output were dropped.
          const at = pending.findIndex(([timestamp]) => timestamp === frame.timestamp);
          decoded.push([at < 0 ? "" : pending[at][1], now]);
          pending.splice(0, at + 1);
          output(frame); // the console's own: it draws the frame and closes it
        },
      });
      this.pending = pending;
    }

    decode(chunk) {
      this.pending.push([chunk.timestamp, numberOf(chunk)]);
      super.decode(chunk);
    }
  };
})();
""".replace("UUID", TAG_UUID.decode()).replace("DIGITS", str(TAG_DIGITS))
COUNT = "window.benchDecoded.length"
NOW = "performance.timeOrigin + performance.now()"


@dataclass(frozen=True)
class PictureStream:
    fps: int
    bitrate_kbps: int
    gop: int


def picture(number: int, font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> Image.Image:
    """A new picture each time: the number and a bar that moves across."""
    image = Image.new("RGB", SIZE, (16, 32, 48))
    draw = ImageDraw.Draw(image)
    x = number * 8 % SIZE[0]
    draw.rectangle((x, 0, x + 40, SIZE[1] - 1), fill=(230, 230, 230))
    draw.text((40, 40), f"frame {number}", fill=(255, 255, 0), font=font)
    return image


def tagged(access_unit: bytes, number: int) -> bytes:
    """The Annex-B access unit with an SEI NAL unit of `number` after its parameter sets."""
    start = access_unit.index(b"\x00\x00\x01")
    while access_unit[start + 3] & 0x1F not in TAGGED_BEFORE:
        # No 00 00 01 inside a NAL unit: emulation prevention forbids it.
        start = access_unit.index(b"\x00\x00\x01", start + 3)
    if start > 0 and access_unit[start - 1] == 0:
        start -= 1  # a 4-byte start code
    digits = "".join(str(1 + number // 9**i % 9) for i in reversed(range(TAG_DIGITS)))
    tag = TAG_HEADER + TAG_UUID + digits.encode() + b"\x80"
    return access_unit[:start] + tag + access_unit[start:]


def number_of(tag: str) -> int:
    """What tagged() wrote, back."""
    return int("".join(str(int(digit) - 1) for digit in tag), 9)


@dataclass(eq=False)
class PicturePublisher:
    """H.264 frames into the memsink from a worker thread, at the stream's rate."""

    sink: MemsinkPublisher
    stream: PictureStream
    encoder: H264Encoder = field(init=False)
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont = field(init=False)
    stop: threading.Event = field(default_factory=threading.Event)
    number: int = 0  # pictures encoded so far
    dropped: int = 0  # puts that failed (lock busy)

    def __post_init__(self) -> None:
        (fps, bitrate, gop) = (self.stream.fps, self.stream.bitrate_kbps, self.stream.gop)
        self.encoder = H264Encoder(SIZE, fps=fps, bitrate_kbps=bitrate, gop=gop)
        self.font = ImageFont.load_default(size=48)

    def run(self, frames: int) -> dict[int, float]:
        """Up to `frames`, a key frame first: the epoch time right after each put."""
        stamps: dict[int, float] = {}
        due = time.monotonic()
        for index in range(frames):
            # The daemon asks for a key frame when a client falls behind, as of ustreamer.
            key = index == 0 or self.sink.wants_key()
            number = self.number
            encoded = self.encoder.encode(picture(number, self.font), key=key)
            self.number += 1
            # Encoded ahead of its time: the puts keep the rate, the encode is not timed.
            if self.stop.wait(max(due - time.monotonic(), 0.0)):
                break
            now = time.monotonic()
            frame = Frame(
                data=tagged(encoded.data, number),
                width=SIZE[0],
                height=SIZE[1],
                format=FORMAT_H264,
                online=True,
                key=encoded.key,
                gop=self.stream.gop,
                grab_ts=now,
                encode_end_ts=now,
            )
            if self.sink.put(frame):
                stamps[number] = time.time()
            else:
                self.dropped += 1
            due = max(due + 1 / self.stream.fps, time.monotonic())
        return stamps


@contextlib.asynccontextmanager
async def publishing(
    publisher: PicturePublisher, frames: int
) -> AsyncIterator[asyncio.Future[dict[int, float]]]:
    """run(frames) in a thread; stopped on the way out, and waited for."""
    publisher.stop.clear()
    future = asyncio.get_running_loop().run_in_executor(None, publisher.run, frames)
    try:
        yield future
    finally:
        publisher.stop.set()
        await asyncio.wait([future])  # a frame's encode at most


async def clock_skew_ms(page: Page) -> tuple[float, float]:
    """Chromium's clock minus Python's, from the quickest of a few reads: (skew, ±)."""
    reads = []
    for _ in range(5):
        before = time.time()
        chromium = float(await page.evaluate(NOW)) / 1000
        after = time.time()
        reads.append((after - before, chromium - (before + after) / 2))
    (rtt, skew) = min(reads)
    return (skew * 1000, rtt / 2 * 1000)


async def log_in(page: Page, url: str) -> None:
    """As tests/e2e/webui.py's Visit.login, then until the console decodes H.264."""
    await page.goto(url + "/")
    await page.fill("#login-user", "admin")
    await page.fill("#login-passwd", "admin")
    await page.click("#login-submit")
    await page.wait_for_selector("body[data-ready='1']", state="attached")
    # Polled from here: wait_for_function evaluates a string, which the console's CSP forbids.
    deadline = time.monotonic() + DECODE_LIMIT
    while int(await page.evaluate(COUNT)) < WARM_FRAMES:
        if time.monotonic() > deadline:
            why = await page.inner_text("#video-mode-why")
            raise RuntimeError(f"Chromium decoded no H.264 in {DECODE_LIMIT:.0f} s ({why!r})")
        await asyncio.sleep(0.05)


async def measure(page: Page, url: str, publisher: PicturePublisher) -> dict[str, Any]:
    async with publishing(publisher, int(STEP_LIMIT * publisher.stream.fps)):
        await log_in(page, url)
        (skew, uncertainty) = await clock_skew_ms(page)
    # Straight on, at most a frame interval later: after a longer gap the daemon's memsink
    # reader sleeps longer between reads for a while (it learns the gap between frames).
    async with publishing(publisher, round(SECONDS * publisher.stream.fps)) as future:
        # Shielded: on a time-out the thread is stopped and waited for, not left behind.
        stamps = await asyncio.shield(future)
    deadline = time.monotonic() + TAIL
    outputs: dict[int, float] = {}
    while not stamps.keys() <= outputs.keys() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        decoded = await page.evaluate("window.benchDecoded")
        outputs = {number_of(tag): at for (tag, at) in decoded if tag}
    samples = sorted(outputs[n] - s * 1000 for (n, s) in stamps.items() if n in outputs)
    if not samples:
        raise RuntimeError("no published frame was decoded in Chromium")
    return {
        "browser_published": len(stamps),
        "browser_frames": len(samples),
        "browser_dropped": publisher.dropped,
        "browser_p50_ms": statistics.median(samples),
        "browser_p99_ms": samples[max(0, int(len(samples) * 0.99) - 1)],
        "browser_max_ms": samples[-1],
        "browser_skew_ms": skew,
        "browser_skew_within_ms": uncertainty,
    }


async def bench_browser(
    config: Path, folder: Path, port: int, sink: str, stream: PictureStream
) -> dict[str, Any]:
    """`config` is a daemon's whose `media.memsink.h264.sink` is `sink`, its streamer
    without sinks; it gets H.264 on here, which the console needs to play it."""
    if not CHROMIUM.exists():
        return {"browser_skipped": f"{CHROMIUM} is missing (Debian package `chromium`)"}
    data = json.loads(config.read_text())
    # The console plays H.264 only when the streamer has it: a bitrate and an --h264-sink
    # in its --help, which `python -m kvmd.sim.ustreamer --help` has.
    data["kvmd"]["streamer"]["h264_bitrate"] = {"default": stream.bitrate_kbps}
    config.write_text(json.dumps(data))
    publisher = PicturePublisher(MemsinkPublisher(sink, mode=0o600), stream)
    try:
        async with (
            asyncio.timeout(STEP_LIMIT),
            running(config, folder, port, folder / "kvmd.log") as (url, _),
            async_playwright() as playwright,
        ):
            # --no-sandbox: as tests/e2e, for root, where Chromium's sandbox won't start.
            browser = await playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=["--no-sandbox"]
            )
            page = await browser.new_page()
            page.set_default_timeout(STEP_LIMIT * 1000)  # the step's own limit comes first
            await page.add_init_script(DECODE_TIMES)
            return await measure(page, url, publisher)
    except TimeoutError:
        raise RuntimeError(f"the Chromium step took over {STEP_LIMIT:.0f} s") from None
    finally:
        publisher.sink.close(remove=True)


def print_browser(results: dict[str, Any]) -> None:
    if "browser_skipped" in results:
        skipped = results["browser_skipped"]
        print(f"    memsink → decoded in Chromium (WebCodecs): skipped, {skipped}")
        return
    (published, frames) = (results["browser_published"], results["browser_frames"])
    print(
        f"    memsink → decoded in Chromium (WebCodecs), {frames} frames:"
        f" p50 {results['browser_p50_ms']:.2f} ms, p99 {results['browser_p99_ms']:.2f} ms,"
        f" max {results['browser_max_ms']:.2f} ms; {published} x264 frames published in"
        f" {SECONDS:.0f} s, {published - frames} lost, {results['browser_dropped']} puts"
        f" dropped (frames matched by the number each carries); wall clocks Chromium - Python"
        f" {results['browser_skew_ms']:+.2f} ± {results['browser_skew_within_ms']:.2f} ms"
    )
