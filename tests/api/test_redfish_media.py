# SPDX-License-Identifier: GPL-3.0-or-later
"""Redfish's Managers and virtual media on the otg MSD: shapes, permissions, bad input, and
MSD's own errors (issue 19, item 11)."""

import asyncio
import json

import pytest

from tests.api.test_msd import REMOTE, remote  # noqa: F401 -- the fixture, used below
from tests.authenv import write_users, xhdr
from tests.conftest import ADMIN
from tests.msdenv import MsdPaths, listing

BMC = "/redfish/v1/Managers/BMC"
DRIVE = f"{BMC}/VirtualMedia/MSD"
INSERT = f"{DRIVE}/Actions/VirtualMedia.InsertMedia"
EJECT = f"{DRIVE}/Actions/VirtualMedia.EjectMedia"


class Env:
    def __init__(self, client, paths):
        self.client = client
        self.paths = paths

    async def get(self, path, headers=ADMIN):
        response = await self.client.get(path, headers=headers)
        assert response.status == 200, await response.text()
        return await response.json()

    async def post(self, path, body, headers=ADMIN):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        response = await self.client.post(path, data=data, headers=headers)
        return (response.status, await response.read())

    async def upload(self, name, data=b"x" * 4096):
        response = await self.client.post(
            "/api/msd/write", params={"image": name}, data=data, headers=ADMIN
        )
        assert response.status == 200, await response.text()


@pytest.fixture
async def env(make_client, make_config, tmp_path):
    write_users(tmp_path)
    paths = MsdPaths(tmp_path)
    (client, _) = await make_client(make_config(kvmd={"msd": paths.config()}))
    return Env(client, paths)


def error_of(answer):
    (status, body) = answer
    return (status, json.loads(body)["result"]["error"])


async def test_managers_lead_to_the_drive(env):
    managers = await env.get("/redfish/v1/Managers")
    assert managers == {
        "@odata.id": "/redfish/v1/Managers",
        "@odata.type": "#ManagerCollection.ManagerCollection",
        "Members": [{"@odata.id": BMC}],
        "Members@odata.count": 1,
        "Name": "Manager Collection",
    }
    bmc = await env.get(BMC)
    assert bmc["@odata.type"] == "#Manager.v1_15_0.Manager"
    assert (bmc["Id"], bmc["ManagerType"]) == ("BMC", "BMC")
    assert bmc["VirtualMedia"] == {"@odata.id": f"{BMC}/VirtualMedia"}
    media = await env.get(f"{BMC}/VirtualMedia")
    assert media["@odata.type"] == "#VirtualMediaCollection.VirtualMediaCollection"
    assert (media["Members"], media["Members@odata.count"]) == ([{"@odata.id": DRIVE}], 1)


async def test_an_empty_drive(env):
    msd = (await env.get("/api/msd"))["result"]
    assert await env.get(DRIVE) == {
        "@odata.id": DRIVE,
        "@odata.type": "#VirtualMedia.v1_4_0.VirtualMedia",
        "Actions": {
            "#VirtualMedia.EjectMedia": {"target": EJECT},
            "#VirtualMedia.InsertMedia": {"target": INSERT},
        },
        "ConnectedVia": "NotConnected",
        "Description": "The virtual CD/DVD or flash drive",
        "Id": "MSD",
        "Image": None,
        "ImageName": None,
        "Inserted": False,
        "MediaTypes": ["USBStick", "CD", "DVD"],
        "Name": "Virtual CD/DVD/Flash Drive",
        "Oem": {
            "PiKVM": {
                "@odata.type": "#PiKVMVirtualMedia.v1_0_0.PiKVMVirtualMedia",
                "DriveOptical": msd["drive"]["cdrom"],
                "MsdBusy": False,
                "MsdEnabled": True,
                "MsdOnline": True,
            }
        },
        "WriteProtected": True,
    }


