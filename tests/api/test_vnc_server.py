# SPDX-License-Identifier: GPL-3.0-or-later
"""The VNC server in the daemon, with the simulated streamer and the real tesseract.

A slow client must not slow another or pile frames up; the OCR key sequence puts the
target's screen text on the client's clipboard (PiKVM's server sends nothing back).
"""

import asyncio
import struct
import time

import pytest

from kvmd.vnc.vncauth import encrypt
from tests.conftest import SCREEN_TEXT, ocr_target
from tests.rfb import DESKTOP_SIZE, QUALITY_80, TIGHT, connected

pytestmark = pytest.mark.timeout(60)

ALT_L = 0xFFE9


@pytest.fixture
async def vnc(make_client, make_config, tmp_path):
    (tmp_path / "vncpasswd").write_text("secret -> admin\n")
    config = make_config(
        kvmd=ocr_target(tmp_path, "--desired-fps=20"),
        vnc={
            "enabled": True,
            "keymap": "/usr/share/qemu/keymaps/en-us",
            "server": {"host": "127.0.0.1", "port": 0},
            "auth": {"vncauth": {"enabled": True, "file": str(tmp_path / "vncpasswd")}},
        },
    )
    (_, deps) = await make_client(config, loops=True)  # the streamer's loop runs it
    return deps


async def test_a_stalled_client_holds_one_frame_and_delays_no_other(vnc):
    port = vnc.vnc.port
    # A reads nothing after asking for every frame, with a tiny receive buffer.
    async with connected(port, rcvbuf=4096) as stalled, connected(port) as live:
        assert await stalled.vncauth("secret") == 0
        stalled.set_encodings(TIGHT, QUALITY_80, DESKTOP_SIZE)
        stalled.continuous(True)
        assert await live.vncauth("secret") == 0
        live.set_encodings(TIGHT, QUALITY_80, DESKTOP_SIZE)
        (frames, biggest, buffered) = (0, 0, 0)
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            live.request()
            update = await asyncio.wait_for(live.next_update(), 5)
            jpeg = update.jpeg()
            if jpeg is not None:
                assert jpeg[:2] == b"\xff\xd8"  # the streamer's JPEG as it is
                frames += 1
                biggest = max(biggest, len(jpeg))
            buffered = max(buffered, *vnc.vnc.write_buffers())
        # The simulated streamer makes 20 a second; the live client got them while the
        # stalled one sat on a full socket.
        assert frames >= 30, frames
        # What waits for the stalled client is at most the one frame it was being sent
        # (and a rectangle header), not a queue of them.
        assert buffered <= biggest + 64 * 1024, (buffered, biggest)
        assert len(vnc.vnc.write_buffers()) == 2  # and it is still connected


async def test_alt_alt_c_puts_the_screen_text_on_the_clipboard(vnc):
    async with connected(vnc.vnc.port) as client:
        assert await client.vncauth("secret") == 0
        client.set_encodings(TIGHT, QUALITY_80, DESKTOP_SIZE)
        client.request(incremental=False)
        await asyncio.wait_for(client.next_update(), 10)
        for _ in range(2):
            client.key(ALT_L, down=True)
            client.key(ALT_L, down=False)
        client.key(ord("c"), down=True)
        client.key(ord("c"), down=False)
        deadline = time.monotonic() + 20
        while not client.cut_texts and time.monotonic() < deadline:
            client.request()
            await asyncio.wait_for(client.next_update(), 10)
        assert client.cut_texts, "no ServerCutText"
        assert SCREEN_TEXT.encode() in client.cut_texts[0]


async def test_a_wrong_vncauth_password_is_refused_and_audited(vnc):
    async with connected(vnc.vnc.port) as client:
        assert await client.vncauth("wrong") == 1
    records = [r for (_, r) in vnc.audit._memory if r.action == "vnc.login"]
    assert [(r.principal, r.via, r.remote, r.result) for r in records] == [
        ("vncpasswd", "vnc", "127.0.0.1", "ForbiddenError")
    ]


