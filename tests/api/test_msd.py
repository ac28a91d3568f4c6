# SPDX-License-Identifier: GPL-3.0-or-later
"""/api/msd on the otg backend: a gadget drive in a plain directory and a real storage."""

import asyncio
import errno
import functools
import hashlib
import io
import json
import lzma
from pathlib import Path

import pytest
import zstandard
from aiohttp import web

from kvmd.api import msd as msd_api
from tests.conftest import ADMIN, sample
from tests.msdenv import MsdPaths, listing, pattern


class Env:
    def __init__(self, client, deps, paths):
        self.client = client
        self.deps = deps
        self.paths = paths

    async def call(self, method, path, data=None, headers=None, **params):
        if isinstance(data, bytes):
            data = io.BytesIO(data)
        response = await self.client.request(
            method, path, params=params, data=data, headers={**ADMIN, **(headers or {})}
        )
        return (response.status, await response.json())

    async def post(self, path, data=None, **params):
        return await self.call("POST", path, data, **params)

    async def state(self):
        return (await self.call("GET", "/api/msd"))[1]["result"]

    async def upload(self, name, data, **params):
        return await self.post("/api/msd/write", data, image=name, **params)


@pytest.fixture
async def env(make_client, make_config, tmp_path):
    paths = MsdPaths(tmp_path)
    (client, deps) = await make_client(make_config(kvmd={"msd": paths.config()}))
    return Env(client, deps, paths)


def error(name, status=400):
    return lambda answer: answer[0] == status and answer[1]["result"]["error"] == name


async def test_state_of_an_empty_storage(env):
    state = await env.state()
    part = state["storage"]["parts"][""]
    assert part["size"] > part["free"] > 0
    assert part["writable"] is True
    assert state == {
        "enabled": True,
        "online": True,
        "busy": False,
        "drive": {"image": None, "connected": False, "cdrom": True, "rw": False},
        "storage": {
            "size": part["size"],
            "free": part["free"],
            "images": {},
            "parts": {"": part},
            "uploading": None,
            "downloading": None,
        },
    }
    # The PiKVM sample has the same keys all the way down (drive.image aside, null there).
    pikvm = sample("msd.json")["result"]
    assert set(state) == set(pikvm)
    assert set(state["storage"]) == set(pikvm["storage"])
    assert set(state["drive"]) == set(pikvm["drive"])


async def test_upload_connect_disconnect(env):
    data = pattern(3 * 1024 * 1024 + 17)
    assert await env.upload("boot.img", data) == (
        200,
        {
            "ok": True,
            "result": {"image": {"name": "boot.img", "size": len(data), "written": len(data)}},
        },
    )
    assert (env.paths.storage / "boot.img").read_bytes() == data
    assert listing(env.paths.storage) == ["boot.img"]  # no marker left
    image = (await env.state())["storage"]["images"]["boot.img"]
    assert image["size"] == len(data)
    assert (image["complete"], image["removable"], image["writable"]) == (True, True, True)

    assert await env.post("/api/msd/set_params", image="boot.img", cdrom=0, rw=1) == (
        200,
        {"ok": True, "result": {}},
    )
    drive = (await env.state())["drive"]
    assert drive["image"]["name"] == "boot.img"
    assert drive["image"]["in_storage"] is True
    assert (drive["connected"], drive["cdrom"], drive["rw"]) == (False, False, True)
    assert env.paths.lun_files()["file"] in ("", "\n")

    assert (await env.post("/api/msd/set_connected", connected=1))[0] == 200
    assert env.paths.lun_files() == {
        "file": f"{env.paths.storage / 'boot.img'}\n",
        "cdrom": "0\n",
        "ro": "0\n",
    }
    assert (await env.state())["drive"]["connected"] is True

    assert (await env.post("/api/msd/set_connected", connected=0))[0] == 200
    files = env.paths.lun_files()
    assert (files["file"], files["forced_eject"]) == ("\n", "1\n")
    assert (await env.state())["drive"]["connected"] is False


