# SPDX-License-Identifier: GPL-3.0-or-later
"""/api/hid: keyboard and mouse state, input events, paste."""

import asyncio
from pathlib import Path
from typing import Annotated, Literal

import msgspec
from aiohttp import web
from msgspec import Meta

from kvmd.auth.principal import Permission
from kvmd.bus import Topic
from kvmd.errors import ValidatorError
from kvmd.plugins.hid.base import HidBackend
from kvmd.plugins.hid.keys import KEYS, Key
from kvmd.plugins.hid.layouts import Layout, LayoutError, layout_path
from kvmd.server.auth import requires
from kvmd.server.errors import json_response
from kvmd.server.keys import BUS, CONFIG, HID
from kvmd.server.params import parse_params

routes = web.RouteTableDef()

Button = Literal["left", "right", "middle", "up", "down"]
# PiKVM clamps these; a script that sends 99999 has a bug it should hear about, so the
# HTTP API refuses it (the websocket, fed by the web UI at mouse rate, still clamps).
Coordinate = Annotated[int, Meta(ge=-32768, le=32767)]
# A shortcut longer than this is not a shortcut.
MAX_SHORTCUT = 16
# Pause between the events of a shortcut: some hosts miss a chord sent in one go.
SHORTCUT_DELAY = 0.05


class ParamsQuery(msgspec.Struct, frozen=True, kw_only=True):
    keyboard_output: Literal["usb", "ps2", "disabled"] | None = None
    mouse_output: Literal["usb", "usb_win98", "usb_rel", "ps2", "disabled"] | None = None
    jiggler: bool | None = None


class ConnectedQuery(msgspec.Struct, frozen=True, kw_only=True):
    connected: bool


class PrintQuery(msgspec.Struct, frozen=True, kw_only=True):
    limit: Annotated[int, Meta(ge=0)] = 1024
    keymap: str = ""
    slow: bool = False
    delay: Annotated[float, Meta(ge=0, le=5)] | None = None


