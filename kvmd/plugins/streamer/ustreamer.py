# SPDX-License-Identifier: GPL-3.0-or-later
"""ustreamer, run while somebody watches: the policy, its HTTP API, and the published state."""

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import msgspec

from kvmd.bus import Bus, Topic
from kvmd.errors import UnavailableError, ValidatorError
from kvmd.info.collect import run_command
from kvmd.plugins.streamer.base import (
    ClientsState,
    MinMax,
    SavedSnapshot,
    Snapshot,
    SnapshotState,
    StreamerApp,
    StreamerBackend,
    StreamerFeatures,
    StreamerH264NotSupported,
    StreamerLimits,
    StreamerParams,
    StreamerQualityNotSupported,
    StreamerResolutionNotSupported,
    StreamerState,
)
from kvmd.plugins.streamer.config import UstreamerConfig
from kvmd.supervisor.process import ManagedProcess, ProcessOptions

logger = logging.getLogger(__name__)

# The snapshot headers worth passing on to clients (OCR and VNC-style tools read them).
_PASSED_HEADERS = (
    "Cache-Control",
    "Pragma",
    "Expires",
    "Access-Control-Allow-Origin",
    "X-Timestamp",
)
# While the streamer starts, look for its socket this often.
_STARTUP_POLL = 0.05


class _StateReply(msgspec.Struct):
    result: msgspec.Raw


# The parts of ustreamer's /state that say which parameters it runs with.
class _Resolution(msgspec.Struct):
    width: int
    height: int


class _Source(msgspec.Struct):
    desired_fps: int
    resolution: _Resolution


class _Encoder(msgspec.Struct):
    quality: int


class _H264(msgspec.Struct):
    bitrate: int
    gop: int


class _Running(msgspec.Struct):
    source: _Source
    encoder: _Encoder
    h264: _H264 | None = None


# The first ustreamer with memsink protocol 10, the one kvmd.media.memsink reads.
_MEMSINK_10 = (6, 62)
# ustreamer 6's memsink flags, which builds without the sinks refuse.
_SINK_FLAGS = ("--h264-", "--jpeg-sink", "--raw-sink", "--sink")