async def test_cdrom_and_iso_images_are_never_rw(env):
    assert (await env.upload("os.iso", b"x" * 4096))[0] == 200
    assert (await env.state())["storage"]["images"]["os.iso"]["writable"] is False
    await env.post("/api/msd/set_params", image="os.iso", cdrom=0, rw=1)
    assert (await env.state())["drive"]["rw"] is False
    assert (await env.upload("disk.img", b"y" * 4096))[0] == 200
    await env.post("/api/msd/set_params", image="disk.img", cdrom=1, rw=1)
    drive = (await env.state())["drive"]
    assert (drive["cdrom"], drive["rw"]) == (True, False)
    await env.post("/api/msd/set_connected", connected=1)
    assert (env.paths.lun_files()["cdrom"], env.paths.lun_files()["ro"]) == ("1\n", "1\n")


async def test_images_in_subdirectories(env):
    assert (await env.upload("x.iso", b"1" * 100, prefix="linux/debian"))[1]["result"] == {
        "image": {"name": "linux/debian/x.iso", "size": 100, "written": 100}
    }
    # Empty parts are dropped as PiKVM does: an absolute name stays inside the storage.
    assert (await env.upload("//linux//y.iso", b"2" * 10))[0] == 200
    assert (env.paths.storage / "linux" / "debian" / "x.iso").read_bytes() == b"1" * 100
    assert (env.paths.storage / "linux" / "y.iso").read_bytes() == b"2" * 10
    images = (await env.state())["storage"]["images"]
    assert list(images) == ["linux/debian/x.iso", "linux/y.iso"]
    assert (await env.post("/api/msd/remove", image="linux/y.iso"))[0] == 200
    assert not (env.paths.storage / "linux" / "y.iso").exists()


@pytest.mark.parametrize(
    "name",
    [
        "../escape.iso",
        "a/../../escape.iso",
        "..",
        ".hidden.iso",
        "dir/.hidden",
        "lost+found",
        "bad\x00name",
        "tab\there",
        "new\nline",
        "x" * 242,
        "",
        "///",
    ],
)
async def test_bad_image_names_are_400(env, name):
    for answer in [
        await env.upload(name, b"data"),
        await env.post("/api/msd/remove", image=name),
        await env.post("/api/msd/set_params", image=name or "/"),
        await env.call("GET", "/api/msd/read", image=name),
    ]:
        assert error("ValidatorError")(answer), answer
        assert "image" in answer[1]["result"]["error_msg"]
    assert listing(env.paths.storage) == []


