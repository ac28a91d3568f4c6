# SPDX-License-Identifier: GPL-3.0-or-later
"""The websocket hub: state events out, keyboard and mouse in (API.md §4)."""

import asyncio
import contextlib
import dataclasses
import logging
import secrets
import time

from aiohttp import WSCloseCode, WSMsgType, web

from kvmd.auth.audit import AuditLog
from kvmd.auth.manager import AuthManager
from kvmd.auth.principal import Permission, Principal, sorted_names
from kvmd.bus import Bus, Subscription, Topic
from kvmd.errors import KvmdError
from kvmd.plugins.hid.base import HidBackend
from kvmd.plugins.hid.keys import KEYS, KEYS_BY_EVDEV, MOUSE_BUTTONS_BY_EVDEV
from kvmd.plugins.streamer.base import ClientsState
from kvmd.server.events import LOOP_CURRENT, LOOP_LEGACY, PONG, EventRenderer, encode_event
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


# Close code for a revoked session or key: the stock UI re-checks auth and shows its login.
CLOSE_REVOKED = 4401
# How often the hub looks for edited users/roles/keys files and expired keys.
_REFRESH_INTERVAL = 1.0


@dataclasses.dataclass(eq=False, slots=True)
class WsClient:
    """One open websocket, as the sessions listing shows it."""

    ws: web.WebSocketResponse
    principal: Principal
    id: str  # the login session's id, or the websocket's own for header auth
    wants_stream: bool
    remote: str
    user_agent: str
    created: float = dataclasses.field(default_factory=time.time)
    stream: bool = False
    told_view: bool = False

    def session_event(self) -> bytes:
        p = self.principal
        return encode_event(
            "session",
            {
                "user": p.user,
                "kind": str(p.kind),
                "permissions": sorted_names(p.permissions),
                "read_only": p.read_only,
                "access": p.access,
                "hid_lock": None,
            },
        )


class WsHub:
    def __init__(
        self, bus: Bus, hid: HidBackend, renderer: EventRenderer, auth: AuthManager, audit: AuditLog
    ) -> None:
        self._bus = bus
        self._hid = hid
        self._renderer = renderer
        self._auth = auth
        self._audit = audit
        self._clients: set[WsClient] = set()
        self._stream_clients = 0

    def start(self) -> None:
        self._publish_clients()

    @property
    def stream_clients(self) -> int:
        return self._stream_clients

    def clients(self) -> list[WsClient]:
        return list(self._clients)

    def _publish_clients(self) -> None:
        self._bus.publish(Topic.CLIENTS, ClientsState(count=self._stream_clients))

    def _set_stream(self, client: WsClient) -> None:
        # Only a principal that may see the video counts as a watcher (SECURITY.md §3.6).
        stream = client.wants_stream and client.principal.allows(Permission.VIDEO)
        if stream != client.stream:
            client.stream = stream
            self._stream_clients += 1 if stream else -1
            self._publish_clients()

    async def serve(self, ws: web.WebSocketResponse, client: WsClient, *, legacy: bool) -> None:
        """Run one prepared websocket until it closes."""
        if not client.id:
            client.id = secrets.token_hex(8)
        self._clients.add(client)
        self._set_stream(client)
        # Keys held by a client that vanished must not stay down on the target.
        self._release_hid()
        try:
            async with self._bus.subscribe() as subscription, asyncio.TaskGroup() as tasks:
                writer = tasks.create_task(self._write(ws, client, subscription, legacy=legacy))
                await _Reader(client, self._hid, self._audit).run()
                writer.cancel()
        finally:
            self._forget(client)
            self._release_hid()

    def _release_hid(self) -> None:
        try:
            self._hid.release_all()
        except KvmdError as exc:
            logger.warning("Can't release HID keys: %s", exc)

    async def _write(
        self,
        ws: web.WebSocketResponse,
        client: WsClient,
        subscription: Subscription,
        *,
        legacy: bool,
    ) -> None:
        last: dict[str, bytes] = {}
        first = True
        with contextlib.suppress(ConnectionError):
            while True:
                batch = await subscription.get_batch()
                frames: list[bytes] = []
                if first:
                    # Who the client is comes first: a UI knows what to show before the state.
                    frames = (
                        [client.session_event()]
                        if legacy
                        else [LOOP_CURRENT, client.session_event()]
                    )
                for topic, state in batch:
                    covered = False
                    for rendered in self._renderer.render(topic, state, legacy=legacy):
                        if last.get(rendered.key) != rendered.mark:
                            last[rendered.key] = rendered.mark
                            if not covered:
                                frames.append(rendered.data)
                                covered = rendered.covers
                if first and legacy:
                    frames.append(LOOP_LEGACY)  # PiKVM 4.0 clients wait for it as "burst done"
                first = False
                for frame in frames:
                    await ws.send_frame(frame, WSMsgType.TEXT)

    async def refresh(self) -> None:
        """Apply everyone's current rights: a new `session` event, or 4401 once revoked."""
        for client in list(self._clients):
            principal = self._auth.reresolve(client.principal)
            if principal is None or principal.is_expired():
                await self._close(client, b"Revoked")
            elif principal != client.principal:
                client.principal = principal
                self._set_stream(client)
                with contextlib.suppress(ConnectionError):
                    await client.ws.send_frame(client.session_event(), WSMsgType.TEXT)

    async def close_sessions(self, ids: set[str]) -> int:
        """Close the websockets of these sessions with 4401; how many were closed."""
        closing = [client for client in self._clients if client.id in ids]
        for client in closing:
            await self._close(client, b"Session closed")
        return len(closing)

    def _forget(self, client: WsClient) -> None:
        self._clients.discard(client)
        client.wants_stream = False
        self._set_stream(client)

    async def _close(self, client: WsClient, message: bytes) -> None:
        self._forget(client)
        await client.ws.close(code=CLOSE_REVOKED, message=message)

    async def run(self) -> None:
        """Follow edits of the auth files and key expiries for the open websockets."""
        generation = self._auth.generation
        while True:
            await asyncio.sleep(_REFRESH_INTERVAL)
            self._auth.refresh()
            now = time.time()
            expired = any(c.principal.is_expired(now) for c in self._clients)
            if expired or generation != self._auth.generation:
                generation = self._auth.generation
                await self.refresh()

    async def close_all(self) -> None:
        for client in list(self._clients):
            await client.ws.close(code=WSCloseCode.GOING_AWAY, message=b"Server shutdown")


class _Reader:
    """Reads client messages; a malformed one is dropped and logged once per connection."""

    def __init__(self, client: WsClient, hid: HidBackend, audit: AuditLog) -> None:
        self._client = client
        self._ws = client.ws
        self._hid = hid
        self._audit = audit
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
        # Checked on every message against the rights the hub keeps current, so a
        # demotion stops input at the next message (SECURITY.md §3.6).
        principal = self._client.principal
        if not principal.may_input or principal.is_expired():
            await self._drop_input(principal)
            return
        self._audit.count_hid(principal.user, principal.kind, principal.via, self._client.remote)
        try:
            await self._send_hid(event)
        except KvmdError as exc:
            self._warn_once("hid", "HID input failed: %s", exc)

    async def _drop_input(self, principal: Principal) -> None:
        if self._client.told_view:
            return
        # Once per connection: a log line, and a `session` event a UI can show.
        self._client.told_view = True
        logger.warning("Dropped input from %s: %s", principal.label, principal.access + " only")
        with contextlib.suppress(ConnectionError):
            await self._ws.send_frame(self._client.session_event(), WSMsgType.TEXT)

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