async def test_insert_a_stored_image_and_eject_it(env):
    await env.upload("dir/flash.img")
    await env.upload("rw.img")  # the storage takes no upload while the drive is connected
    assert await env.post(INSERT, {"Image": "dir/flash.img"}) == (204, b"")
    drive = await env.get(DRIVE)
    assert (drive["Image"], drive["ImageName"]) == ("dir/flash.img", "flash.img")
    assert (drive["Inserted"], drive["ConnectedVia"], drive["WriteProtected"]) == (
        True,
        "Oem",
        True,
    )
    assert drive["Oem"]["PiKVM"]["DriveOptical"] is False
    lun = {name: value.strip() for (name, value) in env.paths.lun_files().items()}
    assert (lun["file"].endswith("/dir/flash.img"), lun["ro"], lun["cdrom"]) == (True, "1", "0")

    # Another image replaces it; WriteProtected false makes the flash drive writable.
    body = {"Image": "rw.img", "WriteProtected": False, "TransferProtocolType": "OEM"}
    assert await env.post(INSERT, body) == (204, b"")
    drive = await env.get(DRIVE)
    assert (drive["Image"], drive["Inserted"], drive["WriteProtected"]) == ("rw.img", True, False)
    assert env.paths.lun_files()["ro"].strip() == "0"

    assert await env.post(EJECT, b"") == (204, b"")
    drive = await env.get(DRIVE)
    assert (drive["Image"], drive["Inserted"], drive["ConnectedVia"]) == (
        None,
        False,
        "NotConnected",
    )
    assert env.paths.lun_files()["file"].strip() == ""
    # Ejecting an empty drive is no error: clients eject before they insert.
    assert await env.post(EJECT, b"{}") == (204, b"")


async def test_an_iso_is_a_read_only_cd_and_inserted_false_only_selects(env):
    await env.upload("os.iso")
    body = {"Image": "os.iso", "WriteProtected": False, "Inserted": False}
    assert await env.post(INSERT, body) == (204, b"")
    drive = await env.get(DRIVE)
    assert (drive["Image"], drive["Inserted"], drive["ConnectedVia"]) == ("os.iso", False, "Oem")
    # A CD is never writable, whatever the client asked.
    assert (drive["Oem"]["PiKVM"]["DriveOptical"], drive["WriteProtected"]) == (True, True)
    assert env.paths.lun_files()["file"].strip() == ""


async def test_insert_a_url_downloads_it_first(env, remote):  # noqa: F811 -- the fixture
    assert await env.post(INSERT, {"Image": f"{remote}/files/image.iso"}) == (204, b"")
    assert (env.paths.storage / "image.iso").read_bytes() == REMOTE
    drive = await env.get(DRIVE)
    assert (drive["Image"], drive["Inserted"], drive["Oem"]["PiKVM"]["DriveOptical"]) == (
        "image.iso",
        True,
        True,
    )
    # A failed download is MSD's error, and leaves neither a file nor the old medium.
    answer = await env.post(INSERT, {"Image": f"{remote}/missing.iso"})
    assert error_of(answer) == (400, "MsdDownloadError")
    answer = await env.post(INSERT, {"Image": f"{remote}/broken.iso"})
    assert error_of(answer) == (400, "MsdDownloadError")
    assert listing(env.paths.storage) == ["image.iso"]
    assert (await env.get(DRIVE))["Inserted"] is False
    # The name is taken: as write_remote, no download over an image.
    answer = await env.post(INSERT, {"Image": f"{remote}/files/image.iso"})
    assert error_of(answer) == (400, "MsdImageExistsError")


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"", "ValidatorError"),
        (b"not json", "ValidatorError"),
        (b"[]", "ValidatorError"),
        (b"{}", "ValidatorError"),
        (b'{"Image": 5}', "ValidatorError"),
        (b'{"Image": "flash.img", "Inserted": "yes"}', "ValidatorError"),
        (b'{"Image": "flash.img", "WriteProtected": null}', "ValidatorError"),
        (b'{"Image": "../flash.img"}', "ValidatorError"),
        (b'{"Image": ""}', "ValidatorError"),
        (b'{"Image": "ftp://example.com/x.iso"}', "ValidatorError"),
        (b'{"Image": "nfs://example.com/x.iso"}', "ValidatorError"),
        (b'{"Image": "' + b"[" * 100_000 + b'"}', "ValidatorError"),
        (b"[" * 100_000, "ValidatorError"),
        (b'{"Image": "missing.img"}', "MsdUnknownImageError"),
    ],
    ids=lambda value: value[:40].decode() if isinstance(value, bytes) else value,
)
async def test_bad_insert_is_a_400_and_keeps_the_medium(env, body, error):
    await env.upload("flash.img")
    assert await env.post(INSERT, {"Image": "flash.img"}) == (204, b"")
    (status, answer) = await env.post(INSERT, body)
    assert (status, json.loads(answer)["result"]["error"]) == (400, error)
    drive = await env.get(DRIVE)
    assert (drive["Image"], drive["Inserted"]) == ("flash.img", True)