class Ustreamer(StreamerBackend):
    def __init__(self, config: UstreamerConfig, bus: Bus) -> None:
        super().__init__(config, bus)
        self._config = config
        self._features = StreamerFeatures(
            quality=config.quality > 0,
            resolution=bool(config.resolution.default),
            h264=config.h264_bitrate.default > 0,
        )
        self._params = self._default_params()
        self._process = ManagedProcess(
            ProcessOptions(
                name="streamer",
                stop_timeout=config.stop_timeout,
                restart_delay_min=config.restart_delay_min,
                restart_delay_max=config.restart_delay_max,
                stable_after=config.stable_after,
                reset_delay=config.reset_delay,
            ),
            self._argv,
            before=self._pre_start,
            after=self._post_stop,
        )
        self._clients = 0
        self._holds = 0
        self._wake = asyncio.Event()
        self._ustreamer: msgspec.Raw | None = None
        self._running: _Running | None = None
        self._saved: Snapshot | None = None
        self._session: aiohttp.ClientSession | None = None
        self._no_sinks = False  # the program has no memsinks: their flags are left out

    def _default_params(self) -> StreamerParams:
        config = self._config
        features = self._features
        return StreamerParams(
            desired_fps=config.desired_fps.default,
            quality=config.quality if features.quality else None,
            resolution=config.resolution.default if features.resolution else None,
            h264_bitrate=config.h264_bitrate.default if features.h264 else None,
            h264_gop=config.h264_gop.default if features.h264 else None,
        )

    def _argv(self) -> list[str]:
        argv = self._config.full_cmd()
        if self._no_sinks:
            argv = [arg for arg in argv if not arg.startswith(_SINK_FLAGS)]
        return self._format(argv)

    async def _pre_start(self) -> None:
        await self._run_hook("pre-start", self._format(self._config.pre_start()))

    async def _post_stop(self) -> None:
        await self._run_hook("post-stop", self._format(self._config.post_stop()))

    async def _run_hook(self, what: str, argv: list[str]) -> None:
        if argv:
            logger.info("Running the streamer's %s command: %s", what, " ".join(argv))
            if await run_command(argv) is None:
                logger.warning("The streamer's %s command failed: %s", what, " ".join(argv))

    def _format(self, argv: list[str]) -> list[str]:
        params = self._params
        values = {
            "unix": self._config.unix,
            "process_name_prefix": self._config.process_name_prefix,
            "quality": params.quality if params.quality is not None else self._config.quality,
            "desired_fps": params.desired_fps,
            "resolution": params.resolution or "",
            "h264_bitrate": params.h264_bitrate or 0,
            "h264_gop": params.h264_gop or 0,
        }
        return [arg.format_map(values) for arg in argv]

    def state(self) -> StreamerState:
        config = self._config
        features = self._features
        saved = self._saved
        return StreamerState(
            features=features,
            limits=StreamerLimits(
                desired_fps=MinMax(min=config.desired_fps.min, max=config.desired_fps.max),
                available_resolutions=config.resolution.available if features.resolution else None,
                h264_bitrate=MinMax(min=config.h264_bitrate.min, max=config.h264_bitrate.max)
                if features.h264
                else None,
                h264_gop=MinMax(min=config.h264_gop.min, max=config.h264_gop.max)
                if features.h264
                else None,
            ),
            params=self._params,
            applied=self._applied(),
            snapshot=SnapshotState(
                saved=None
                if saved is None
                else SavedSnapshot(online=saved.online, width=saved.width, height=saved.height)
            ),
            streamer=self._ustreamer,
        )

    def _applied(self) -> StreamerParams:
        params = self._params
        running = self._running
        if running is None:
            return params
        features = self._features
        source = running.source
        h264 = running.h264 if features.h264 else None
        return StreamerParams(
            desired_fps=source.desired_fps,
            quality=running.encoder.quality if features.quality else None,
            resolution=f"{source.resolution.width}x{source.resolution.height}"
            if features.resolution
            else None,
            h264_bitrate=params.h264_bitrate if h264 is None else h264.bitrate,
            h264_gop=params.h264_gop if h264 is None else h264.gop,
        )

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.UnixConnector(path=self._config.unix)
        )
        if self._features.h264:
            await self._check_h264()
        self._publish()

    async def _check_h264(self) -> None:
        """H.264 is configured: a ustreamer without an H.264 sink must still show MJPEG.

        Debian's ustreamer 4.9 is built without one (it came with OMX), and refuses the
        flags, so they are left out and H.264 is reported off instead of no video at all.
        """
        # The program with the words before its first --option (`python -m module` too).
        cmd = self._config.cmd
        words = next((i for (i, arg) in enumerate(cmd) if arg.startswith("--")), len(cmd))
        program = " ".join(cmd[:words])
        usage = await run_command([*cmd[:words], "--help"])
        if usage is None:
            return  # it can't even start (the start says why)
        if b"--h264-sink" not in usage:
            why = "has no H.264 sink"
        else:
            version = _ustreamer_version(await run_command([*cmd[:words], "--version"]))
            if version is None or version >= _MEMSINK_10:
                return
            # 6.10-6.61 write memsink protocol 7 or 8, which the reader refuses.
            why = f"is ustreamer {version[0]}.{version[1]}, whose H.264 sink kvmd can't read"
        logger.warning(
            "%s %s (direct H.264 needs ustreamer 6.62 or newer); "
            "H.264 is off and the streamer runs without its memsink flags",
            program,
            why,
        )
        self._no_sinks = True
        self._features = StreamerFeatures(
            quality=self._features.quality, resolution=self._features.resolution, h264=False
        )
        self._params = self._default_params()

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._process.run())
            tasks.create_task(self._decide())
            tasks.create_task(self._poll_state())
            tasks.create_task(self._count_clients())

    async def describe(self) -> StreamerApp:
        program = self._config.cmd[0]
        version = await run_command([program, "--version"])
        features = await run_command([program, "--features"])
        return StreamerApp(
            app=Path(program).name,
            version=(version or b"").decode(errors="replace").strip(),
            features=_parse_features(features or b""),
        )

    # ----- when to run

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[str]:
        self._holds += 1
        self._wake.set()
        try:
            yield self._config.unix
        finally:
            self._holds -= 1
            self._wake.set()

    async def _count_clients(self) -> None:
        async with self._bus.subscribe() as subscription:
            while True:
                for topic, state in await subscription.get_batch():
                    if topic is Topic.CLIENTS and isinstance(state, ClientsState):
                        self._clients = state.count
                        self._wake.set()

    async def _decide(self) -> None:
        """Run while watched; stop `shutdown_delay` after the last watcher leaves."""
        deadline: float | None = None
        while True:
            self._wake.clear()
            now = time.monotonic()
            if self._config.forever or self._clients > 0 or self._holds > 0:
                deadline = None
                self._process.set_wanted(True)
            elif self._process.wanted:
                deadline = deadline or now + self._config.shutdown_delay
                if now >= deadline:
                    deadline = None
                    self._process.set_wanted(False)
                    continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(None if deadline is None else deadline - now):
                    await self._wake.wait()

    # ----- what it says

    async def _poll_state(self) -> None:
        while True:
            state = await self._fetch_state() if self._process.pid else None
            if (state is None) != (self._ustreamer is None) or (
                state is not None
                and self._ustreamer is not None
                and bytes(state) != bytes(self._ustreamer)
            ):
                self._ustreamer = state
                self._running = _decode_running(state)
                self._publish()
            starting = self._process.pid is not None and state is None
            await asyncio.sleep(_STARTUP_POLL if starting else self._config.state_poll)

    async def _fetch_state(self) -> msgspec.Raw | None:
        try:
            body = await self._get("/state", self._config.timeout)
            return msgspec.json.decode(body[0], type=_StateReply).result
        except (aiohttp.ClientError, TimeoutError, msgspec.DecodeError):
            return None

    async def _get(self, path: str, limit: float) -> tuple[bytes, dict[str, str]]:
        if self._session is None:
            raise aiohttp.ClientConnectionError("not started")
        client_timeout = aiohttp.ClientTimeout(total=limit)
        async with self._session.get(f"http://localhost{path}", timeout=client_timeout) as response:
            response.raise_for_status()
            return (await response.read(), dict(response.headers))

    # ----- operations

    async def set_params(self, params: StreamerParams) -> None:
        new = self._check_params(params)
        if new != self._params:
            self._params = new
            self._publish()
            self._process.restart()

    def _check_params(self, params: StreamerParams) -> StreamerParams:
        config = self._config
        features = self._features
        if params.quality is not None and not features.quality:
            raise StreamerQualityNotSupported
        if params.resolution is not None and not features.resolution:
            raise StreamerResolutionNotSupported
        if (params.h264_bitrate is not None or params.h264_gop is not None) and not features.h264:
            raise StreamerH264NotSupported
        fps = config.desired_fps
        if not fps.min <= params.desired_fps <= fps.max:
            raise ValidatorError(
                f"The argument {params.desired_fps} is not a valid desired_fps: "
                f"must be {fps.min}..{fps.max}"
            )
        if params.resolution is not None and params.resolution not in config.resolution.available:
            raise ValidatorError(f"The argument {params.resolution!r} is not a valid resolution")
        _check_range(
            "h264_bitrate", params.h264_bitrate, config.h264_bitrate.min, config.h264_bitrate.max
        )
        _check_range("h264_gop", params.h264_gop, config.h264_gop.min, config.h264_gop.max)
        old = self._params
        return StreamerParams(
            desired_fps=params.desired_fps,
            quality=params.quality if params.quality is not None else old.quality,
            resolution=params.resolution if params.resolution is not None else old.resolution,
            h264_bitrate=params.h264_bitrate
            if params.h264_bitrate is not None
            else old.h264_bitrate,
            h264_gop=params.h264_gop if params.h264_gop is not None else old.h264_gop,
        )

    @property
    def params(self) -> StreamerParams:
        return self._params

    async def reset(self) -> None:
        self._process.restart()

    async def snapshot(self, *, allow_offline: bool, save: bool, load: bool) -> Snapshot:
        if load:
            if self._saved is None:
                raise UnavailableError
            return self._saved
        async with self.hold():
            snapshot = await self._take_snapshot()
        if not snapshot.online and not allow_offline:
            raise UnavailableError
        if save:
            self._saved = snapshot
            self._publish()
        return snapshot

    async def _take_snapshot(self) -> Snapshot:
        # The streamer may be starting for this very request: retry until its socket answers.
        deadline = time.monotonic() + self._config.snapshot_timeout
        while True:
            try:
                (jpeg, headers) = await self._get(
                    "/snapshot", max(deadline - time.monotonic(), 0.1)
                )
                return _to_snapshot(jpeg, headers)
            except (aiohttp.ClientError, TimeoutError) as exc:
                if time.monotonic() >= deadline:
                    logger.warning("No snapshot: %s", str(exc) or type(exc).__name__)
                    raise UnavailableError from None
            await asyncio.sleep(_STARTUP_POLL)

    def forget_snapshot(self) -> None:
        self._saved = None
        self._publish()


