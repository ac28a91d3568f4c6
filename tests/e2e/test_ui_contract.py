# SPDX-License-Identifier: GPL-3.0-or-later
"""Every field PiKVM's web UI reads from `/api/ws`, present with the type it expects.

The table is what the stock UI (kvmd 4.x `web/share/js`: session.js, hid.js, keyboard.js,
mouse.js, atx.js, msd.js, gpio.js, stream*.js, info.js, ocr.js, paste.js) reads from each
event, written down from its behaviour. The UI connects without a query (`stream=1`),
merges partial events into the last full state, and reads these paths from the result;
the test does the same against `make run` with the streamer running, an image uploaded
and selected, so that every optional branch the UI walks has data.

Path syntax: `a.b` a key, `{*}` every value of a map, `[*]` every element of an array.
"""

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from tests.e2e.test_pikvm_clients import Socket, api, basic, websocket
from tests.e2e.webui import Kvm

pytestmark = pytest.mark.timeout(90)

_TYPES: dict[str, tuple[type, ...]] = {
    "bool": (bool,),
    "int": (int,),
    "number": (int, float),
    "str": (str,),
    "object": (dict,),
    "array": (list,),
    "null": (type(None),),
}

# (event type, path, types it may have). "required" paths must resolve to at least one
# value; the UI throws or shows nothing without them.
UI_READS: list[tuple[str, str, str]] = [
    # hid.js, keyboard.js, mouse.js: nothing is shown until `enabled` was seen.
    ("hid", "enabled", "bool"),
    ("hid", "online", "bool"),
    ("hid", "busy", "bool"),
    ("hid", "connected", "bool|null"),
    ("hid", "jiggler.enabled", "bool"),
    ("hid", "jiggler.active", "bool"),
    ("hid", "keyboard.online", "bool"),
    ("hid", "keyboard.leds.caps", "bool"),
    ("hid", "keyboard.leds.scroll", "bool"),
    ("hid", "keyboard.leds.num", "bool"),
    ("hid", "keyboard.outputs.available", "array"),
    ("hid", "keyboard.outputs.active", "str"),
    ("hid", "mouse.online", "bool"),
    ("hid", "mouse.absolute", "bool"),
    ("hid", "mouse.outputs.available[*]", "str"),
    ("hid", "mouse.outputs.active", "str"),
    # atx.js
    ("atx", "enabled", "bool"),
    ("atx", "busy", "bool"),
    ("atx", "leds.power", "bool"),
    ("atx", "leds.hdd", "bool"),
    # session.js, msd.js
    ("msd", "enabled", "bool"),
    ("msd", "online", "bool"),
    ("msd", "busy", "bool"),
    ("msd", "drive.connected", "bool"),
    ("msd", "drive.cdrom", "bool"),
    ("msd", "drive.rw", "bool"),
    ("msd", "drive.image.name", "str"),
    ("msd", "drive.image.in_storage", "bool"),
    ("msd", "drive.image.complete", "bool"),
    ("msd", "drive.image.removable", "bool"),
    ("msd", "drive.image.size", "int"),
    ("msd", "drive.image.mod_ts", "number"),
    ("msd", "storage.parts{*}.size", "int"),
    ("msd", "storage.parts{*}.free", "int"),
    ("msd", "storage.parts{*}.writable", "bool"),
    ("msd", "storage.uploading", "object|null"),
    ("msd", "storage.downloading", "object|null"),
    ("msd", "storage.images{*}.size", "int"),
    ("msd", "storage.images{*}.complete", "bool"),
    ("msd", "storage.images{*}.mod_ts", "number"),
    # gpio.js: the menu is built from the model, then driven by the state.
    ("gpio", "model.view.table", "array"),
    ("gpio", "model.view.header.title[*].type", "str"),
    ("gpio", "model.view.table[*]", "array|null"),
    ("gpio", "model.view.table[*][*].type", "str"),
    ("gpio", "model.scheme.outputs{*}.switch", "bool"),
    ("gpio", "model.scheme.outputs{*}.pulse.delay", "number"),
    ("gpio", "state.inputs{*}.state", "bool"),
    ("gpio", "state.outputs{*}.online", "bool"),
    ("gpio", "state.outputs{*}.busy", "bool"),
    ("gpio", "state.outputs{*}.state", "bool"),
    # stream.js, stream_mjpeg.js: `features` gates the rest; `applied` sets the sliders.
    ("streamer", "features.quality", "bool"),
    ("streamer", "features.resolution", "bool"),
    ("streamer", "features.h264", "bool"),
    # With features.h264 (make run has it): the bitrate and GOP sliders.
    ("streamer", "limits.h264_bitrate.min", "int"),
    ("streamer", "limits.h264_bitrate.max", "int"),
    ("streamer", "limits.h264_gop.min", "int"),
    ("streamer", "limits.h264_gop.max", "int"),
    ("streamer", "applied.h264_bitrate", "int"),
    ("streamer", "applied.h264_gop", "int"),
    ("streamer", "limits.desired_fps.min", "int"),
    ("streamer", "limits.desired_fps.max", "int"),
    ("streamer", "applied.quality", "int"),
    ("streamer", "applied.desired_fps", "int"),
    ("streamer", "streamer.source.resolution.width", "int"),
    ("streamer", "streamer.source.resolution.height", "int"),
    ("streamer", "streamer.source.online", "bool"),
    ("streamer", "streamer.source.desired_fps", "int"),
    ("streamer", "streamer.encoder.quality", "int"),
    ("streamer", "streamer.stream.clients_stat{*}.fps", "int"),
    # info.js: each category arrives in its own event.
    ("info", "node.host", "str"),
    ("info", "meta", "object|null"),
    ("info", "health.throttling", "object|null"),
    ("info", "health.throttling.parsed_flags{*}.now", "bool"),
    ("info", "health.throttling.parsed_flags{*}.past", "bool"),
    ("info", "health.throttling.parsed_flags.undervoltage.now", "bool"),
    ("info", "health.throttling.parsed_flags.freq_capped.now", "bool"),
    ("info", "health.throttling.ignore_past", "bool"),
    ("info", "health.temp{*}", "number"),
    ("info", "health.cpu.percent", "number"),
    ("info", "health.mem.percent", "number"),
    ("info", "fan.monitored", "bool"),
    ("info", "fan.state", "object|null"),
    ("info", "system.platform.base", "str|null"),
    ("info", "system.platform.model", "str|null"),
    ("info", "system.platform.video", "str|null"),
    ("info", "system.platform.board", "str|null"),
    ("info", "system.platform.serial", "str|null"),
    ("info", "system.kvmd.version", "str"),
    ("info", "system.streamer.app", "str"),
    ("info", "system.streamer.version", "str"),
    ("info", "system.streamer.features{*}", "bool"),
    ("info", "system.kernel{*}", "str"),
    ("info", "system.kernel.system", "str"),
    ("info", "extras", "object"),
    ("info", "extras{*}.enabled", "bool"),
    ("info", "extras{*}.started", "bool"),
    ("info", "extras{*}.place", "int"),
    ("info", "extras{*}.path", "str"),
    ("info", "extras{*}.name", "str"),
    # ocr.js, paste.js; `clients` for scripts that count watchers.
    ("ocr", "enabled", "bool"),
    ("ocr", "langs.available[*]", "str"),
    ("ocr", "langs.default[*]", "str"),
    ("hid_keymaps", "keymaps.default", "str"),
    ("hid_keymaps", "keymaps.available[*]", "str"),
    ("clients", "count", "int"),
]

