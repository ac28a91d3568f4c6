# SPDX-License-Identifier: GPL-3.0-or-later
"""/redfish/v1/Managers: the one manager (this KVM) and its virtual media, the MSD drive.

InsertMedia takes an image of the storage by name, as PiKVM's does, or, beyond PiKVM, an
http(s) URL, which is downloaded into the storage first, as /api/msd/write_remote does.
"""

import posixpath

import aiohttp
import msgspec
from aiohttp import web

from kvmd.api.msd import WriteRemoteQuery, remote_image
from kvmd.api.redfish.common import (
    ROOT,
    add_fixed,
    collection,
    json_answer,
    no_content,
    read_body,
)
from kvmd.auth.principal import Permission
from kvmd.plugins.msd.base import MsdBackend, MsdDownloadError, MsdUnknownImageError
from kvmd.plugins.msd.names import image_name
from kvmd.server.auth import requires
from kvmd.server.keys import MSD
from kvmd.server.params import parse_params

routes = web.RouteTableDef()

MANAGERS = f"{ROOT}/Managers"
BMC = f"{MANAGERS}/BMC"
MEDIA = f"{BMC}/VirtualMedia"
DRIVE = f"{MEDIA}/MSD"

_CHUNK = 256 * 1024


class InsertRequest(msgspec.Struct, frozen=True, kw_only=True):
    # Other members clients send (TransferProtocolType, UserName, ...) are ignored.
    Image: str
    Inserted: bool = True
    WriteProtected: bool = True


add_fixed(
    routes,
    Permission.STATE,
    MANAGERS,
    collection(MANAGERS, "ManagerCollection", "Manager Collection", [BMC]),
)
add_fixed(
    routes,
    Permission.STATE,
    BMC,
    {
        "@odata.id": BMC,
        "@odata.type": "#Manager.v1_15_0.Manager",
        "Description": "The IP-KVM",
        "Id": "BMC",
        "ManagerType": "BMC",
        "Name": "KVM Manager",
        "VirtualMedia": {"@odata.id": MEDIA},
    },
)
add_fixed(
    routes,
    Permission.STATE,
    MEDIA,
    collection(MEDIA, "VirtualMediaCollection", "Virtual Media Collection", [DRIVE]),
)


@routes.get(DRIVE)
@requires(Permission.STATE)
async def drive(request: web.Request) -> web.Response:
    state = request.app[MSD].state()
    drive = state.drive if state.online else None
    image = drive.image.name if drive is not None and drive.image is not None else None
    return json_answer(
        {
            "@odata.id": DRIVE,
            "@odata.type": "#VirtualMedia.v1_4_0.VirtualMedia",
            "Actions": {
                "#VirtualMedia.EjectMedia": {"target": f"{DRIVE}/Actions/VirtualMedia.EjectMedia"},
                "#VirtualMedia.InsertMedia": {
                    "target": f"{DRIVE}/Actions/VirtualMedia.InsertMedia"
                },
            },
            "ConnectedVia": None if drive is None else ("Oem" if image else "NotConnected"),
            "Description": "The virtual CD/DVD or flash drive",
            "Id": "MSD",
            "Image": image,
            "ImageName": image and posixpath.basename(image),
            "Inserted": None if drive is None else drive.connected,
            "MediaTypes": ["USBStick", "CD", "DVD"],
            "Name": "Virtual CD/DVD/Flash Drive",
            "Oem": {
                "PiKVM": {
                    "@odata.type": "#PiKVMVirtualMedia.v1_0_0.PiKVMVirtualMedia",
                    "DriveOptical": None if drive is None else drive.cdrom,
                    "MsdBusy": state.busy,
                    "MsdEnabled": state.enabled,
                    "MsdOnline": state.online,
                }
            },
            # PiKVM gives the drive's rw here, the inverse of what the name says.
            "WriteProtected": None if drive is None else not drive.rw,
        }
    )


@routes.post(f"{DRIVE}/Actions/VirtualMedia.InsertMedia")
@requires(Permission.MSD, audit="redfish.insert_media")
async def insert_media(request: web.Request) -> web.Response:
    body = await read_body(request, InsertRequest, "InsertMedia")
    msd = request.app[MSD]
    # Bad input must fail before the current medium is pulled out.
    if "://" in body.Image:
        remote = parse_params({"url": body.Image, "remove_incomplete": "1"}, WriteRemoteQuery)
        await _eject(msd)  # the storage takes no image while the drive is connected
        name = await _download(msd, remote)
    else:
        name = _stored(msd, body.Image)
        await _eject(msd)
    await msd.set_params(image=name, cdrom=_is_disc(name), rw=not body.WriteProtected)
    if body.Inserted:
        await msd.set_connected(True)
    return no_content()


@routes.post(f"{DRIVE}/Actions/VirtualMedia.EjectMedia")
@requires(Permission.MSD, audit="redfish.eject_media")
async def eject_media(request: web.Request) -> web.Response:
    await _eject(request.app[MSD])
    return no_content()


def _stored(msd: MsdBackend, raw: str) -> str:
    name = image_name(raw, arg="Image")
    storage = msd.state().storage
    if storage is not None and name not in storage.images:
        raise MsdUnknownImageError
    return name  # without a storage, set_params names the real trouble (disabled, offline)


def _is_disc(name: str) -> bool:
    # PiKVM meant this too, but tests the prefix, so its drive is always a flash drive.
    return name.lower().endswith(".iso")


async def _eject(msd: MsdBackend) -> None:
    """Pull the medium out, if any, and unselect it; ejecting nothing is no error."""
    drive = msd.state().drive
    if drive is not None and drive.connected:
        await msd.set_connected(False)
    await msd.set_params(image="")


async def _download(msd: MsdBackend, query: WriteRemoteQuery) -> str:
    async with remote_image(msd, query) as (remote, writer), writer as image:
        try:
            async for data in remote.content.iter_chunked(_CHUNK):
                await image.write(data)
        except (aiohttp.ClientError, TimeoutError) as exc:
            reason = str(exc) or type(exc).__name__
            raise MsdDownloadError(f"Can't download {query.url}: {reason}") from None
    return image.name