def _decode_running(state: msgspec.Raw | None) -> _Running | None:
    if state is None:
        return None
    try:
        return msgspec.json.decode(state, type=_Running)
    except msgspec.DecodeError:
        logger.warning("The streamer's /state lacks its parameters: %s", bytes(state)[:200])
        return None


def _check_range(name: str, value: int | None, low: int, high: int) -> None:
    if value is not None and not low <= value <= high:
        raise ValidatorError(f"The argument {value} is not a valid {name}: must be {low}..{high}")


def _to_snapshot(jpeg: bytes, headers: dict[str, str]) -> Snapshot:
    passed = {
        k: v for (k, v) in headers.items() if k.startswith("X-UStreamer-") or k in _PASSED_HEADERS
    }
    return Snapshot(
        jpeg=jpeg,
        online=headers.get("X-UStreamer-Online", "").lower() == "true",
        width=_int(headers.get("X-UStreamer-Width")),
        height=_int(headers.get("X-UStreamer-Height")),
        headers=passed,
    )


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def _parse_features(text: bytes) -> dict[str, bool]:
    features = {}
    for line in text.decode(errors="replace").splitlines():
        (sign, _, name) = line.strip().partition(" ")
        if sign in "+-" and sign and name:
            features[name] = sign == "+"
    return features


def _ustreamer_version(answer: bytes | None) -> tuple[int, int] | None:
    """The (major, minor) of ustreamer's `--version` ("6.62"), or None.

    None for anything else too: the simulated streamer answers kvmd's own, below 1.0.
    """
    found = re.match(rb"\s*(\d+)\.(\d+)", answer or b"")
    if found is None or int(found[1]) < 4:
        return None
    return (int(found[1]), int(found[2]))