# The UI takes these events whole (hid.js copies keyboard/mouse unconditionally).
WHOLE = {"hid", "atx", "hid_keymaps"}
IMAGE = "ui-contract.iso"


def resolve(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    """Every (concrete path, value) that `path` names in `value`; nothing if absent."""
    yield from _walk(value, path.replace("{*}", ".{*}").replace("[*]", ".[*]").split("."), "")


def _walk(value: Any, steps: list[str], at: str) -> Iterator[tuple[str, Any]]:
    if not steps:
        yield (at, value)
        return
    (step, rest) = (steps[0], steps[1:])
    if step == "":
        yield from _walk(value, rest, at)
    elif step == "{*}" and isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, rest, f"{at}{{{key}}}")
    elif step == "[*]" and isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, rest, f"{at}[{index}]")
    elif isinstance(value, dict) and step in value:
        yield from _walk(value[step], rest, f"{at}.{step}" if at else step)


def test_resolve_names_every_value_and_nothing_absent() -> None:
    state = {"a": {"x": {"n": 1}, "y": {"n": 2}}, "l": [[1], None], "z": None}
    assert list(resolve(state, "a{*}.n")) == [("a{x}.n", 1), ("a{y}.n", 2)]
    assert list(resolve(state, "l[*][*]")) == [("l[0][0]", 1)]
    assert list(resolve(state, "z.missing")) == []
    assert list(resolve(state, "b")) == []