class KeyQuery(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    state: bool | None = None
    finish: bool = False


class ShortcutQuery(msgspec.Struct, frozen=True, kw_only=True):
    keys: str


class ButtonQuery(msgspec.Struct, frozen=True, kw_only=True):
    button: Button
    state: bool | None = None


class MoveQuery(msgspec.Struct, frozen=True, kw_only=True):
    to_x: Coordinate
    to_y: Coordinate


class DeltaQuery(msgspec.Struct, frozen=True, kw_only=True):
    delta_x: int
    delta_y: int


class Inactivity(msgspec.Struct, frozen=True):
    inactivity: int


class LayoutQuery(msgspec.Struct, frozen=True, kw_only=True):
    keymap: str = ""


class XkbSource(msgspec.Struct, frozen=True, kw_only=True):
    layout: str
    variant: str


class LayoutResult(msgspec.Struct, frozen=True, kw_only=True):
    keymap: str
    # The XKB layout the keymap file was generated from; null when the file does not say.
    xkb: XkbSource | None
    # Web key name: what it types plain, with Shift, AltGr and both ("" for nothing).
    keys: dict[str, list[str]]


class PrintResult(msgspec.Struct, frozen=True, omit_defaults=True):
    # Characters the layout cannot type; absent when everything was typed.
    skipped: str = ""


def _key(name: str) -> Key:
    key = KEYS.get(name)
    if key is None:
        raise ValidatorError(f"The argument {name[:64]!r} is not a valid key name")
    return key


def _layout(request: web.Request, name: str) -> Layout:
    configured = Path(request.app[CONFIG].kvmd.hid.keymap)
    try:
        return Layout.load(layout_path(configured.parent, name or configured.name))
    except LayoutError:
        raise ValidatorError(f"The argument {name[:64]!r} is not a valid keymap") from None


async def _text(request: web.Request) -> str:
    try:
        return (await request.read()).decode("utf-8")
    except UnicodeDecodeError:
        raise ValidatorError("The text to print is not valid UTF-8") from None


@routes.get("/hid")
@requires(Permission.STATE)
async def get_state(request: web.Request) -> web.Response:
    return json_response(request.app[HID].state())


@routes.get("/hid/keymaps")
@requires(Permission.STATE)
async def get_keymaps(request: web.Request) -> web.Response:
    return json_response(request.app[BUS].state(Topic.HID_KEYMAPS))


@routes.get("/hid/keymaps/layout")
@requires(Permission.STATE)
async def get_keymap_layout(request: web.Request) -> web.Response:
    query = parse_params(request.query, LayoutQuery)
    layout = _layout(request, query.keymap)
    xkb = XkbSource(layout=layout.source[0], variant=layout.source[1]) if layout.source else None
    return json_response(LayoutResult(keymap=layout.name, xkb=xkb, keys=layout.legend()))


@routes.get("/hid/inactivity")
@requires(Permission.STATE)
async def get_inactivity(request: web.Request) -> web.Response:
    return json_response(Inactivity(inactivity=request.app[HID].inactivity()))


@routes.post("/hid/set_params")
@requires(Permission.HID, audit="hid.set_params")
async def set_params(request: web.Request) -> web.Response:
    query = parse_params(request.query, ParamsQuery)
    request.app[HID].set_params(
        keyboard_output=query.keyboard_output,
        mouse_output=query.mouse_output,
        jiggler=query.jiggler,
    )
    return json_response({})


@routes.post("/hid/set_connected")
@requires(Permission.HID, audit="hid.set_connected")
async def set_connected(request: web.Request) -> web.Response:
    query = parse_params(request.query, ConnectedQuery)
    await request.app[HID].set_connected(query.connected)
    return json_response({})


@routes.post("/hid/reset")
@requires(Permission.HID, audit="hid.reset")
async def reset(request: web.Request) -> web.Response:
    await request.app[HID].reset()
    return json_response({})


@routes.post("/hid/print")
@requires(Permission.HID, counts_hid=True)
async def print_text(request: web.Request) -> web.Response:
    query = parse_params(request.query, PrintQuery)
    layout = _layout(request, query.keymap)
    text = await _text(request)
    plan = layout.plan(text[: query.limit] if query.limit else text)
    delay = query.delay if query.delay is not None else (0.02 if query.slow else 0.0)
    await request.app[HID].type_strokes(plan.strokes, delay=delay)
    return json_response(PrintResult(skipped=plan.skipped))


@routes.post("/hid/events/send_key")
@requires(Permission.HID, counts_hid=True)
async def send_key(request: web.Request) -> web.Response:
    query = parse_params(request.query, KeyQuery)
    key = _key(query.key)
    if query.state is None:
        # Press and release, but a modifier stays down for the next call (PiKVM does so).
        request.app[HID].send_key(key, state=True, finish=True)
    else:
        request.app[HID].send_key(key, state=query.state, finish=query.finish)
    return json_response({})


@routes.post("/hid/events/send_shortcut")
@requires(Permission.HID, counts_hid=True)
async def send_shortcut(request: web.Request) -> web.Response:
    query = parse_params(request.query, ShortcutQuery)
    keys = [_key(name) for name in query.keys.replace(",", " ").split()]
    if not 0 < len(keys) <= MAX_SHORTCUT:
        raise ValidatorError(f"The argument {query.keys[:64]!r} is not a valid keys list")
    await asyncio.shield(_press_shortcut(request.app[HID], keys))
    return json_response({})


async def _press_shortcut(hid: HidBackend, keys: list[Key]) -> None:
    # Shielded: a client that goes away mid-chord must not leave Ctrl+Alt held down.
    try:
        for key in keys:
            hid.send_key(key, state=True)
            await asyncio.sleep(SHORTCUT_DELAY)
    finally:
        for key in reversed(keys):
            hid.send_key(key, state=False)
    await hid.wait_sent()


@routes.post("/hid/events/send_mouse_button")
@requires(Permission.HID, counts_hid=True)
async def send_mouse_button(request: web.Request) -> web.Response:
    query = parse_params(request.query, ButtonQuery)
    hid = request.app[HID]
    if query.state is None:
        hid.send_mouse_button(query.button, state=True)
        hid.send_mouse_button(query.button, state=False)
    else:
        hid.send_mouse_button(query.button, state=query.state)
    return json_response({})


@routes.post("/hid/events/send_mouse_move")
@requires(Permission.HID, counts_hid=True)
async def send_mouse_move(request: web.Request) -> web.Response:
    query = parse_params(request.query, MoveQuery)
    request.app[HID].send_mouse_move(query.to_x, query.to_y)
    return json_response({})


@routes.post("/hid/events/send_mouse_relative")
@requires(Permission.HID, counts_hid=True)
async def send_mouse_relative(request: web.Request) -> web.Response:
    query = parse_params(request.query, DeltaQuery)
    request.app[HID].send_mouse_relative(query.delta_x, query.delta_y)
    return json_response({})


@routes.post("/hid/events/send_mouse_wheel")
@requires(Permission.HID, counts_hid=True)
async def send_mouse_wheel(request: web.Request) -> web.Response:
    query = parse_params(request.query, DeltaQuery)
    request.app[HID].send_mouse_wheel(query.delta_x, query.delta_y)
    return json_response({})
