# SPDX-License-Identifier: GPL-3.0-or-later
"""The websocket hub: state events out, keyboard and mouse in (API.md §4)."""

import asyncio
import contextlib
import logging

from aiohttp import WSCloseCode, WSMsgType, web

from kvmd.auth.principal import Permission, Principal
from kvmd.bus import Bus, Subscription, Topic
from kvmd.errors import KvmdError
from kvmd.plugins.hid.base import HidBackend
from kvmd.plugins.hid.keys import KEYS, KEYS_BY_EVDEV, MOUSE_BUTTONS_BY_EVDEV
from kvmd.plugins.streamer.base import ClientsState
from kvmd.server.events import LOOP_CURRENT, LOOP_LEGACY, PONG, EventRenderer
from kvmd.server.ws_input import (
    ButtonInput,
    CodeInput,
    Input,
    KeyInput,
    MalformedInputError,
    MoveInput,
    Ping,
    RelativeInput,
    parse_binary,
    parse_text,
    squash_deltas,
)

logger = logging.getLogger(__name__)

BINARY_PONG = b"\xff"


class WsHub:
    def __init__(self, bus: Bus, hid: HidBackend, renderer: EventRenderer) -> None:
        self._bus = bus
        self._hid = hid
        self._renderer = renderer
        self._sockets: set[web.WebSocketResponse] = set()
        self._stream_clients = 0

    def start(self) -> None:
        self._publish_clients()

    @property
    def stream_clients(self) -> int:
        return self._stream_clients

    def _publish_clients(self) -> None:
        self._bus.publish(Topic.CLIENTS, ClientsState(count=self._stream_clients))

    async def serve(
        self, ws: web.WebSocketResponse, principal: Principal, *, stream: bool, legacy: bool
    ) -> None:
        """Run one prepared websocket until it closes."""
        # Only a principal that may see the video counts as a watcher (SECURITY.md §3.6).
        stream = stream and principal.allows(Permission.VIDEO)
        self._sockets.add(ws)
        self._stream_clients += stream
        self._publish_clients()
        # Keys held by a client that vanished must not stay down on the target.
        self._release_hid()
        try:
            async with self._bus.subscribe() as subscription, asyncio.TaskGroup() as tasks:
                writer = tasks.create_task(self._write(ws, subscription, legacy=legacy))
                await _Reader(ws, principal, self._hid).run()
                writer.cancel()
        finally:
            self._sockets.discard(ws)
            self._stream_clients -= stream
            self._publish_clients()
            self._release_hid()

    def _release_hid(self) -> None:
        try:
            self._hid.release_all()
        except KvmdError as exc:
            logger.warning("Can't release HID keys: %s", exc)

    async def _write(
        self, ws: web.WebSocketResponse, subscription: Subscription, *, legacy: bool
    ) -> None:
        last: dict[str, bytes] = {}
        first = True
        with contextlib.suppress(ConnectionError):
            while True:
                batch = await subscription.get_batch()
                frames = [LOOP_CURRENT] if first and not legacy else []
                for topic, state in batch:
                    for key, frame in self._renderer.render(topic, state, legacy=legacy):
                        if last.get(key) != frame:
                            last[key] = frame
                            frames.append(frame)
                if first and legacy:
                    frames.append(LOOP_LEGACY)  # PiKVM 4.0 clients wait for it as "burst done"
                first = False
                for frame in frames:
                    await ws.send_frame(frame, WSMsgType.TEXT)

    async def close_all(self) -> None:
        for ws in list(self._sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"Server shutdown")


class _Reader:
    """Reads client messages; a malformed one is dropped and logged once per connection."""

    def __init__(self, ws: web.WebSocketResponse, principal: Principal, hid: HidBackend) -> None:
        self._ws = ws
        self._principal = principal
        self._hid = hid
        self._warned: set[str] = set()

    async def run(self) -> None:
        async for msg in self._ws:
            try:
                if msg.type is WSMsgType.TEXT:
                    event = parse_text(msg.data)
                elif msg.type is WSMsgType.BINARY:
                    event = parse_binary(msg.data)
                else:
                    continue
            except MalformedInputError as exc:
                self._warn_once("malformed", "Dropped a malformed websocket message: %s", exc)
                continue
            await self._apply(event)

    def _warn_once(self, what: str, msg: str, *args: object) -> None:
        if what not in self._warned:
            self._warned.add(what)
            logger.warning(msg, *args)

    async def _apply(self, event: Input) -> None:
        if isinstance(event, Ping):
            if event.binary:
                await self._ws.send_bytes(BINARY_PONG)
            else:
                await self._ws.send_frame(PONG, WSMsgType.TEXT)
            return
        # Checked on every message, so a revoked right stops input at once.
        if not self._principal.allows(Permission.HID):
            self._warn_once(
                "input", "Dropped input from %s: no 'hid' permission", self._principal.label
            )
            return
        try:
            await self._send_hid(event)
        except KvmdError as exc:
            self._warn_once("hid", "HID input failed: %s", exc)

    async def _send_hid(self, event: Input) -> None:
        hid = self._hid
        if isinstance(event, KeyInput | CodeInput):
            self._send_key(event)
        elif isinstance(event, ButtonInput):
            hid.send_mouse_button(event.button, state=event.state)
        elif isinstance(event, MoveInput):
            hid.send_mouse_move(event.x, event.y)
        elif isinstance(event, RelativeInput):
            send = hid.send_mouse_wheel if event.wheel else hid.send_mouse_relative
            for dx, dy in squash_deltas(event.deltas) if event.squash else event.deltas:
                send(dx, dy)

    def _send_key(self, event: KeyInput | CodeInput) -> None:
        if isinstance(event, KeyInput):
            key = KEYS.get(event.key)
        elif event.is_button:
            button = MOUSE_BUTTONS_BY_EVDEV.get(event.code)
            if button is None:
                self._warn_once("code", "Dropped unknown mouse button code %d", event.code)
            else:
                self._hid.send_mouse_button(button, state=event.state)
            return
        else:
            key = KEYS_BY_EVDEV.get(event.code)
        if key is None:
            self._warn_once("key", "Dropped an unknown key: %s", event)
            return
        self._hid.send_key(key, state=event.state, finish=event.finish)