def merged(ws: Socket) -> dict[str, dict[str, Any]]:
    """Each event type's state as the UI holds it: partial events merged into the last."""
    states: dict[str, dict[str, Any]] = {}
    for event in ws.events:
        if isinstance(event["event"], dict):
            states.setdefault(event["event_type"], {}).update(event["event"])
    return states


@contextlib.asynccontextmanager
async def selected_image(kvm: Kvm) -> AsyncIterator[None]:
    """An image in storage, selected for the drive; gone again afterwards."""
    async with aiohttp.ClientSession() as session:
        url = f"{kvm.url}/api/msd/write?image={IMAGE}"
        async with session.post(url, data=b"\0" * 4096, headers=basic()) as response:
            assert response.status == 200, await response.text()
    try:
        await api(kvm, "POST", f"/msd/set_params?image={IMAGE}&cdrom=1")
        yield
    finally:
        await api(kvm, "POST", "/msd/set_params?image=")
        await api(kvm, "POST", f"/msd/remove?image={IMAGE}")


def ready(states: dict[str, dict[str, Any]]) -> bool:
    streamer = states.get("streamer", {}).get("streamer") or {}
    drive = states.get("msd", {}).get("drive") or {}
    health = states.get("info", {}).get("health") or {}
    return (
        bool(streamer.get("stream", {}).get("clients_stat"))
        and (drive.get("image") or {}).get("name") == IMAGE
        and (health.get("cpu") or {}).get("percent") is not None
        and {"hid", "atx", "gpio", "ocr", "hid_keymaps", "clients"} <= states.keys()
    )


async def test_every_field_the_stock_ui_reads_has_its_type(kvm: Kvm) -> None:
    # The UI's MJPEG <img> makes a watcher in clients_stat, as the UI looks for its own.
    async with (
        selected_image(kvm),
        websocket(kvm, "") as ws,
        aiohttp.ClientSession() as session,
        session.get(f"{kvm.url}/streamer/stream?key=uicontract", headers=basic()),
    ):
        await ws.until(lambda _: ready(merged(ws)), seconds=30)
    states = merged(ws)
    problems = []
    for event_type, path, types in UI_READS:
        allowed = tuple(t for name in types.split("|") for t in _TYPES[name])
        found = list(resolve(states.get(event_type, {}), path))
        if not found:
            problems.append(f"{event_type}.{path}: missing")
        for where, value in found:
            # bool is an int in Python; the UI tells them apart.
            wrong_bool = isinstance(value, bool) and bool not in allowed
            if wrong_bool or not isinstance(value, allowed):
                problems.append(f"{event_type}.{where}: {value!r} is not {types}")
    assert problems == []
    for event in ws.events:
        if event["event_type"] in WHOLE:
            whole = [p for (t, p, _) in UI_READS if t == event["event_type"]]
            missing = [p for p in whole if not list(resolve(event["event"], p))]
            assert missing == [], f"a partial {event['event_type']} event: {event['event']}"