async def test_a_symlink_in_the_storage_does_not_lead_out(env, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (env.paths.storage / "link").symlink_to(outside)
    assert error("ValidatorError")(await env.upload("link/x.iso", b"data"))
    assert listing(outside) == []
    assert (await env.state())["storage"]["images"] == {}


async def test_a_longest_name_is_fine(env):
    name = "é" * 120  # 240 bytes: with its marker's 14, still within NAME_MAX
    assert (await env.upload(name, b"z"))[0] == 200
    assert (env.paths.storage / name).read_bytes() == b"z"


async def test_conflicts(env):
    assert (await env.upload("a.img", b"a" * 1000))[0] == 200
    assert error("MsdImageExistsError")(await env.upload("a.img", b"again"))
    assert (env.paths.storage / "a.img").read_bytes() == b"a" * 1000

    assert error("MsdImageNotSelected")(await env.post("/api/msd/set_connected", connected=1))
    assert error("MsdDisconnectedError")(await env.post("/api/msd/set_connected", connected=0))
    assert await env.post("/api/msd/set_params", image="nonexistent.iso") == (
        400,
        sample("msd_set_params_bad.json"),
    )
    assert error("MsdRemoteDisabledError")(
        await env.post("/api/msd/set_params", image="http://example.com/x.iso")
    )
    assert error("MsdUnknownImageError")(await env.post("/api/msd/remove", image="nope.img"))

    await env.post("/api/msd/set_params", image="a.img")
    assert (await env.post("/api/msd/set_connected", connected=1))[0] == 200
    assert error("MsdConnectedError")(await env.post("/api/msd/set_connected", connected=1))
    assert error("MsdConnectedError")(await env.post("/api/msd/set_params", cdrom=0))
    assert error("MsdConnectedError")(await env.post("/api/msd/remove", image="a.img"))
    assert error("MsdConnectedError")(await env.upload("b.img", b"b"))
    assert error("MsdConnectedError")(await env.call("GET", "/api/msd/read", image="a.img"))
    assert (env.paths.storage / "a.img").exists()
    assert listing(env.paths.storage) == ["a.img"]

    # Someone else emptying the drive is noticed.
    (env.paths.lun / "file").write_text("\n")
    assert error("MsdDisconnectedError")(await env.post("/api/msd/set_connected", connected=0))


async def test_busy_while_uploading(env):
    """A slow upload holds the busy region: a second upload, a connect, a remove get 409."""
    assert (await env.upload("ready.img", b"r" * 100))[0] == 200
    await env.post("/api/msd/set_params", image="ready.img")
    gate = asyncio.Event()

    async def body():
        yield b"first chunk"
        await gate.wait()
        yield b"last chunk"

    upload = asyncio.create_task(env.upload("slow.img", body(), headers={"Content-Length": "21"}))
    async with asyncio.timeout(5):
        while not (await env.state())["busy"]:
            await asyncio.sleep(0.02)
    state = await env.state()
    uploading = state["storage"]["uploading"]
    assert (uploading["name"], uploading["size"], uploading["written"] in (0, 11)) == (
        "slow.img",
        21,
        True,
    )
    assert state["storage"]["images"]["slow.img"]["complete"] is False
    busy = error("MsdIsBusyError", 409)
    assert busy(await env.upload("slow.img", b"x" * 21))
    assert busy(await env.upload("other.img", b"x"))
    assert busy(await env.post("/api/msd/set_connected", connected=1))
    assert busy(await env.post("/api/msd/remove", image="ready.img"))
    assert busy(await env.post("/api/msd/reset"))
    assert busy(await env.call("GET", "/api/msd/read", image="ready.img"))
    gate.set()
    assert (await upload)[0] == 200
    assert (env.paths.storage / "slow.img").read_bytes() == b"first chunklast chunk"
    state = await env.state()
    assert (state["busy"], state["storage"]["uploading"]) == (False, None)
    assert state["storage"]["images"]["slow.img"]["complete"] is True


async def test_sha256(env):
    data = pattern(2 * 1024 * 1024)
    digest = hashlib.sha256(data).hexdigest()
    assert (await env.upload("good.img", data, sha256=digest.upper()))[0] == 200
    assert (env.paths.storage / "good.img").read_bytes() == data

    wrong = hashlib.sha256(b"something else").hexdigest()
    answer = await env.upload("bad.img", data, sha256=wrong)
    assert error("MsdChecksumError")(answer)
    assert digest in answer[1]["result"]["error_msg"]
    assert wrong in answer[1]["result"]["error_msg"]
    assert listing(env.paths.storage) == ["good.img"]
    assert "bad.img" not in (await env.state())["storage"]["images"]

    assert error("ValidatorError")(await env.upload("x.img", data, sha256="abc"))


async def raw_upload(env, name, head, declared, **params):
    """Send `declared` as Content-Length but only `head`, then hang up."""
    server = env.client.server
    (reader, writer) = await asyncio.open_connection(server.host, server.port)
    query = "&".join(f"{k}={v}" for (k, v) in {"image": name, **params}.items())
    writer.write(
        f"POST /api/msd/write?{query} HTTP/1.1\r\nHost: x\r\n"
        f"X-KVMD-User: admin\r\nX-KVMD-Passwd: admin\r\n"
        f"Content-Length: {declared}\r\n\r\n".encode()
        + head
    )
    await writer.drain()
    return (reader, writer)


async def wait_idle(env):
    async with asyncio.timeout(5):
        while (state := await env.state())["busy"]:
            await asyncio.sleep(0.02)
    return state


async def test_interrupted_upload_is_incomplete_and_resumes(env):
    data = pattern(5 * 1024 * 1024 + 3)
    cut = 3 * 1024 * 1024 + 100
    (_, writer) = await raw_upload(env, "cut.img", data[:cut], len(data))
    async with asyncio.timeout(5):
        while (await env.state())["storage"]["uploading"] is None:
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)
    writer.close()
    state = await wait_idle(env)
    image = state["storage"]["images"]["cut.img"]
    assert (image["complete"], image["size"]) == (False, cut)
    assert (env.paths.storage / ".__cut.img.incomplete").exists()
    assert (env.paths.storage / "cut.img").read_bytes() == data[:cut]

    # An incomplete image is neither connected nor read back...
    await env.post("/api/msd/set_params", image="cut.img")
    assert error("MsdImageIncompleteError")(await env.post("/api/msd/set_connected", connected=1))
    assert error("MsdImageIncompleteError")(await env.call("GET", "/api/msd/read", image="cut.img"))
    # ...and not overwritten by accident.
    assert error("MsdImageExistsError")(await env.upload("cut.img", data))
    assert error("MsdUploadOffsetError")(await env.upload("cut.img", data, offset=cut + 1))
    assert error("MsdUnknownImageError")(await env.upload("other.img", data, offset=0))

    # Resumed a little before its end (a client may not trust the last bytes it sent).
    resume = cut - 1000
    digest = hashlib.sha256(data).hexdigest()
    answer = await env.upload("cut.img", data[resume:], offset=resume, sha256=digest)
    assert answer == (
        200,
        {
            "ok": True,
            "result": {"image": {"name": "cut.img", "size": len(data), "written": len(data)}},
        },
    )
    assert (env.paths.storage / "cut.img").read_bytes() == data
    assert listing(env.paths.storage) == ["cut.img"]
    assert error("MsdImageExistsError")(await env.upload("cut.img", b"x", offset=len(data)))
    assert (await env.post("/api/msd/set_connected", connected=1))[0] == 200


