# SPDX-License-Identifier: GPL-3.0-or-later
"""The VNC server: RFB 3.3/3.7/3.8 sessions inside the daemon (RFC 6143).

Logins go through kvmd's own auth (throttling, lockout, the audit trail, roles); video
comes from the streamer through one shared reader (video.py); input goes straight to the
HID backend (input.py). Each client has its own pace: its frames are sent when it asks
for one, the latest frame at that moment, so a slow client only slows itself.
"""

import asyncio
import contextlib
import dataclasses
import logging
import socket
import ssl
import struct
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, NoReturn

from kvmd.auth.audit import AuditLog
from kvmd.auth.manager import AuthManager
from kvmd.auth.principal import NOBODY, Kind, Permission, Principal, Via
from kvmd.errors import ForbiddenError, KvmdError, TooManyRequestsError
from kvmd.ocr import Ocr
from kvmd.plugins.hid.base import HidBackend, HidLeds
from kvmd.plugins.hid.layouts import Layout, LayoutError
from kvmd.plugins.streamer.base import StreamerBackend, StreamerParams
from kvmd.vnc import encodings as enc
from kvmd.vnc.config import VncConfig
from kvmd.vnc.input import VncInput
from kvmd.vnc.video import Frame, FrameSource, placeholder
from kvmd.vnc.vncauth import CHALLENGE_SIZE, VncPasswords, match, new_challenge

logger = logging.getLogger(__name__)

# Security types and VeNCrypt sub-types.
_NONE = 1
_VNCAUTH = 2
_VENCRYPT = 19
_PLAIN = 256
_TLS_NONE = 257
_TLS_VNC = 258
_TLS_PLAIN = 259
_X509_NONE = 260
_X509_VNC = 261
_X509_PLAIN = 262
_TLS = frozenset({_TLS_NONE, _TLS_VNC, _TLS_PLAIN})
_X509 = frozenset({_X509_NONE, _X509_VNC, _X509_PLAIN})

# Client messages.
_SET_PIXEL_FORMAT = 0
_SET_ENCODINGS = 2
_UPDATE_REQUEST = 3
_KEY_EVENT = 4
_POINTER_EVENT = 5
_CUT_TEXT = 6
_ENABLE_CONTINUOUS = 150
_QEMU = 255

# How long a client may take over the handshake, and to take a frame it asked for.
_HANDSHAKE_TIMEOUT = 30.0
# How long ServerInit waits for the streamer's first frame (a streamer that starts for this
# client takes a second or two).
_FIRST_FRAME_WAIT = 5.0
_WRITE_TIMEOUT = 30.0
# Clipboard text a client may send; longer is not a clipboard but an attack.
_MAX_CUT_TEXT = 1024 * 1024
_MAX_CREDENTIAL = 512
# PiKVM's mapping of the JPEG quality pseudo-encodings -32..-23 to quality 10..100.
_QUALITIES = {enc.JPEG_QUALITY_LOW + n: 10 * (n + 1) for n in range(10)}
# Left Alt tapped twice within this many seconds, then a key: a command to the server.
_MAGIC_SECONDS = 2.0


class RfbError(Exception):
    """The client broke the protocol: its session ends with this as the log line."""


@dataclasses.dataclass(frozen=True, slots=True)
class VncDeps:
    config: VncConfig
    auth: AuthManager
    audit: AuditLog
    hid: HidBackend
    streamer: StreamerBackend
    ocr: Ocr


