# SPDX-License-Identifier: GPL-3.0-or-later
"""/api/msd: the virtual drive and its image storage.

Images travel as streams both ways: an upload goes from the socket to the disk a buffer
at a time, a read-back from the disk to the socket, so neither ever sits in memory.
"""

import asyncio
import contextlib
import logging
import lzma
import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import PurePosixPath
from typing import Annotated, Literal
from urllib.parse import quote, unquote, urlsplit

import aiohttp
import msgspec
from aiohttp import web

from kvmd.auth.principal import Permission
from kvmd.errors import KvmdError, ValidatorError
from kvmd.plugins.msd.base import (
    ImageWriter,
    MsdBackend,
    MsdDisabledError,
    MsdDownloadError,
    MsdRemoteDisabledError,
    MsdUploadInterruptedError,
    Upload,
)
from kvmd.plugins.msd.names import image_name
from kvmd.server.auth import requires
from kvmd.server.errors import json_response
from kvmd.server.keys import MSD
from kvmd.server.params import parse_params
from kvmd.server.streaming import unless_gone

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()

Sha256 = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-fA-F]{64}$")]
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")

# write_remote reports progress this often, as PiKVM does.
_REMOTE_PROGRESS = 2.0
_REMOTE_READ_TIMEOUT = 7 * 24 * 3600.0
_REMOTE_CHUNK = 256 * 1024

ImageWriting = contextlib.AbstractAsyncContextManager[ImageWriter]


class SetParamsQuery(msgspec.Struct, frozen=True, kw_only=True):
    image: str | None = None
    cdrom: bool | None = None
    rw: bool | None = None


class ConnectedQuery(msgspec.Struct, frozen=True, kw_only=True):
    connected: bool


class ImageQuery(msgspec.Struct, frozen=True, kw_only=True):
    image: str


class ReadQuery(msgspec.Struct, frozen=True, kw_only=True):
    image: str
    compress: Literal["", "none", "lzma", "zstd"] = "none"


class WriteQuery(msgspec.Struct, frozen=True, kw_only=True):
    image: str
    prefix: str = ""
    remove_incomplete: bool = False
    # Beyond PiKVM: continue an incomplete image, and check the result.
    offset: Annotated[int, msgspec.Meta(ge=0)] | None = None
    sha256: Sha256 | None = None