async def test_an_upload_cut_before_its_first_byte_resumes_from_zero(env):
    (_, writer) = await raw_upload(env, "empty.img", b"", 4096)
    async with asyncio.timeout(5):
        while (await env.state())["storage"]["uploading"] is None:
            await asyncio.sleep(0.02)
    writer.close()
    image = (await wait_idle(env))["storage"]["images"]["empty.img"]
    assert (image["complete"], image["size"]) == (False, 0)
    assert (env.paths.storage / ".__empty.img.incomplete").exists()
    data = pattern(4096)
    # A fresh upload still refuses to overwrite it; offset=0 is the way to redo it.
    assert error("MsdImageExistsError")(await env.upload("empty.img", data))
    (status, answer) = await env.upload("empty.img", data, offset=0)
    assert (status, answer["result"]["image"]["written"]) == (200, 4096)
    assert (env.paths.storage / "empty.img").read_bytes() == data
    assert listing(env.paths.storage) == ["empty.img"]


async def test_interrupted_upload_with_remove_incomplete(env):
    (_, writer) = await raw_upload(env, "gone.img", b"x" * 100_000, 1_000_000, remove_incomplete=1)
    async with asyncio.timeout(5):
        while (await env.state())["storage"]["uploading"] is None:
            await asyncio.sleep(0.02)
    writer.close()
    state = await wait_idle(env)
    assert state["storage"]["images"] == {}
    assert listing(env.paths.storage) == []


async def test_upload_needs_content_length_and_space(env):
    async def chunked():
        yield b"no length"

    assert error("ValidatorError")(await env.upload("c.img", chunked()))
    (reader, writer) = await raw_upload(env, "huge.img", b"", 10**18)
    head = await reader.read(4096)
    writer.close()
    assert head.startswith(b"HTTP/1.1 400")
    assert b"MsdStorageFullError" in head
    assert listing(env.paths.storage) == []


def plain(data):
    return data


def unzstd(data):
    return zstandard.ZstdDecompressor().decompressobj().decompress(data)


async def test_read_back(env):
    data = pattern(1024 * 1024 + 5)
    await env.upload("dir/rb.img", data)
    for compress, unpack, suffix in [
        ("none", plain, ""),
        ("lzma", lzma.decompress, ".xz"),
        ("zstd", unzstd, ".zst"),
    ]:
        response = await env.client.get(
            "/api/msd/read", params={"image": "dir/rb.img", "compress": compress}, headers=ADMIN
        )
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/octet-stream"
        assert response.headers["Content-Disposition"] == (
            f"attachment; filename*=UTF-8''dir/rb.img{suffix}"
        )
        assert unpack(await response.read()) == data
    assert not (await env.state())["busy"]
    assert error("MsdUnknownImageError")(await env.call("GET", "/api/msd/read", image="no.img"))
    assert error("ValidatorError")(
        await env.call("GET", "/api/msd/read", image="dir/rb.img", compress="gzip")
    )


async def test_remove_and_reset(env):
    await env.upload("r.img", b"r" * 10)
    await env.post("/api/msd/set_params", image="r.img", cdrom=0)
    await env.post("/api/msd/set_connected", connected=1)
    assert (await env.post("/api/msd/reset"))[0] == 200
    assert env.paths.lun_files()["file"] == "\n"
    assert (env.paths.lun_files()["cdrom"], env.paths.lun_files()["ro"]) == ("1\n", "1\n")
    drive = (await env.state())["drive"]
    assert drive == {"image": None, "connected": False, "cdrom": True, "rw": False}
    await env.post("/api/msd/set_params", image="r.img")
    assert (await env.post("/api/msd/remove", image="r.img"))[0] == 200
    assert listing(env.paths.storage) == []
    state = await env.state()
    assert (state["drive"]["image"], state["storage"]["images"]) == (None, {})