async def test_a_busy_drive_is_a_409(env):
    gate = asyncio.Event()

    async def body():
        yield b"x" * 1024
        await gate.wait()
        yield b"x" * 1024

    upload = asyncio.create_task(
        env.client.post(
            "/api/msd/write",
            params={"image": "slow.img"},
            data=body(),
            headers={**ADMIN, "Content-Length": "2048"},
        )
    )
    async with asyncio.timeout(5):
        while not (await env.get(DRIVE))["Oem"]["PiKVM"]["MsdBusy"]:
            await asyncio.sleep(0.02)
    assert error_of(await env.post(INSERT, {"Image": "slow.img"})) == (409, "MsdIsBusyError")
    assert error_of(await env.post(EJECT, b"")) == (409, "MsdIsBusyError")
    gate.set()
    assert (await upload).status == 200


async def test_viewer_reads_operator_inserts_nobody_else(env):
    await env.upload("flash.img")
    viewer = xhdr("viewer")
    for path in ("/redfish/v1/Managers", BMC, f"{BMC}/VirtualMedia", DRIVE):
        assert (await env.client.get(path, headers=viewer)).status == 200, path
        assert (await env.client.get(path)).status == 401, path
    for path in (INSERT, EJECT):
        (status, answer) = await env.post(path, {"Image": "flash.img"}, headers=viewer)
        assert status == 403
        assert json.loads(answer)["result"]["error_msg"] == "Permission 'msd' required"
        (status, _) = await env.post(path, {"Image": "flash.img"}, headers={})
        assert status == 401
    assert (await env.get(DRIVE))["Inserted"] is False
    operator = xhdr("operator")
    assert await env.post(INSERT, {"Image": "flash.img"}, headers=operator) == (204, b"")
    assert await env.post(EJECT, b"", headers=operator) == (204, b"")


async def test_insert_and_eject_are_audited(env, tmp_path):
    await env.upload("flash.img")
    await env.post(INSERT, {"Image": "flash.img"})
    await env.post(EJECT, b"")
    actions = [
        json.loads(line)["action"] for line in (tmp_path / "audit.log").read_text().splitlines()
    ]
    assert actions[-2:] == ["redfish.insert_media", "redfish.eject_media"]


async def test_without_msd_the_drive_is_empty_and_actions_fail_as_msd_does(client):
    response = await client.get(DRIVE, headers=ADMIN)
    drive = await response.json()
    assert (drive["Image"], drive["Inserted"], drive["WriteProtected"]) == (None, None, None)
    assert drive["ConnectedVia"] is None
    assert drive["Oem"]["PiKVM"] == {
        "@odata.type": "#PiKVMVirtualMedia.v1_0_0.PiKVMVirtualMedia",
        "DriveOptical": None,
        "MsdBusy": False,
        "MsdEnabled": False,
        "MsdOnline": False,
    }
    for path, body in ((INSERT, b'{"Image": "x.img"}'), (EJECT, b"")):
        response = await client.post(path, data=body, headers=ADMIN)
        assert response.status == 400
        assert (await response.json())["result"]["error"] == "MsdDisabledError"
