# SPDX-License-Identifier: GPL-3.0-or-later
"""A stand-in for ustreamer: its HTTP API on a unix socket, showing the simulated target.

`kvmd-sim-ustreamer --unix=PATH [--desired-fps=N] [--quality=Q] [--resolution=WxH]
[--screen=FILE] [--status=FILE]` (testenv/kvmd-sim-ustreamer runs
`python -m kvmd.sim.ustreamer`) serves `/state`, `/snapshot` and `/stream` (MJPEG). Each
frame shows a moving colour bar, a clock, the target's front panel from `--status` (written
by kvmd.sim.machine) and the text of `--screen`: what the simulated target's screen says
(the simulated USB host types there). `--version` and `--features` answer as ustreamer's
do, since kvmd asks the streamer program for them.

`/stream` behaves as ustreamer's (kvmd.sim.mjpeg): the `stream_client` cookie, the query
options and the per-client `clients_stat` of `/state`, which the PiKVM web UI needs to count
its video as live.
"""

import argparse
import asyncio
import contextlib
import ctypes
import io
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web
from PIL import Image, ImageDraw, ImageFont

import kvmd
from kvmd.media.encoder import H264Encoder
from kvmd.media.memsink import FORMAT_H264, FORMAT_JPEG
from kvmd.media.memsink import Frame as SinkFrame
from kvmd.media.publisher import MemsinkPublisher
from kvmd.sim.mjpeg import BOUNDARY, NO_CACHE, FpsMeter, Frame, StreamClient, frame_headers

_PR_SET_PDEATHSIG = 1
# What `ustreamer --features` lists, and which of it the simulation has: it dies with its
# parent (prctl), and has no GPIO, systemd socket, thread names or process title.
FEATURES = {
    "WITH_GPIO": False,
    "WITH_SYSTEMD": False,
    "WITH_PTHREAD_NP": False,
    "WITH_SETPROCTITLE": False,
    "HAS_PDEATHSIG": True,
}