async def test_offline_without_the_drive(make_client, make_config, tmp_path):
    paths = MsdPaths(tmp_path)
    (paths.gadget / "configs" / "c.1" / "mass_storage.usb0").unlink()
    (client, _) = await make_client(make_config(kvmd={"msd": paths.config()}))
    env = Env(client, None, paths)
    state = await env.state()
    assert (state["enabled"], state["online"], state["storage"], state["drive"]) == (
        True,
        False,
        None,
        None,
    )
    assert error("MsdOfflineError")(await env.upload("x.img", b"x"))
    assert error("MsdOfflineError")(await env.post("/api/msd/set_connected", connected=1))


async def test_disabled_msd_refuses_every_action(client):
    env = Env(client, None, None)
    disabled = error("MsdDisabledError")
    assert disabled(await env.upload("x.img", b"x"))
    assert disabled(await env.post("/api/msd/set_params", image="x.img"))
    assert disabled(await env.post("/api/msd/set_params", image="http://x/y.iso"))
    assert disabled(await env.post("/api/msd/set_connected", connected=1))
    assert disabled(await env.post("/api/msd/remove", image="x.img"))
    assert disabled(await env.post("/api/msd/reset"))
    assert disabled(await env.call("GET", "/api/msd/read", image="x.img"))
    assert disabled(await env.post("/api/msd/write_remote", url="http://127.0.0.1:1/x.iso"))


async def test_remount_around_changes(make_client, make_config, tmp_path):
    paths = MsdPaths(tmp_path)
    log = tmp_path / "remounts"
    cmd = ["sh", "-c", f'echo "$0" >> {log}', "{mode}"]
    (client, _) = await make_client(make_config(kvmd={"msd": paths.config(remount_cmd=cmd)}))
    env = Env(client, None, paths)
    assert log.read_text().split() == ["ro"]  # the start-up probe
    await env.upload("a.img", b"a")
    assert log.read_text().split() == ["ro", "rw", "ro"]
    await env.post("/api/msd/set_params", image="a.img", cdrom=0, rw=1)
    await env.post("/api/msd/set_connected", connected=1)
    assert log.read_text().split() == ["ro", "rw", "ro", "rw"]  # stays rw while the host writes
    await env.post("/api/msd/set_connected", connected=0)
    assert log.read_text().split() == ["ro", "rw", "ro", "rw", "ro"]


async def test_failed_remount_is_reported(make_client, make_config, tmp_path):
    paths = MsdPaths(tmp_path)
    cmd = ["sh", "-c", 'test "$0" = ro', "{mode}"]
    (client, _) = await make_client(make_config(kvmd={"msd": paths.config(remount_cmd=cmd)}))
    env = Env(client, None, paths)
    answer = await env.upload("a.img", b"a")
    assert answer == (
        500,
        {
            "ok": False,
            "result": {"error": "MsdError", "error_msg": "Can't remount the MSD storage rw"},
        },
    )
    assert not (await env.state())["busy"]


async def test_images_copied_in_by_hand_appear(make_client, make_config, tmp_path):
    paths = MsdPaths(tmp_path)
    (client, _) = await make_client(make_config(kvmd={"msd": paths.config()}), loops=True)
    ws = await client.ws_connect("/api/ws?stream=0", headers=ADMIN)
    (paths.storage / "sub").mkdir()
    await asyncio.sleep(0.3)  # the new directory is watched after the next reload
    (paths.storage / "sub" / "hand.iso").write_bytes(b"h" * 2048)
    (paths.storage / ".ignored").write_bytes(b"h")
    images = {}
    async with asyncio.timeout(5):
        while True:
            message = await ws.receive_json()
            if message["event_type"] == "msd":
                images = message["event"]["storage"]["images"]
                if "sub/hand.iso" in images:
                    break
    assert list(images) == ["sub/hand.iso"]
    assert (images["sub/hand.iso"]["size"], images["sub/hand.iso"]["complete"]) == (2048, True)
    await ws.close()