async def test_a_vanished_client_leaves_no_session_and_no_frame_reader(vnc):
    server = vnc.vnc
    async with connected(server.port) as client:
        assert await client.vncauth("secret") == 0
        client.set_encodings(TIGHT, QUALITY_80, DESKTOP_SIZE)
        client.request(incremental=False)
        await asyncio.wait_for(client.next_update(), 10)
        client.key(ord("a"), down=True)
        assert server.sessions == 1
        assert server._frames._task is not None  # the shared reader of the stream runs
        client.writer.transport.abort()  # gone mid-session, no goodbye
    deadline = time.monotonic() + 5
    while (server.sessions or server._frames._task is not None) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert (server.sessions, server._frames._task) == (0, None)
    names = {task.get_name() for task in asyncio.all_tasks()}
    assert "vnc-frames" not in names


async def test_a_demoted_user_is_view_only_from_the_next_key(vnc, tmp_path, caplog):
    users = tmp_path / "users.yaml"
    async with connected(vnc.vnc.port) as client:
        assert await client.vncauth("secret") == 0  # `secret -> admin`
        client.set_encodings(TIGHT, QUALITY_80, DESKTOP_SIZE)
        client.key(ord("a"), down=True)
        client.key(ord("a"), down=False)
        users.write_text("admin:\n  roles: [viewer]\n")
        deadline = time.monotonic() + 10
        dropped = "VNC 127.0.0.1: admin (vncauth) is view only: input dropped"
        while dropped not in caplog.text and time.monotonic() < deadline:
            client.key(ord("b"), down=True)  # refused once the daemon re-reads the roles
            client.key(ord("b"), down=False)
            client.request(incremental=False)
            await asyncio.wait_for(client.next_update(), 10)  # still watching
            await asyncio.sleep(0.2)
        assert dropped in caplog.text


async def bad_client(port: int, number: int) -> bytes:
    """A client that breaks the protocol its own way; what the server sent until it closed."""
    (reader, writer) = await asyncio.open_connection("127.0.0.1", port)
    try:
        await reader.readexactly(12)
        if number % 4 == 0:
            writer.write(b"GET / HTTP/1.1\r\n\r\n")
        else:
            writer.write(b"RFB 003.008\n")
            count = (await reader.readexactly(1))[0]
            await reader.readexactly(count)
            writer.write(b"\x02")
            writer.write(encrypt("secret", await reader.readexactly(16)))
            await reader.readexactly(4)  # SecurityResult: OK
            writer.write(b"\x01")
            await reader.readexactly(4 + 16)
            await reader.readexactly(struct.unpack(">I", await reader.readexactly(4))[0])
            writer.write(
                [
                    b"\x06\0\0\0" + struct.pack(">I", 1 << 30),  # 1 GiB of clipboard
                    b"\x02\0" + struct.pack(">H", 5000),  # 5000 encodings
                    b"\x07",  # no such message
                ][number % 4 - 1]
            )
        return await asyncio.wait_for(reader.read(), 10)  # until the server closes
    finally:
        writer.close()


async def test_bad_clients_in_parallel_are_cut_off_and_a_good_one_keeps_going(vnc, caplog):
    async with connected(vnc.vnc.port) as good:
        assert await good.vncauth("secret") == 0
        good.set_encodings(TIGHT, QUALITY_80, DESKTOP_SIZE)
        # As many at once as the listen backlog takes (vnc.server.max_clients, 10, PiKVM's
        # meaning): a bigger burst waits in the kernel's SYN retries, not in kvmd.
        results = await asyncio.wait_for(
            asyncio.gather(*(bad_client(vnc.vnc.port, n) for n in range(8))), 30
        )
        assert all(isinstance(result, bytes) for result in results)  # each got EOF
        for _ in range(3):
            good.request(incremental=False)
            assert (await asyncio.wait_for(good.next_update(), 10)).jpeg() is not None
    deadline = time.monotonic() + 5
    while vnc.vnc.sessions and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert vnc.vnc.sessions == 0
    assert "unknown protocol version" in caplog.text
    assert "ClientCutText of 1073741824 bytes" in caplog.text
    assert "SetEncodings: 5000 encodings" in caplog.text
    assert "unknown message type 7" in caplog.text
    assert "Traceback" not in caplog.text
