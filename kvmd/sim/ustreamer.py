# SPDX-License-Identifier: GPL-3.0-or-later
"""A stand-in for ustreamer: its HTTP API on a unix socket, showing the simulated target.

`python -m kvmd.sim.ustreamer --unix=PATH [--desired-fps=N] [--quality=Q] [--resolution=WxH]
[--screen=FILE] [--status=FILE]` serves `/state`, `/snapshot` and `/stream` (MJPEG). Each
frame shows a moving colour bar, a clock, the target's front panel from `--status` (written
by kvmd.sim.machine) and the text of `--screen`: what the simulated target's screen says
(the simulated USB host types there).
"""

import argparse
import asyncio
import contextlib
import ctypes
import io
import os
import signal
import time
from pathlib import Path

from aiohttp import web
from PIL import Image, ImageDraw, ImageFont

BOUNDARY = "boundarydonotcross"
_PR_SET_PDEATHSIG = 1


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
        self.frame = self._render(0)
        self.frame_time = time.time()
        self.new_frame = asyncio.Condition()
        self.clients = 0

    def _render(self, n: int) -> bytes:
        (width, height) = self.size
        image = Image.new("RGB", self.size, (16, 16, 48))
        draw = ImageDraw.Draw(image)
        bar = width // 8
        x = (n * 8) % (width + bar) - bar
        draw.rectangle((x, 0, x + bar, height // 6), fill=(240, 200, 40))
        draw.text(
            (10, height // 6 + 10),
            time.strftime("%Y-%m-%d %H:%M:%S") + f"  frame {n}  " + self._status_text(),
            fill="white",
        )
        draw.text(
            (10, height // 6 + 40), self._screen_text(), fill=(180, 255, 180), font=self._font
        )
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=self.quality)
        return out.getvalue()

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
        n = 0
        while True:
            n += 1
            frame = await asyncio.to_thread(self._render, n)
            async with self.new_frame:
                (self.frame, self.frame_time) = (frame, time.time())
                self.new_frame.notify_all()
            await asyncio.sleep(1 / self.fps)


def _headers(camera: Camera) -> dict[str, str]:
    (width, height) = camera.size
    return {
        "X-UStreamer-Online": "true",
        "X-UStreamer-Width": str(width),
        "X-UStreamer-Height": str(height),
        "X-Timestamp": f"{camera.frame_time:.6f}",
        "Cache-Control": "no-store",
    }


def make_app(camera: Camera) -> web.Application:
    async def state(_: web.Request) -> web.Response:
        (width, height) = camera.size
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
                        "captured_fps": camera.fps,
                    },
                    "stream": {
                        "queued_fps": camera.fps if camera.clients else 0,
                        "clients": camera.clients,
                        "clients_stat": {},
                    },
                },
            }
        )

    async def snapshot(_: web.Request) -> web.Response:
        return web.Response(body=camera.frame, content_type="image/jpeg", headers=_headers(camera))

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": f"multipart/x-mixed-replace;boundary={BOUNDARY}"}
        )
        await response.prepare(request)
        camera.clients += 1
        try:
            while True:
                async with camera.new_frame:
                    await camera.new_frame.wait()
                    frame = camera.frame
                head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(frame)}"
                await response.write(head.encode() + b"\r\n\r\n" + frame + b"\r\n")
        except ConnectionError:
            return response
        finally:
            camera.clients -= 1

    app = web.Application()
    app.router.add_get("/state", state)
    app.router.add_get("/snapshot", snapshot)
    app.router.add_get("/stream", stream)
    return app


async def serve(args: argparse.Namespace) -> None:
    (width, height) = (int(v) for v in args.resolution.split("x"))
    camera = Camera((width, height), args.desired_fps, args.quality, args.screen, args.status)
    runner = web.AppRunner(make_app(camera), access_log=None)
    await runner.setup()
    _remove(args.unix)
    await web.UnixSite(runner, args.unix).start()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    async with asyncio.TaskGroup() as tasks:
        render = tasks.create_task(camera.run())
        await stop.wait()
        render.cancel()
    await runner.cleanup()
    _remove(args.unix)


def _remove(path: str) -> None:
    Path(path).unlink(missing_ok=True)


def _die_with_parent() -> None:
    # Like ustreamer's --exit-on-parent-death: the kernel sends SIGTERM when kvmd dies.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() == 1:  # the parent died before prctl took effect
        raise SystemExit(0)


def main() -> None:
    parser = argparse.ArgumentParser(prog="kvmd-sim-ustreamer")
    parser.add_argument("--unix", required=True)
    parser.add_argument("--desired-fps", type=int, default=30)
    parser.add_argument("--quality", type=int, default=80)
    parser.add_argument("--resolution", default="640x480")
    parser.add_argument("--screen", type=Path, default=None)
    parser.add_argument("--status", type=Path, default=None)
    args = parser.parse_args()
    _die_with_parent()
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