async def test_drive_state_is_taken_from_the_gadget_at_start(make_client, make_config, tmp_path):
    paths = MsdPaths(tmp_path)
    (paths.storage / "in.img").write_bytes(b"i" * 512)
    (paths.lun / "file").write_text(f"{paths.storage / 'in.img'}\n")
    (paths.lun / "cdrom").write_text("0\n")
    (paths.lun / "ro").write_text("0\n")
    (client, _) = await make_client(make_config(kvmd={"msd": paths.config()}))
    drive = (await Env(client, None, paths).state())["drive"]
    assert (drive["connected"], drive["cdrom"], drive["rw"]) == (True, False, True)
    assert drive["image"] == {
        "name": "in.img",
        "in_storage": True,
        "complete": True,
        "removable": True,
        "writable": True,
        "size": 512,
        "mod_ts": (paths.storage / "in.img").stat().st_mtime,
    }


REMOTE = pattern(3 * 1024 * 1024 + 11, seed=7)


_SIZE = len(REMOTE)


async def _trickle(request, *, headers=None, length=_SIZE, stop=_SIZE):
    response = web.StreamResponse(headers=headers or {})
    if length is not None:
        response.content_length = length
    await response.prepare(request)
    for start in range(0, stop, 256 * 1024):
        await response.write(REMOTE[start : min(start + 256 * 1024, stop)])
        await asyncio.sleep(0.01)
    return response


async def _broken(request):
    await _trickle(request, stop=1024 * 1024)
    request.transport.close()
    await asyncio.sleep(1)


async def _missing(request):
    raise web.HTTPNotFound


def _stuck(gate):
    async def handler(request):
        response = web.StreamResponse()
        response.content_length = _SIZE
        await response.prepare(request)
        await response.write(REMOTE[: 512 * 1024])
        await gate.wait()
        return response

    return handler


@pytest.fixture
async def remote(aiohttp_server):
    """An HTTP server to download from, trickling its bytes so that progress shows."""
    gate = asyncio.Event()
    disposition = {"Content-Disposition": 'attachment; filename="dl.img"'}
    app = web.Application()
    for path, handler in [
        ("/files/image.iso", _trickle),
        ("/files/download", functools.partial(_trickle, headers=disposition)),
        ("/missing.iso", _missing),
        ("/chunked.iso", functools.partial(_trickle, length=None)),
        ("/broken.iso", _broken),
        ("/stuck.iso", _stuck(gate)),
    ]:
        app.router.add_get(path, handler)
    server = await aiohttp_server(app)
    yield f"http://127.0.0.1:{server.port}"
    gate.set()


async def remote_lines(env, **params):
    response = await env.client.post("/api/msd/write_remote", params=params, headers=ADMIN)
    if response.headers["Content-Type"].startswith("application/json"):
        return (response.status, await response.json())
    assert response.headers["Content-Type"] == "application/x-ndjson; charset=utf-8"
    body = await response.read()
    assert body.endswith(b"\r\n")
    return (response.status, [json.loads(line) for line in body.split(b"\r\n")[:-1]])


async def test_write_remote(env, remote, monkeypatch):
    monkeypatch.setattr(msd_api, "_REMOTE_PROGRESS", 0.02)
    (status, lines) = await remote_lines(env, url=f"{remote}/files/image.iso")
    assert status == 200
    size = len(REMOTE)
    assert lines[0] == {
        "ok": True,
        "result": {"image": {"name": "image.iso", "size": size, "written": 0}},
    }
    assert lines[-1] == {
        "ok": True,
        "result": {"image": {"name": "image.iso", "size": size, "written": size}},
    }
    written = [line["result"]["image"]["written"] for line in lines]
    assert len(written) >= 4
    assert written == sorted(written)
    assert 0 < written[1] < size
    assert (env.paths.storage / "image.iso").read_bytes() == REMOTE
    assert (await env.state())["storage"]["images"]["image.iso"]["complete"] is True

    # The name: image= first, then Content-Disposition, then the URL's file name.
    (_, lines) = await remote_lines(env, url=f"{remote}/files/download", prefix="net")
    assert lines[-1]["result"]["image"]["name"] == "net/dl.img"
    (_, lines) = await remote_lines(env, url=f"{remote}/files/download", image="mine.img")
    assert lines[-1]["result"]["image"]["name"] == "mine.img"
    assert (env.paths.storage / "mine.img").read_bytes() == REMOTE
    digest = hashlib.sha256(REMOTE).hexdigest()
    (_, lines) = await remote_lines(
        env, url=f"{remote}/files/image.iso", image="s.iso", sha256=digest
    )
    assert lines[-1]["ok"] is True