class VncServer:
    def __init__(self, deps: VncDeps) -> None:
        self._deps = deps
        self._config = deps.config
        self._frames = FrameSource(deps.streamer)
        self._passwords = VncPasswords(
            Path(self._config.auth.vncauth.file) if self._config.auth.vncauth.enabled else None
        )
        self._layout = _load_layout(self._config.keymap)
        self._server: asyncio.Server | None = None
        self._sessions: dict[asyncio.Task[None], _Session] = {}
        self.size = (800, 600)  # the last frame size any client saw, for ServerInit
        self.port = 0
        # The latest frame decoded, shared by the clients without Tight: one decode a frame.
        self._decoded: tuple[int, asyncio.Future[tuple[bytes, int, int]]] | None = None

    @property
    def sessions(self) -> int:
        return len(self._sessions)

    def write_buffers(self) -> list[int]:
        """Bytes waiting to be sent to each client: one frame at most, however slow."""
        return [session.buffered for session in self._sessions.values()]

    async def decoded(self, frame: Frame) -> tuple[bytes, int, int]:
        """The frame as RGB pixels, decoded once however many clients need it."""
        if self._decoded is None or self._decoded[0] != frame.seq:
            work = asyncio.ensure_future(asyncio.to_thread(enc.decode_jpeg, frame.jpeg))
            self._decoded = (frame.seq, work)
        return await asyncio.shield(self._decoded[1])

    async def start(self) -> None:
        server = self._config.server
        self._server = await asyncio.start_server(
            self._accept,
            host=server.host or None,
            port=server.port,
            backlog=server.max_clients,
            reuse_address=True,
        )
        sock = self._server.sockets[0]
        self.port = sock.getsockname()[1]
        logger.info("VNC: listening on %s", ", ".join(_name(s) for s in self._server.sockets))

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._sessions):
            task.cancel()
        if self._sessions:
            await asyncio.wait(list(self._sessions), timeout=5)
        if self._server is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is None:  # asyncio runs every callback of start_server in a task
            return
        remote = _remote(writer)
        _tune(writer, self._config)
        session = _Session(self, reader, writer, remote)
        self._sessions[task] = session
        try:
            await session.run()
        except RfbError as exc:
            logger.warning("VNC %s: %s", remote, exc)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError) as exc:
            logger.info("VNC %s: gone: %s", remote, str(exc) or type(exc).__name__)
        except TimeoutError:
            logger.warning("VNC %s: timed out", remote)
        finally:
            session.release()
            del self._sessions[task]
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1)
            logger.info("VNC %s: closed", remote)