class WriteRemoteQuery(msgspec.Struct, frozen=True, kw_only=True):
    url: Annotated[str, msgspec.Meta(pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://")]
    image: str = ""
    prefix: str = ""
    insecure: bool = False
    timeout: Annotated[float, msgspec.Meta(ge=0.1, le=3600.0)] = 10.0
    remove_incomplete: bool = False
    sha256: Sha256 | None = None


@routes.get("/msd")
@requires(Permission.STATE)
async def get_state(request: web.Request) -> web.Response:
    return json_response(request.app[MSD].state())


@routes.post("/msd/set_params")
@requires(Permission.MSD, audit="msd.set_params")
async def set_params(request: web.Request) -> web.Response:
    query = parse_params(request.query, SetParamsQuery)
    msd = request.app[MSD]
    image = query.image
    if image and _URL.match(image):
        _check_enabled(msd)
        raise MsdRemoteDisabledError
    if image:
        image = image_name(image)
    await msd.set_params(image=image, cdrom=query.cdrom, rw=query.rw)
    return json_response({})


@routes.post("/msd/set_connected")
@requires(Permission.MSD, audit="msd.set_connected")
async def set_connected(request: web.Request) -> web.Response:
    query = parse_params(request.query, ConnectedQuery)
    await request.app[MSD].set_connected(query.connected)
    return json_response({})


@routes.post("/msd/remove")
@requires(Permission.MSD, audit="msd.remove")
async def remove(request: web.Request) -> web.Response:
    query = parse_params(request.query, ImageQuery)
    await request.app[MSD].remove(image_name(query.image))
    return json_response({})


@routes.post("/msd/reset")
@requires(Permission.MSD, audit="msd.reset")
async def reset(request: web.Request) -> web.Response:
    await request.app[MSD].reset()
    return json_response({})


@routes.post("/msd/write")
@requires(Permission.MSD, audit="msd.write")
async def write(request: web.Request) -> web.Response:
    query = parse_params(request.query, WriteQuery)
    name = image_name(query.image, query.prefix)
    size = request.content_length
    if size is None:
        raise ValidatorError("The image must be sent with a Content-Length header")
    writer = request.app[MSD].write_image(
        Upload(
            name=name,
            size=size,
            offset=query.offset,
            sha256=query.sha256 and query.sha256.lower(),
            remove_incomplete=query.remove_incomplete,
        )
    )
    try:
        async with writer as image:
            async for data in request.content.iter_any():
                await image.write(data)
    except (aiohttp.ClientPayloadError, ConnectionError) as exc:
        # The client went away mid-body; it will not read this, but the log will.
        logger.warning("MSD: the upload of %r was cut off: %s", name, exc)
        raise MsdUploadInterruptedError from None
    return json_response({"image": _progress(image)})


@routes.post("/msd/write_remote")
@requires(Permission.MSD, audit="msd.write_remote")
async def write_remote(request: web.Request) -> web.StreamResponse:
    query = parse_params(request.query, WriteRemoteQuery)
    async with remote_image(request.app[MSD], query) as (remote, writer):
        return await _download(request, remote, writer)
    raise AssertionError("unreachable")  # pragma: no cover -- for mypy


@contextlib.asynccontextmanager
async def remote_image(
    msd: MsdBackend, query: WriteRemoteQuery
) -> AsyncIterator[tuple[aiohttp.ClientResponse, ImageWriting]]:
    """The answer for `query.url`, and the writer of its bytes into the storage, named."""
    _check_enabled(msd)
    timeout = aiohttp.ClientTimeout(
        total=None, connect=query.timeout, sock_connect=query.timeout,
        sock_read=_REMOTE_READ_TIMEOUT,
    )  # fmt: skip
    async with contextlib.AsyncExitStack() as stack:
        session = await stack.enter_async_context(aiohttp.ClientSession(timeout=timeout))
        remote = await _fetch(stack, session, query)
        name = _remote_name(query, remote)
        size = remote.content_length
        if size is None:
            raise MsdDownloadError("The server did not send a Content-Length")
        writer = msd.write_image(
            Upload(
                name=name,
                size=size,
                sha256=query.sha256 and query.sha256.lower(),
                remove_incomplete=query.remove_incomplete,
            )
        )
        yield (remote, writer)


def _check_enabled(msd: MsdBackend) -> None:
    if not msd.state().enabled:
        raise MsdDisabledError


async def _fetch(
    stack: contextlib.AsyncExitStack, session: aiohttp.ClientSession, query: WriteRemoteQuery
) -> aiohttp.ClientResponse:
    try:
        remote = await stack.enter_async_context(session.get(query.url, ssl=not query.insecure))
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise MsdDownloadError(f"Can't download {query.url}: {_describe(exc)}") from None
    if remote.status != 200:
        raise MsdDownloadError(f"Can't download {query.url}: HTTP {remote.status}")
    return remote


def _remote_name(query: WriteRemoteQuery, remote: aiohttp.ClientResponse) -> str:
    raw = query.image
    if not raw:
        disposition = remote.content_disposition
        raw = (disposition.filename if disposition is not None else None) or ""
    if not raw:
        raw = unquote(PurePosixPath(urlsplit(query.url).path).name)
    if not raw:
        raise MsdDownloadError("Can't tell the image name: pass image=")
    return image_name(raw, query.prefix)


class _ClientGoneError(Exception):
    pass


async def _download(
    request: web.Request,
    remote: aiohttp.ClientResponse,
    writer: ImageWriting,
) -> web.StreamResponse:
    response: web.StreamResponse | None = None
    image: ImageWriter | None = None
    try:
        async with writer as image:
            response = web.StreamResponse(
                headers={"Content-Type": "application/x-ndjson; charset=utf-8"}
            )
            await response.prepare(request)
            await _line(response, True, {"image": _progress(image)})
            await _pump_while_there(request, remote, image, response)
        await _line(response, True, {"image": _progress(image)})
        await response.write_eof()
    except _ClientGoneError:
        logger.warning("MSD: the client of the download of %r went away", image and image.name)
    except (KvmdError, aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
        if response is None:
            if isinstance(exc, KvmdError):
                raise
            raise MsdDownloadError(f"Can't download: {_describe(exc)}") from None
        error = exc if isinstance(exc, KvmdError) else MsdDownloadError(_describe(exc))
        with contextlib.suppress(ConnectionError):
            if image is not None:
                await _line(response, True, {"image": _progress(image)})
            await _line(response, False, {"error": type(error).__name__, "error_msg": error.msg})
            await response.write_eof()
    assert response is not None  # noqa: S101 -- set before anything that can go wrong
    return response


async def _pump_while_there(
    request: web.Request,
    remote: aiohttp.ClientResponse,
    image: ImageWriter,
    response: web.StreamResponse,
) -> None:
    if not await unless_gone(request, _pump(remote, image, response)):
        raise _ClientGoneError


async def _pump(
    remote: aiohttp.ClientResponse, image: ImageWriter, response: web.StreamResponse
) -> None:
    last = time.monotonic()
    async for data in remote.content.iter_chunked(_REMOTE_CHUNK):
        await image.write(data)
        now = time.monotonic()
        if now - last >= _REMOTE_PROGRESS:
            last = now
            await _line(response, True, {"image": _progress(image)})


async def _line(response: web.StreamResponse, ok: bool, result: object) -> None:
    await response.write(msgspec.json.encode({"ok": ok, "result": result}) + b"\r\n")


def _progress(image: ImageWriter) -> dict[str, object]:
    return {"name": image.name, "size": image.size, "written": image.written}


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


@routes.get("/msd/read")
@requires(Permission.MSD, audit="msd.read")
async def read(request: web.Request) -> web.StreamResponse:
    query = parse_params(request.query, ReadQuery)
    name = image_name(query.image)
    compress = query.compress if query.compress in ("lzma", "zstd") else ""
    async with request.app[MSD].read_image(name) as reader:
        suffix = {"lzma": ".xz", "zstd": ".zst"}.get(compress, "")
        response = web.StreamResponse(
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name + suffix)}",
            }
        )
        if not compress:
            response.content_length = reader.size
        await response.prepare(request)
        try:
            async for data in _compressed(reader.chunks(), compress):
                await response.write(data)
            await response.write_eof()
        except ConnectionError:
            logger.warning("MSD: the client reading %r went away", name)
    return response


async def _compressed(chunks: AsyncIterator[bytes], kind: str) -> AsyncIterator[bytes]:
    if not kind:
        async for data in chunks:
            yield data
        return
    (compress, flush) = _compressor(kind)
    async for data in chunks:
        packed = await asyncio.to_thread(compress, data)
        if packed:
            yield packed
    yield flush()


def _compressor(kind: str) -> tuple[Callable[[bytes], bytes], Callable[[], bytes]]:
    if kind == "lzma":
        # The fastest preset: at the default one a Pi would take an hour over a DVD image.
        xz = lzma.LZMACompressor(format=lzma.FORMAT_XZ, preset=1)
        return (xz.compress, xz.flush)
    import zstandard  # noqa: PLC0415 -- 1 MB of RSS, paid only by those who use it

    zst = zstandard.ZstdCompressor(level=3).compressobj()
    return (zst.compress, zst.flush)
