# SPDX-License-Identifier: GPL-3.0-or-later
"""A small asyncio RFB client for tests: VNCAuth, Tight/ZRLE/Raw updates, cut text.

Written from RFC 6143, independent of kvmd's server (except the DES answer, where
kvmd.vnc.vncauth.encrypt is checked against vncdotool's own in the unit tests).
"""

import asyncio
import contextlib
import dataclasses
import struct
from collections.abc import AsyncIterator

from kvmd.vnc.vncauth import encrypt

TIGHT = 7
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


class RfbClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.size = (0, 0)
        self.name = ""
        self.cut_texts: list[bytes] = []

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

    async def next_update(self) -> Update:
        """The next FramebufferUpdate; cut texts and other messages on the way are kept."""
        while True:
            kind = (await self.reader.readexactly(1))[0]
            if kind == 0:
                return await self._update()
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
    sock = None
    if rcvbuf:
        import socket  # noqa: PLC0415 -- only a slow client needs its own socket

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        (reader, writer) = await asyncio.open_connection(sock=sock)
    else:
        (reader, writer) = await asyncio.open_connection("127.0.0.1", port)
    client = RfbClient(reader, writer)
    try:
        yield client
    finally:
        await client.close()