async def test_write_remote_errors(env, remote):
    for params, name, status in [
        ({"url": f"{remote}/missing.iso"}, "MsdDownloadError", 400),
        ({"url": f"{remote}/chunked.iso"}, "MsdDownloadError", 400),
        ({"url": "http://127.0.0.1:1/refused.iso"}, "MsdDownloadError", 400),
        ({"url": "ftp://example.com/x.iso"}, "ValidatorError", 400),
        ({"url": f"{remote}/files/image.iso", "image": "../x.iso"}, "ValidatorError", 400),
        ({"url": f"{remote}/files/image.iso", "timeout": "0"}, "ValidatorError", 400),
    ]:
        answer = await remote_lines(env, **params)
        assert error(name, status)(answer), (params, answer)
    assert listing(env.paths.storage) == []

    # Once the stream began, a failure is the last line, after a last progress line.
    (status, lines) = await remote_lines(env, url=f"{remote}/broken.iso")
    assert status == 200
    assert lines[-2]["result"]["image"]["written"] == 1024 * 1024
    assert lines[-1]["ok"] is False
    assert lines[-1]["result"]["error"] == "MsdDownloadError"
    image = (await env.state())["storage"]["images"]["broken.iso"]
    assert (image["complete"], image["size"]) == (False, 1024 * 1024)

    (_, lines) = await remote_lines(
        env, url=f"{remote}/files/image.iso", image="bad.iso", sha256="0" * 64
    )
    assert lines[-1]["result"]["error"] == "MsdChecksumError"
    assert "bad.iso" not in (await env.state())["storage"]["images"]

    # An existing name is refused before anything is fetched into it.
    answer = await remote_lines(env, url=f"{remote}/files/image.iso", image="broken.iso")
    assert error("MsdImageExistsError")(answer)


async def test_write_remote_ends_when_its_client_leaves(env, remote):
    url = f"{remote}/stuck.iso"
    request = asyncio.create_task(
        env.client.post("/api/msd/write_remote", params={"url": url}, headers=ADMIN)
    )
    async with asyncio.timeout(5):
        while ((await env.state())["storage"]["uploading"] or {}).get("written", 0) == 0:
            await asyncio.sleep(0.02)
    response = await request
    response.close()  # hangs up mid-stream
    state = await wait_idle(env)
    image = state["storage"]["images"]["stuck.iso"]
    assert (image["complete"], image["size"]) == (False, 512 * 1024)
    assert (env.paths.storage / "stuck.iso").read_bytes() == REMOTE[: 512 * 1024]


async def test_progress_events_while_uploading(env):
    ws = await env.client.ws_connect("/api/ws?stream=0", headers=ADMIN)

    async def body():
        for _ in range(8):
            yield b"p" * 100_000
            await asyncio.sleep(0.06)

    upload = asyncio.create_task(
        env.upload("progress.img", body(), headers={"Content-Length": "800000"})
    )
    seen = []
    async with asyncio.timeout(10):
        while True:
            message = await ws.receive_json()
            if message["event_type"] != "msd":
                continue
            event = message["event"]
            seen.append((event["busy"], event["storage"]["uploading"]))
            if seen[-1][1] is None and len(seen) > 2 and not event["busy"]:
                break
    assert (await upload)[0] == 200
    progress = [uploading["written"] for (busy, uploading) in seen if uploading]
    assert progress == sorted(progress)
    assert len(set(progress)) >= 2  # the figure moves while it uploads
    assert all(uploading["size"] == 800_000 for (_, uploading) in seen if uploading)
    assert seen[-1] == (False, None)
    await ws.close()


async def test_a_drive_the_kernel_holds_is_locked(env, monkeypatch):
    await env.upload("l.img", b"l" * 100)
    await env.post("/api/msd/set_params", image="l.img")
    real = Path.write_text

    def busy(path, text, *args, **kwargs):
        if path.name == "file" and text.strip():
            raise OSError(errno.EBUSY, "Device or resource busy")
        return real(path, text, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", busy)
    assert await env.post("/api/msd/set_connected", connected=1) == (
        400,
        {
            "ok": False,
            "result": {"error": "MsdLockedError", "error_msg": "MSD is locked on IO operation"},
        },
    )
    assert not (await env.state())["busy"]
