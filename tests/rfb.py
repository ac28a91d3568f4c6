# SPDX-License-Identifier: GPL-3.0-or-later
"""A small asyncio RFB client for tests and the bench: VNCAuth, Tight/ZRLE updates, cut text.

Written from RFC 6143, independent of kvmd's server (except the DES answer, where
kvmd.vnc.vncauth.encrypt is checked against vncdotool's own in the unit tests).
"""

import asyncio
import contextlib
import dataclasses
import socket
import struct
import time
from collections.abc import AsyncIterator

from kvmd.vnc.vncauth import encrypt

TIGHT = 7
ZRLE = 16
DESKTOP_SIZE = -223
LED_STATE = -261
EXT_KEY_EVENT = -258
QUALITY_80 = -25


@dataclasses.dataclass
class Update:
    rects: list[tuple[int, int, int, int, int, bytes]]  # x, y, w, h, encoding, body

    def jpeg(self) -> bytes | None:
        for *_, encoding, body in self.rects:
            if encoding == TIGHT:
                return body
        return None

    def picture_bytes(self) -> int:
        """The size of the picture it carries (JPEG or ZRLE data), 0 without one."""
        return sum(len(body) for *_, encoding, body in self.rects if encoding in (TIGHT, ZRLE))


class RfbClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.size = (0, 0)
        self.name = ""
        self.cut_texts: list[bytes] = []
        self.frames = 0  # updates with a picture, counted by watch()
        self.bytes = 0

    @classmethod
    async def open(cls, port: int, *, rcvbuf: int = 0) -> "RfbClient":
        """A connection to 127.0.0.1:`port`; `rcvbuf` shrinks its receive buffer (slow)."""
        if not rcvbuf:
            return cls(*await asyncio.open_connection("127.0.0.1", port))
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        return cls(*await asyncio.open_connection(sock=sock))

    async def vncauth(self, password: str) -> int:
        """Log in with VNCAuth over RFB 3.8; the SecurityResult (0 = OK)."""
        assert (await self.reader.readexactly(12)) == b"RFB 003.008\n"
        self.writer.write(b"RFB 003.008\n")
        count = (await self.reader.readexactly(1))[0]
        types = await self.reader.readexactly(count)
        assert 2 in types, types
        self.writer.write(b"\x02")
        challenge = await self.reader.readexactly(16)
        self.writer.write(encrypt(password, challenge))
        (result,) = struct.unpack(">I", await self.reader.readexactly(4))
        if result != 0:
            (length,) = struct.unpack(">I", await self.reader.readexactly(4))
            await self.reader.readexactly(length)
            return result
        self.writer.write(b"\x01")  # ClientInit: shared
        (width, height) = struct.unpack(">HH", await self.reader.readexactly(4))
        await self.reader.readexactly(16)  # pixel format
        (length,) = struct.unpack(">I", await self.reader.readexactly(4))
        self.name = (await self.reader.readexactly(length)).decode()
        self.size = (width, height)
        return 0

    def set_encodings(self, *encodings: int) -> None:
        self.writer.write(struct.pack(f">BxH{len(encodings)}i", 2, len(encodings), *encodings))

    def request(self, *, incremental: bool = True) -> None:
        self.writer.write(struct.pack(">BBHHHH", 3, incremental, 0, 0, *self.size))

    def continuous(self, enable: bool) -> None:
        self.writer.write(struct.pack(">BBHHHH", 150, enable, 0, 0, *self.size))

    def key(self, keysym: int, *, down: bool) -> None:
        self.writer.write(struct.pack(">BBxxI", 4, down, keysym))

    async def drain(self) -> None:
        await self.writer.drain()

    async def next_update(self) -> Update:
        """The next FramebufferUpdate; cut texts and other messages on the way are kept."""
        update = await self._next_update(None)
        assert update is not None
        return update

    async def watch(self, deadline: float) -> None:
        """Until `deadline`: one update request outstanding, pictures counted.

        Only the wait for a message is cut short: a message begun is read whole, so that
        the next watch starts at a message boundary.
        """
        self.request(incremental=False)
        while (remaining := deadline - time.monotonic()) > 0:
            update = await self._next_update(remaining)
            if update is None:
                return
            if picture := update.picture_bytes():
                (self.frames, self.bytes) = (self.frames + 1, self.bytes + picture)
            self.request(incremental=True)

    async def _next_update(self, wait: float | None) -> Update | None:
        """The next FramebufferUpdate, or None if no message begins within `wait`."""
        while True:
            try:
                async with asyncio.timeout(wait):
                    kind = (await self.reader.readexactly(1))[0]
            except TimeoutError:
                return None
            if kind == 0:
                return await self._update()
            if kind == 2:  # Bell
                continue
            if kind == 3:  # ServerCutText
                (length,) = struct.unpack(">xxxI", await self.reader.readexactly(7))
                self.cut_texts.append(await self.reader.readexactly(length))
            elif kind == 150:  # EndOfContinuousUpdates
                continue
            else:
                raise AssertionError(f"unexpected server message {kind}")

    async def _update(self) -> Update:
        (count,) = struct.unpack(">xH", await self.reader.readexactly(3))
        rects = []
        for _ in range(count):
            (x, y, w, h, encoding) = struct.unpack(">HHHHi", await self.reader.readexactly(12))
            body = b""
            if encoding == TIGHT:
                control = (await self.reader.readexactly(1))[0]
                assert control >> 4 == 0x9, f"not Tight JPEG: {control:#x}"
                body = await self.reader.readexactly(await self._compact_length())
            elif encoding == ZRLE:
                (length,) = struct.unpack(">I", await self.reader.readexactly(4))
                body = await self.reader.readexactly(length)
            elif encoding == LED_STATE:
                body = await self.reader.readexactly(1)
            elif encoding == DESKTOP_SIZE:
                self.size = (w, h)
            elif encoding != EXT_KEY_EVENT:
                raise AssertionError(f"encoding {encoding} not read by this client")
            rects.append((x, y, w, h, encoding, body))
        return Update(rects)

    async def _compact_length(self) -> int:
        length = 0
        for shift in (0, 7, 14):
            byte = (await self.reader.readexactly(1))[0]
            length |= (byte & (0x7F if shift < 14 else 0xFF)) << shift
            if shift < 14 and not byte & 0x80:
                break
        return length

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


@contextlib.asynccontextmanager
async def connected(port: int, *, rcvbuf: int = 0) -> AsyncIterator[RfbClient]:
    client = await RfbClient.open(port, rcvbuf=rcvbuf)
    try:
        yield client
    finally:
        await client.close()
