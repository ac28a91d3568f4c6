# SPDX-License-Identifier: GPL-3.0-or-later
"""/api/streamer: the video streamer, its parameters and snapshots; /streamer/stream."""

import asyncio
from typing import Annotated

import msgspec
from aiohttp import web

from kvmd.auth.principal import Permission
from kvmd.plugins.streamer.base import StreamerParams
from kvmd.plugins.streamer.preview import make_preview
from kvmd.server.auth import audit, require_change, requires
from kvmd.server.errors import json_response
from kvmd.server.keys import OCR, STREAMER
from kvmd.server.params import parse_params
from kvmd.server.relay import relay_stream

routes = web.RouteTableDef()

Size = Annotated[int, msgspec.Meta(ge=1, le=16384)]
Edge = Annotated[int, msgspec.Meta(ge=-1, le=65535)]  # -1: the image's edge


class SetParamsQuery(msgspec.Struct, frozen=True, kw_only=True):
    quality: Annotated[int, msgspec.Meta(ge=1, le=100)] | None = None
    desired_fps: Annotated[int, msgspec.Meta(ge=0, le=120)] | None = None
    resolution: (
        Annotated[str, msgspec.Meta(pattern=r"^[1-9][0-9]{0,4}x[1-9][0-9]{0,4}$")] | None
    ) = None
    h264_bitrate: Annotated[int, msgspec.Meta(ge=25, le=20000)] | None = None
    h264_gop: Annotated[int, msgspec.Meta(ge=0, le=60)] | None = None


class SnapshotQuery(msgspec.Struct, frozen=True, kw_only=True):
    save: bool = False
    load: bool = False
    allow_offline: bool = False
    preview: bool = False
    preview_max_width: Size | None = None
    preview_max_height: Size | None = None
    preview_quality: Annotated[int, msgspec.Meta(ge=1, le=100)] = 80
    ocr: bool = False
    ocr_langs: str = ""
    ocr_left: Edge = -1
    ocr_top: Edge = -1
    ocr_right: Edge = -1
    ocr_bottom: Edge = -1


@routes.get("/streamer")
@requires(Permission.STATE)
async def get_state(request: web.Request) -> web.Response:
    return json_response(request.app[STREAMER].state())


@routes.get("/streamer/ocr")
@requires(Permission.STATE)
async def get_ocr(request: web.Request) -> web.Response:
    return json_response({"ocr": request.app[OCR].state()})


@routes.post("/streamer/set_params")
@requires(Permission.STREAMER, audit="streamer.set_params")
async def set_params(request: web.Request) -> web.Response:
    query = parse_params(request.query, SetParamsQuery)
    streamer = request.app[STREAMER]
    current = streamer.state().params
    fps = current.desired_fps if query.desired_fps is None else query.desired_fps
    params = StreamerParams(**(msgspec.structs.asdict(query) | {"desired_fps": fps}))
    await streamer.set_params(params)
    return json_response({})


@routes.post("/streamer/reset")
@requires(Permission.STREAMER, audit="streamer.reset")
async def reset(request: web.Request) -> web.Response:
    await request.app[STREAMER].reset()
    return json_response({})


@routes.get("/streamer/snapshot")
@requires(Permission.VIDEO)
async def get_snapshot(request: web.Request) -> web.Response:
    query = parse_params(request.query, SnapshotQuery)
    if query.save:  # replaces the saved snapshot, which only `streamer` may delete
        require_change(request, Permission.STREAMER)
    langs = request.app[OCR].check_langs(query.ocr_langs) if query.ocr else []
    snapshot = await request.app[STREAMER].snapshot(
        allow_offline=query.allow_offline, save=query.save, load=query.load
    )
    if query.save:
        audit(request, "streamer.save_snapshot")
    if query.ocr:
        box = (query.ocr_left, query.ocr_top, query.ocr_right, query.ocr_bottom)
        text = await request.app[OCR].recognize(snapshot.jpeg, langs, box)
        return web.Response(text=text, content_type="text/plain", headers=snapshot.headers)
    jpeg = snapshot.jpeg
    if query.preview:
        width, height, quality = (
            query.preview_max_width,
            query.preview_max_height,
            query.preview_quality,
        )
        jpeg = await asyncio.to_thread(make_preview, jpeg, width, height, quality)
    return web.Response(body=jpeg, content_type="image/jpeg", headers=snapshot.headers)


@routes.delete("/streamer/snapshot")
@requires(Permission.STREAMER, audit="streamer.delete_snapshot")
async def delete_snapshot(request: web.Request) -> web.Response:
    request.app[STREAMER].forget_snapshot()
    return json_response({})


@routes.get("/streamer/stream")
@requires(Permission.VIDEO)
async def stream(request: web.Request) -> web.StreamResponse:
    async with request.app[STREAMER].hold() as unix:
        return await relay_stream(request, unix)