class Camera:
    """Renders one JPEG per frame period, shared by every client."""

    def __init__(
        self,
        size: tuple[int, int],
        fps: int,
        quality: int,
        screen: Path | None,
        status: Path | None = None,
    ) -> None:
        self.size = size
        self.fps = max(fps, 1)
        self.quality = quality
        self._screen = screen
        self._status = status
        # Large enough for OCR of the simulated screen to work as it does on a real one.
        self._font = ImageFont.load_default(size=max(size[1] // 16, 10))
        (self.frame, self.image) = self._render(0)
        self.new_frame = asyncio.Condition()
        self.clients: dict[int, StreamClient] = {}
        # Frames made in the last second, and those of them that went to a client: what
        # ustreamer reports as captured_fps and queued_fps.
        self.captured = FpsMeter()
        self.queued = FpsMeter()

    def _render(self, number: int) -> tuple[Frame, Image.Image]:
        grabbed = time.monotonic()
        (width, height) = self.size
        image = Image.new("RGB", self.size, (16, 16, 48))
        draw = ImageDraw.Draw(image)
        bar = width // 8
        x = (number * 8) % (width + bar) - bar
        draw.rectangle((x, 0, x + bar, height // 6), fill=(240, 200, 40))
        draw.text(
            (10, height // 6 + 10),
            time.strftime("%Y-%m-%d %H:%M:%S") + f"  frame {number}  " + self._status_text(),
            fill="white",
        )
        draw.text(
            (10, height // 6 + 40), self._screen_text(), fill=(180, 255, 180), font=self._font
        )
        out = io.BytesIO()
        encoding = time.monotonic()
        image.save(out, format="JPEG", quality=self.quality)
        frame = Frame(
            jpeg=out.getvalue(),
            number=number,
            size=self.size,
            real_time=time.time(),
            grabbed=grabbed,
            encoding=encoding,
            encoded=time.monotonic(),
        )
        return (frame, image)

    def _screen_text(self) -> str:
        if self._screen is None:
            return "simulated target: no screen file"
        try:
            return self._screen.read_text()[-2000:]
        except OSError:
            return "simulated target: powered off"

    def _status_text(self) -> str:
        # The target's front panel (kvmd.sim.machine): power and HDD as a monitor can't show.
        if self._status is None:
            return ""
        try:
            return self._status.read_text().strip()
        except OSError:
            return "target: no front panel"

    async def run(self) -> None:
        # Frames are due at fixed times, so that the rate is `fps` however long one takes.
        period = 1 / self.fps
        due = time.monotonic()
        number = 0
        while True:
            number += 1
            (frame, image) = await asyncio.to_thread(self._render, number)
            async with self.new_frame:
                (self.frame, self.image) = (frame, image)
                self.new_frame.notify_all()
            self.captured.count(time.monotonic())
            if self.clients:
                self.queued.count(time.monotonic())
            else:
                self.queued = FpsMeter()
            # A late frame moves the schedule instead of rushing to catch up.
            due = max(due + period, time.monotonic())
            await asyncio.sleep(due - time.monotonic())

    async def next_frame(self, after: int) -> Frame:
        async with self.new_frame:
            await self.new_frame.wait_for(lambda: self.frame.number > after)
            return self.frame


class Sinks:
    """`--jpeg-sink` and `--h264-sink`: the camera's pictures in memsinks, as ustreamer's.

    H.264 is encoded only while the sink has clients, an IDR first and whenever one asks.
    """

    def __init__(self, args: argparse.Namespace, camera: Camera) -> None:
        self.jpeg = _publisher(args.jpeg_sink, args.jpeg_sink_mode)
        self.h264 = _publisher(args.h264_sink, args.h264_sink_mode)
        self._remove = {"jpeg": args.jpeg_sink_rm, "h264": args.h264_sink_rm}
        self.encoder = None
        if self.h264 is not None:
            self.encoder = H264Encoder(
                camera.size, fps=camera.fps, bitrate_kbps=args.h264_bitrate, gop=args.h264_gop
            )
        self.h264_fps = FpsMeter()
        self.encode_seconds = 0.0  # CPU time spent encoding H.264, for the bench
        self._idle = True

    async def run(self, camera: Camera) -> None:
        if self.jpeg is None and self.h264 is None:
            return
        frame = camera.frame
        while True:
            frame = await camera.next_frame(after=frame.number)
            await asyncio.to_thread(self._publish, frame, camera.image)

    def _publish(self, frame: Frame, image: Image.Image) -> None:
        (width, height) = frame.size
        if self.jpeg is not None and self.jpeg.has_clients():
            jpeg = SinkFrame(
                data=frame.jpeg,
                format=FORMAT_JPEG,
                key=False,
                gop=0,
                grab_ts=frame.grabbed,
                encode_end_ts=frame.encoded,
                width=width,
                height=height,
                online=True,
            )
            self.jpeg.put(jpeg)
        if self.h264 is None or self.encoder is None:
            return
        if not self.h264.has_clients():
            self._idle = True  # the encoder stops; it starts again from an IDR
            return
        encoded = self.encoder.encode(image, key=self._idle or self.h264.wants_key())
        self._idle = False
        self.encode_seconds += encoded.seconds
        h264 = SinkFrame(
            data=encoded.data,
            format=FORMAT_H264,
            key=encoded.key,
            gop=self.encoder.gop,
            grab_ts=frame.grabbed,
            encode_end_ts=0.0,
            width=width,
            height=height,
            online=True,
        )
        if self.h264.put(h264):
            self.h264_fps.count(time.monotonic())

    def state(self) -> dict[str, object]:
        """What ustreamer's /state adds for its sinks."""
        sinks = {
            name: {"has_clients": sink.has_clients()}
            for (name, sink) in (("jpeg", self.jpeg), ("h264", self.h264))
            if sink is not None
        }
        state: dict[str, object] = {"sinks": sinks}
        if self.encoder is not None:
            state["h264"] = {
                "bitrate": self.encoder.bitrate_kbps,
                "gop": self.encoder.gop,
                "online": True,
                "fps": self.h264_fps.fps,
            }
        return state

    def close(self) -> None:
        for name, sink in (("jpeg", self.jpeg), ("h264", self.h264)):
            if sink is not None:
                sink.close(remove=self._remove[name])


def _publisher(name: str, mode: str) -> MemsinkPublisher | None:
    return MemsinkPublisher(name, mode=int(mode, 8)) if name else None


def make_app(camera: Camera, sinks: Sinks | None = None) -> web.Application:
    async def state(_: web.Request) -> web.Response:
        (width, height) = camera.size
        clients = list(camera.clients.values())
        return web.json_response(
            {
                "ok": True,
                "result": {
                    "instance_id": "",
                    "encoder": {"type": "CPU", "quality": camera.quality},
                    "source": {
                        "resolution": {"width": width, "height": height},
                        "online": True,
                        "desired_fps": camera.fps,
                        "captured_fps": camera.captured.fps,
                    },
                    "stream": {
                        "queued_fps": camera.queued.fps,
                        "clients": len(clients),
                        "clients_stat": {client.hex_id: client.stat() for client in clients},
                    },
                    **(sinks.state() if sinks is not None else {}),
                },
            }
        )

    async def snapshot(_: web.Request) -> web.Response:
        frame = camera.frame
        headers = {**NO_CACHE, **frame_headers(frame, "Timestamp")}
        return web.Response(body=frame.jpeg, content_type="image/jpeg", headers=headers)

    async def stream(request: web.Request) -> web.StreamResponse:
        client = StreamClient.from_query(request.query)
        response = web.StreamResponse(
            headers={
                **NO_CACHE,
                "Set-Cookie": client.cookie(),
                "Content-Type": f"multipart/x-mixed-replace;boundary={BOUNDARY}",
            }
        )
        camera.clients[client.id] = client
        try:
            await response.prepare(request)
            await response.write(client.opening())
            frame = camera.frame
            while True:
                await response.write(client.part(frame))
                frame = await camera.next_frame(after=frame.number)
        except ConnectionError:
            return response  # the viewer left
        finally:
            del camera.clients[client.id]

    app = web.Application()
    app.router.add_get("/state", state)
    app.router.add_get("/snapshot", snapshot)
    app.router.add_get("/stream", stream)
    return app


async def serve(args: argparse.Namespace) -> None:
    (width, height) = (int(v) for v in args.resolution.split("x"))
    camera = Camera((width, height), args.desired_fps, args.quality, args.screen, args.status)
    sinks = Sinks(args, camera)
    # Viewers never finish on their own: like ustreamer, drop them at once when told to stop.
    runner = web.AppRunner(make_app(camera, sinks), access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    _remove(args.unix)
    await web.UnixSite(runner, args.unix).start()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    async with asyncio.TaskGroup() as tasks:
        render = tasks.create_task(camera.run())
        publish = tasks.create_task(sinks.run(camera))
        await stop.wait()
        render.cancel()
        publish.cancel()
    await runner.cleanup()
    sinks.close()
    _remove(args.unix)


def _remove(path: str) -> None:
    Path(path).unlink(missing_ok=True)


def _die_with_parent() -> None:
    # Like ustreamer's --exit-on-parent-death: the kernel sends SIGTERM when kvmd dies.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() == 1:  # the parent died before prctl took effect
        raise SystemExit(0)


class _PrintFeatures(argparse.Action):
    """`--features`: one `+ NAME` or `- NAME` line each, then exit, as ustreamer does."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the features and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        for name, has in FEATURES.items():
            print(f"{'+' if has else '-'} {name}")  # noqa: T201 - the answer kvmd reads
        parser.exit()


def streamer_section(unix: str, *args: str, **fields: object) -> dict[str, object]:
    """A `kvmd.streamer` config section that runs this simulated streamer (tests, benches)."""
    cmd = [sys.executable, "-m", "kvmd.sim.ustreamer", "--unix={unix}", *args]
    return {"type": "ustreamer", "unix": unix, **fields, "cmd": cmd}


def main() -> None:
    parser = argparse.ArgumentParser(prog="kvmd-sim-ustreamer")
    parser.add_argument("--version", action="version", version=kvmd.__version__)
    parser.add_argument("--features", action=_PrintFeatures)
    parser.add_argument("--unix", required=True)
    parser.add_argument("--desired-fps", type=int, default=30)
    parser.add_argument("--quality", type=int, default=80)
    parser.add_argument("--resolution", default="640x480")
    parser.add_argument("--screen", type=Path, default=None)
    parser.add_argument("--status", type=Path, default=None)
    # ustreamer 6's memsinks (kvmd-media's and Janus's source), in /dev/shm.
    parser.add_argument("--jpeg-sink", default="")
    parser.add_argument("--jpeg-sink-mode", default="660")
    parser.add_argument("--jpeg-sink-rm", action="store_true")
    parser.add_argument("--h264-sink", default="")
    parser.add_argument("--h264-sink-mode", default="660")
    parser.add_argument("--h264-sink-rm", action="store_true")
    parser.add_argument("--h264-bitrate", type=int, default=5000)
    parser.add_argument("--h264-gop", type=int, default=30)
    args = parser.parse_args()
    _die_with_parent()
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