class _Session:
    def __init__(
        self,
        server: VncServer,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        remote: str,
    ) -> None:
        self._server = server
        self._deps = server._deps
        self._config = server._config
        self._reader = reader
        self._writer = writer
        self.remote = remote
        self._principal: Principal | None = None
        self._version = 8
        self._format = enc.SERVER_FORMAT
        self._encodings: frozenset[int] = frozenset()
        self._zrle = enc.ZrleEncoder()
        self._wanted = asyncio.Event()  # the client asked for a frame
        self._refresh = False  # ... and the whole picture, changed or not
        self._continuous = False
        self._size: tuple[int, int] | None = None
        self._sent_seq = 0
        self._input = VncInput(self._deps.hid, server._layout, self._config.scroll_rate)
        self._clipboard = ""
        self._alt_taps: list[float] = []
        self._magic_until = 0.0
        self._told_view = False
        self._generation = -1
        self._leds: HidLeds | None = None

    # --- the whole session ------------------------------------------------------------

    async def run(self) -> None:
        async with asyncio.timeout(_HANDSHAKE_TIMEOUT):
            await self._handshake()
        principal = self._principal
        if principal is None:
            raise RfbError("no principal after the handshake")
        logger.info("VNC %s: %s logged in (%s)", self.remote, principal.label, principal.access)
        if principal.may_input and self._config.mouse_output:
            with contextlib.suppress(KvmdError):
                self._deps.hid.set_params(mouse_output=self._config.mouse_output)
        if not principal.allows(Permission.VIDEO):
            await self._server_init()
            await self._read_messages()  # no picture without `video`; input may still go
            return
        frames = self._server._frames
        async with frames.watch():
            # ServerInit says the picture's size: the streamer's first frame tells it, so
            # that a client that can't resize sees the screen, not "please reconnect".
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_FIRST_FRAME_WAIT):
                    frame = await frames.first_real()
                    self._server.size = (frame.width, frame.height)
            await self._server_init()
            await _first_of(self._read_messages(), self._send_frames())

    async def _server_init(self) -> None:
        (width, height) = self._server.size
        name = f"kvmd | {socket.gethostname()}".encode()
        await self._write(
            struct.pack(">HH", width, height)
            + enc.SERVER_FORMAT.pack()
            + struct.pack(">I", len(name))
            + name
        )
        self._size = (width, height)

    def release(self) -> None:
        try:
            self._input.release()
        except KvmdError as exc:
            logger.warning("VNC %s: can't release keys: %s", self.remote, exc)

    # --- handshake ----------------------------------------------------------------

    async def _handshake(self) -> None:
        await self._write(b"RFB 003.008\n")
        reply = await self._read(12)
        known = reply.startswith(b"RFB 003.00") and reply.endswith(b"\n")
        if not known or reply[10] not in b"3578":
            raise RfbError(f"unknown protocol version {reply!r}")
        self._version = 3 if reply[10] in b"35" else reply[10] - ord("0")
        offered = self._security_types()
        if self._version == 3:
            single = next((t for t in offered if t in (_NONE, _VNCAUTH)), 0)
            if not single:
                await self._refuse_old("This client speaks RFB 3.3 and no VNCAuth is configured")
            await self._write(struct.pack(">I", single))
            chosen = single
        else:
            if not offered:
                reason = b"No security type is enabled"
                await self._write(b"\0" + struct.pack(">I", len(reason)) + reason)
                raise RfbError("no security type to offer")
            await self._write(bytes([len(offered), *offered]))
            chosen = (await self._read(1))[0]
            if chosen not in offered:
                raise RfbError(f"security type {chosen} was not offered")
        if chosen == _VENCRYPT:
            principal = await self._vencrypt()
        elif chosen == _VNCAUTH:
            principal = await self._vncauth()
        else:
            principal = await self._none()
        self._principal = principal
        await self._write(struct.pack(">I", 0))  # SecurityResult: OK
        await self._read(1)  # ClientInit: the shared flag; every session shares

    def _security_types(self) -> list[int]:
        types = []
        if self._config.auth.vencrypt.enabled and self._version > 3:
            types.append(_VENCRYPT)
        if not self._deps.auth.enabled:
            types.append(_NONE)
        elif self._server._passwords.get():
            types.append(_VNCAUTH)
        return types

    async def _refuse_old(self, reason: str) -> NoReturn:
        data = reason.encode()
        await self._write(struct.pack(">II", 0, len(data)) + data)
        raise RfbError(reason)

    async def _fail(self, reason: str, log: str) -> NoReturn:
        """SecurityResult: failed, with the reason for 3.8 clients; then the end."""
        data = struct.pack(">I", 1)
        if self._version >= 8:
            data += struct.pack(">I", len(reason)) + reason.encode()
        await self._write(data)
        raise RfbError(log)

    async def _vencrypt(self) -> Principal:
        await self._write(b"\x00\x02")
        if await self._read(2) != b"\x00\x02":
            await self._write(b"\x01")
            raise RfbError("VeNCrypt: not version 0.2")
        await self._write(b"\x00")
        subtypes = self._subtypes()
        await self._write(bytes([len(subtypes)]) + b"".join(struct.pack(">I", t) for t in subtypes))
        (chosen,) = struct.unpack(">I", await self._read(4))
        if chosen not in subtypes:
            raise RfbError(f"VeNCrypt: sub-type {chosen} was not offered")
        if chosen in _TLS | _X509:
            # The client's TLS hello follows the ack at once. Read by the plain stream, it
            # would be lost to the TLS one (CPython gh-142352) and the handshake would hang:
            # it stays in the socket until TLS reads it.
            transport = self._writer.transport
            if isinstance(transport, asyncio.ReadTransport):
                transport.pause_reading()
            await self._write(b"\x01")
            await self._start_tls(x509=chosen in _X509)
        if chosen in (_PLAIN, _TLS_PLAIN, _X509_PLAIN):
            return await self._plain()
        if chosen in (_VNCAUTH, _TLS_VNC, _X509_VNC):
            return await self._vncauth()
        return await self._none()

    def _subtypes(self) -> list[int]:
        tls = self._config.server.tls
        (ciphers, cert) = (bool(tls.ciphers), bool(tls.ciphers and tls.x509.cert))
        if not self._deps.auth.enabled:
            return [_NONE] + [_X509_NONE] * cert + [_TLS_NONE] * ciphers
        types = [_PLAIN] + [_X509_PLAIN] * cert + [_TLS_PLAIN] * ciphers
        if self._server._passwords.get():
            types += [_VNCAUTH] + [_X509_VNC] * cert + [_TLS_VNC] * ciphers
        return types

    async def _start_tls(self, *, x509: bool) -> None:
        tls = self._config.server.tls
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        # No TLS 1.3 session tickets: nobody resumes a VNC session, and with them TigerVNC
        # (GnuTLS) never read the SecurityResult in about half the sessions.
        context.num_tickets = 0
        context.set_ciphers(tls.ciphers)
        if x509:
            try:
                context.load_cert_chain(tls.x509.cert, tls.x509.key)
            except (OSError, ssl.SSLError) as exc:
                raise RfbError(f"VeNCrypt: can't load {tls.x509.cert}: {exc}") from None
        else:
            # Anonymous key exchange: TLS 1.3 has none.
            context.maximum_version = ssl.TLSVersion.TLSv1_2
        await self._writer.start_tls(context, ssl_handshake_timeout=tls.timeout)

    async def _plain(self) -> Principal:
        (user_len, passwd_len) = struct.unpack(">II", await self._read(8))
        if user_len > _MAX_CREDENTIAL or passwd_len > _MAX_CREDENTIAL:
            raise RfbError(f"VeNCrypt Plain: credentials of {user_len}+{passwd_len} bytes")
        user = (await self._read(user_len)).decode("utf-8", "replace").strip()
        passwd = (await self._read(passwd_len)).decode("utf-8", "replace")
        if not self._deps.auth.enabled:
            return NOBODY
        try:
            principal = await self._deps.auth.verify(user, passwd, via=Via.VNC, remote=self.remote)
        except TooManyRequestsError as exc:
            self._audit(user, "user", type(exc).__name__)
            await self._fail("Too many failed attempts", f"{user!r}: throttled")
        except ForbiddenError as exc:
            self._audit(user, "user", type(exc).__name__)
            await self._fail("Invalid username or password", f"{user!r}: wrong password")
        self._audit(principal.user, principal.kind, "ok")
        return principal

    async def _vncauth(self) -> Principal:
        challenge = new_challenge()
        await self._write(challenge)
        answer = await self._read(CHALLENGE_SIZE)
        auth = self._deps.auth
        wait = auth.address_wait(self.remote)
        if wait > 0:
            self._audit("vncpasswd", "user", "TooManyRequestsError")
            await self._fail("Too many failed attempts", "VNCAuth: throttled")
        password = match(self._server._passwords.get(), challenge, answer)
        if password is None:
            auth.charge_address(self.remote)
            self._audit("vncpasswd", "user", "ForbiddenError")
            await self._fail("Invalid password", "VNCAuth: wrong password")
        if not password.user:
            principal = Principal(user="vncpasswd", via=Via.VNCAUTH, kind=Kind.NONE)
        else:
            try:
                principal = auth.user_principal(password.user, Via.VNCAUTH, "")
            except ForbiddenError:
                self._audit(password.user, "user", "ForbiddenError")
                await self._fail("Access denied", f"VNCAuth: user {password.user!r} is disabled")
        self._audit(principal.user, principal.kind, "ok")
        return principal

    async def _none(self) -> Principal:
        if self._deps.auth.enabled:
            raise RfbError("no authentication asked while auth is on")
        return NOBODY

    def _audit(self, principal: str, kind: str, result: str) -> None:
        self._deps.audit.record(
            principal=principal,
            kind=kind,
            via="vnc",
            remote=self.remote,
            action="vnc.login",
            result=result,
        )

    # --- client messages -------------------------------------------------------------

    async def _read_messages(self) -> None:
        handlers = {
            _SET_PIXEL_FORMAT: self._on_pixel_format,
            _SET_ENCODINGS: self._on_encodings,
            _UPDATE_REQUEST: self._on_update_request,
            _KEY_EVENT: self._on_key,
            _POINTER_EVENT: self._on_pointer,
            _CUT_TEXT: self._on_cut_text,
            _ENABLE_CONTINUOUS: self._on_continuous,
            _QEMU: self._on_qemu,
        }
        while True:
            kind = (await self._reader.readexactly(1))[0]
            handler = handlers.get(kind)
            if handler is None:
                raise RfbError(f"unknown message type {kind}")
            await handler()

    async def _on_pixel_format(self) -> None:
        data = await self._read(19)
        try:
            self._format = enc.PixelFormat.parse(data[3:])
        except ValueError as exc:
            raise RfbError(f"SetPixelFormat: {exc}") from None

    async def _on_encodings(self) -> None:
        (count,) = struct.unpack(">xH", await self._read(3))
        if not 1 <= count <= 1024:
            raise RfbError(f"SetEncodings: {count} encodings")
        listed = struct.unpack(f">{count}i", await self._read(4 * count))
        await self._set_encodings(frozenset(listed))

    async def _on_update_request(self) -> None:
        # Every update is the whole screen: only "incremental" counts, not x, y, w, h.
        (incremental,) = struct.unpack(">B8x", await self._read(9))
        if not incremental:
            self._refresh = True  # the picture again, even if it has not changed
        self._wanted.set()

    async def _on_key(self) -> None:
        (down, keysym) = struct.unpack(">BxxI", await self._read(7))
        if not self._magic(keysym, bool(down)) and self._may_input():
            self._hid(self._input.keysym, keysym, down=bool(down))

    async def _on_pointer(self) -> None:
        (mask, x, y) = struct.unpack(">BHH", await self._read(5))
        extra = 0
        if mask & 0x80 and enc.EXT_MOUSE_BUTTONS in self._encodings:
            extra = (await self._read(1))[0]
        if self._may_input() and self._size is not None:
            self._hid(self._input.pointer, mask & 0x7F, x, y, *self._size, extra=extra)

    async def _on_cut_text(self) -> None:
        (length,) = struct.unpack(">xxxi", await self._read(7))
        if not 0 <= length <= _MAX_CUT_TEXT:
            raise RfbError(f"ClientCutText of {length} bytes")
        self._clipboard = (await self._read(length)).decode("utf-8", "replace")

    async def _on_continuous(self) -> None:
        (enable,) = struct.unpack(">B8x", await self._read(9))
        self._continuous = bool(enable)
        if self._continuous:
            self._wanted.set()
        else:
            await self._write(b"\x96")  # EndOfContinuousUpdates

    async def _on_qemu(self) -> None:
        (subtype,) = await self._read(1)
        if subtype != 0:
            raise RfbError(f"QEMU message sub-type {subtype}")
        (down, _keysym, code) = struct.unpack(">HII", await self._read(10))
        if self._may_input():
            self._hid(self._input.scancode, code, down=bool(down))

    def _hid(self, send: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        try:
            send(*args, **kwargs)
        except KvmdError as exc:
            self._input.warn("hid", "VNC: HID input failed: %s", exc)

    async def _set_encodings(self, listed: frozenset[int]) -> None:
        self._encodings = listed
        acks = b""
        count = 0
        if enc.EXT_KEY_EVENT in listed:
            acks += enc.rect_header(0, 0, 0, 0, enc.EXT_KEY_EVENT)
            count += 1
        if enc.EXT_MOUSE_BUTTONS in listed:
            acks += enc.rect_header(0, 0, 0, 0, enc.EXT_MOUSE_BUTTONS)
            count += 1
        if count:
            await self._write(enc.update_header(count) + acks)
        if enc.CONTINUOUS_UPDATES in listed:
            await self._write(b"\x96")  # EndOfContinuousUpdates: the server can do them
        qualities = [q for (level, q) in _QUALITIES.items() if level in listed]
        principal = self._principal
        streamer = self._deps.streamer
        if qualities and principal is not None and principal.allows(Permission.STREAMER):
            with contextlib.suppress(KvmdError):
                state = streamer.state()
                if state.features.quality and state.params.quality != max(qualities):
                    await streamer.set_params(
                        StreamerParams(quality=max(qualities), desired_fps=self._config.desired_fps)
                    )

    def _magic(self, keysym: int, down: bool) -> bool:
        """Left Alt tapped twice, then a key: a command to the server, not a key.

        P types the clipboard; the OCR key puts the screen's text on the client's
        clipboard. The taps themselves reach the target.
        """
        now = time.monotonic()
        if keysym == 0xFFE9:  # Alt_L
            if not down:
                self._alt_taps = [t for t in self._alt_taps if now - t < _MAGIC_SECONDS] + [now]
                if len(self._alt_taps) >= 2:
                    self._magic_until = now + _MAGIC_SECONDS
                    self._alt_taps = []
            return False
        if not down or now > self._magic_until:
            return False
        self._magic_until = 0.0
        key = self._server._layout.keysym(keysym) if self._server._layout else []
        name = key[0].key if key else ""
        if name == "KeyP" and self._clipboard and self._may_input():
            asyncio.create_task(self._type_clipboard(self._clipboard))  # noqa: RUF006
            return True
        if name and name == self._config.ocr_key:
            asyncio.create_task(self._send_ocr())  # noqa: RUF006
            return True
        return False

    async def _type_clipboard(self, text: str) -> None:
        layout = self._server._layout
        if layout is None:
            return
        plan = layout.plan(text)
        if plan.skipped:
            logger.info("VNC %s: the keymap has no key for %r", self.remote, plan.skipped)
        try:
            await self._deps.hid.type_strokes(plan.strokes, delay=0)
        except KvmdError as exc:
            logger.warning("VNC %s: can't type the clipboard: %s", self.remote, exc)

    async def _send_ocr(self) -> None:
        frame = self._server._frames.latest
        principal = self._principal
        if frame is None or principal is None or not principal.allows(Permission.VIDEO):
            return
        try:
            ocr = self._deps.ocr
            text = await ocr.recognize(frame.jpeg, ocr.check_langs(""), (-1, -1, -1, -1))
        except KvmdError as exc:
            logger.warning("VNC %s: OCR failed: %s", self.remote, exc)
            return
        data = text.encode("latin-1", "replace")  # ServerCutText is Latin-1 (RFC 6143)
        with contextlib.suppress(ConnectionError):
            await self._write(b"\x03\0\0\0" + struct.pack(">I", len(data)) + data)

    def _may_input(self) -> bool:
        principal = self._principal
        if principal is None:
            return False
        auth = self._deps.auth
        if auth.generation != self._generation:  # someone's rights changed: ours too?
            self._generation = auth.generation
            current = auth.reresolve(principal)
            if current is None:
                raise RfbError(f"{principal.label}'s access was revoked")
            self._principal = principal = current
        if principal.may_input and not principal.is_expired():
            return True
        if not self._told_view:
            self._told_view = True
            logger.warning("VNC %s: %s is view only: input dropped", self.remote, principal.label)
        return False

    # --- frames ------------------------------------------------------------------------

    async def _send_frames(self) -> None:
        frames = self._server._frames
        last = 0.0
        while True:
            await self._wanted.wait()
            if self._refresh and frames.latest is not None:
                frame = frames.latest
            else:
                frame = await frames.next_frame(self._sent_seq)
            self._refresh = False
            tight = enc.TIGHT in self._encodings and any(
                level in self._encodings for level in _QUALITIES
            )
            if not tight:
                # Decoding costs the daemon CPU: these clients get fewer frames.
                pause = last + 1.0 / self._config.decoded_fps - time.monotonic()
                if pause > 0:
                    await asyncio.sleep(pause)
                    frame = frames.latest or frame
            last = time.monotonic()
            if not self._continuous:
                self._wanted.clear()
            self._sent_seq = frame.seq
            data = await self._update(frame, tight=tight)
            if data:
                await self._write(data, limit=_WRITE_TIMEOUT)

    async def _update(self, frame: Frame, *, tight: bool) -> bytes:
        size = (frame.width, frame.height)
        rects: list[bytes] = []
        if (
            size != self._size
            and self._size is not None
            and enc.DESKTOP_SIZE not in self._encodings
        ):
            # A client that can't resize is told so in a picture of the size it has.
            (width, height) = self._size
            text = f"Resolution changed: {width}x{height} -> {size[0]}x{size[1]}\nPlease reconnect"
            jpeg = await asyncio.to_thread(placeholder, text, width, height)
            frame = Frame(jpeg, width, height, online=False, seq=frame.seq)
            size = self._size
        if size != self._size:
            self._size = size
            self._server.size = size
            rects.append(enc.desktop_size(*size))
        if enc.LED_STATE in self._encodings:
            leds = self._deps.hid.state().keyboard.leds
            if leds != self._leds:
                self._leds = leds
                rects.append(enc.led_state(leds.scroll, leds.num, leds.caps))
        if tight:
            rects.append(enc.rect_header(0, 0, *size, enc.TIGHT) + enc.tight_jpeg(frame.jpeg))
        else:
            (rgb, width, height) = await self._server.decoded(frame)
            if enc.ZRLE in self._encodings:
                body = await asyncio.to_thread(self._zrle.encode, rgb, width, height, self._format)
                rects.append(enc.rect_header(0, 0, width, height, enc.ZRLE) + body)
            else:
                body = await asyncio.to_thread(enc.raw, rgb, width, height, self._format)
                rects.append(enc.rect_header(0, 0, width, height, enc.RAW) + body)
        return enc.update_header(len(rects)) + b"".join(rects)

    # --- bytes ---------------------------------------------------------------------------

    @property
    def buffered(self) -> int:
        transport = self._writer.transport
        return 0 if transport.is_closing() else transport.get_write_buffer_size()

    async def _read(self, size: int) -> bytes:
        return await self._reader.readexactly(size)

    async def _write(self, data: bytes, limit: float | None = None) -> None:
        self._writer.write(data)
        async with asyncio.timeout(limit):
            await self._writer.drain()


async def _first_of(*coros: Coroutine[Any, Any, None]) -> None:
    """Run until the first ends; cancel the others; raise what the first raised."""
    tasks = [asyncio.ensure_future(coro) for coro in coros]
    try:
        (done, _) = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)
    for task in done:
        task.result()


def _load_layout(path: str) -> Layout | None:
    try:
        return Layout.load(Path(path))
    except LayoutError as exc:
        logger.error("VNC: no keymap, keys will be dropped: %s", exc)  # noqa: TRY400 -- no traceback
        return None


def _remote(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return "unix"


def _name(sock: socket.socket) -> str:
    (host, port) = sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _tune(writer: asyncio.StreamWriter, config: VncConfig) -> None:
    sock = writer.get_extra_info("socket")
    if sock is None:
        return
    server = config.server
    with contextlib.suppress(OSError):
        if server.no_delay:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        keepalive = server.keepalive
        if keepalive.enabled:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, keepalive.idle)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, keepalive.interval)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, keepalive.count)
            user_timeout = (keepalive.idle + keepalive.interval * keepalive.count) * 1000
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, user_timeout)
