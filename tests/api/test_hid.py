# SPDX-License-Identifier: GPL-3.0-or-later
"""/api/hid and websocket input, through the OTG backend to the simulated USB host."""
# ruff: noqa: E501 -- tables of cases read best one case per line

import asyncio
import contextlib
import functools
import itertools

import aiohttp
import pytest

from tests.conftest import ADMIN, sample
from tests.hidenv import KEYMAPS, hexes, otg_config, usb_host, wait_until

RELEASED = "00 00 00 00 00 00 00 00"


@contextlib.asynccontextmanager
async def hid_client(make_client, make_config, layout="en-us", **hid):
    async with usb_host(layout) as (host, folder):
        config = make_config(kvmd={"hid": {**otg_config(folder), **hid}})
        (client, deps) = await make_client(config, loops=True)
        await wait_until(host, lambda: len(host.reports["mouse_alt"]) >= 2)
        await asyncio.sleep(0.05)
        for reports in host.reports.values():
            reports.clear()
        try:
            yield (client, host, deps)
        finally:
            await client.close()


@pytest.fixture
async def env(make_client, make_config):
    async with hid_client(make_client, make_config) as env:
        yield env


async def post(client, path, **params):
    response = await client.post(f"/api/hid/{path}", params=params, headers=ADMIN)
    return (response.status, await response.json())


async def test_state_has_pikvm_shape_and_outputs(env):
    (client, _, _) = env
    body = await (await client.get("/api/hid", headers=ADMIN)).json()
    expected = sample("hid.json")["result"]
    # The sample's device had the jiggler forbidden; ours allows it (PiKVM's default).
    expected["jiggler"]["enabled"] = True
    # The sample is PiKVM 4.0's; later versions add `enabled`, which the web UI waits for.
    expected["enabled"] = True
    assert body["result"] == expected  # online, usb + usb_rel, jiggler off
    keymaps = (await (await client.get("/api/hid/keymaps", headers=ADMIN)).json())["result"]
    assert keymaps == {
        "keymaps": {
            "default": "en-us",
            "available": sorted(path.name for path in KEYMAPS.iterdir()),
        }
    }


async def test_send_key_shortcut_and_mouse_over_http(env):
    (client, host, _) = env
    assert await post(client, "events/send_key", key="KeyA") == (200, {"ok": True, "result": {}})
    assert await post(client, "events/send_key", key="ShiftLeft") == (
        200,
        {"ok": True, "result": {}},
    )
    await post(client, "events/send_key", key="ShiftLeft", state="0")
    await post(client, "events/send_key", key="KeyB", state="1")
    await post(client, "events/send_key", key="KeyB", state="false")
    await post(client, "events/send_shortcut", keys="ControlLeft,AltLeft,Delete")
    await wait_until(host, lambda: len(host.reports["keyboard"]) >= 12)
    assert hexes(host.reports["keyboard"]) == [
        "00 00 04 00 00 00 00 00",
        RELEASED,
        "02 00 00 00 00 00 00 00",  # a modifier without `state` stays down, as in PiKVM
        RELEASED,
        "00 00 05 00 00 00 00 00",
        RELEASED,
        "01 00 00 00 00 00 00 00",
        "05 00 00 00 00 00 00 00",
        "05 00 4c 00 00 00 00 00",
        "05 00 00 00 00 00 00 00",
        "01 00 00 00 00 00 00 00",
        RELEASED,
    ]
    await post(client, "events/send_mouse_move", to_x="32767", to_y="-32768")
    await post(client, "events/send_mouse_button", button="LEFT")
    await post(client, "events/send_mouse_wheel", delta_x="0", delta_y="-300")
    await wait_until(host, lambda: len(host.reports["mouse"]) >= 4)
    assert hexes(host.reports["mouse"]) == [
        "00 ff 7f 00 00 00 00",
        "01 ff 7f 00 00 00 00",
        "00 ff 7f 00 00 00 00",
        "00 ff 7f 00 00 81 00",
    ]
    await post(client, "set_params", mouse_output="usb_rel")
    await post(client, "events/send_mouse_relative", delta_x="-5", delta_y="1000")
    await wait_until(host, lambda: len(host.reports["mouse_alt"]) >= 1)
    assert hexes(host.reports["mouse_alt"]) == ["00 fb 7f 00 00"]


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("events/send_key", {"key": "NoSuchKey"}, "The argument 'NoSuchKey' is not a valid key name"),
        ("events/send_key", {}, "None argument is not a valid key"),
        ("events/send_key", {"key": "KeyA", "state": "maybe"}, "The argument 'maybe' is not a valid state"),
        ("events/send_shortcut", {"keys": "ControlLeft,Nope"}, "The argument 'Nope' is not a valid key name"),
        ("events/send_shortcut", {"keys": " , "}, "The argument ',' is not a valid keys list"),
        ("events/send_mouse_button", {"button": "x"}, "The argument 'x' is not a valid button"),
        ("events/send_mouse_move", {"to_x": "99999", "to_y": "0"}, "The argument '99999' is not a valid to_x"),
        ("events/send_mouse_move", {"to_x": "1.5", "to_y": "0"}, "The argument '1.5' is not a valid to_x"),
        ("events/send_mouse_relative", {"delta_x": "a", "delta_y": "0"}, "The argument 'a' is not a valid delta_x"),
        ("set_params", {"mouse_output": "serial"}, "The argument 'serial' is not a valid mouse_output"),
        ("set_connected", {}, "None argument is not a valid connected"),
        ("print", {"keymap": "xx"}, "The argument 'xx' is not a valid keymap"),
        ("print", {"keymap": "../../etc/passwd"}, "The argument '../../etc/passwd' is not a valid keymap"),
        ("print", {"limit": "-1"}, "The argument '-1' is not a valid limit"),
        ("print", {"delay": "6"}, "The argument '6' is not a valid delay"),
    ],
)  # fmt: skip
async def test_bad_input_is_400(env, path, params, message):
    (client, host, _) = env
    (status, body) = await post(client, path, **params)
    assert status == 400
    assert body["result"]["error"] == "ValidatorError"
    assert body["result"]["error_msg"].startswith(message)
    # Nothing reached the target, and the daemon goes on working.
    assert await post(client, "events/send_key", key="KeyA") == (200, {"ok": True, "result": {}})
    await wait_until(host, lambda: len(host.reports["keyboard"]) >= 2)
    assert hexes(host.reports["keyboard"]) == ["00 00 04 00 00 00 00 00", RELEASED]


async def test_print_rejects_text_that_is_not_utf8(env):
    (client, _, _) = env
    response = await client.post("/api/hid/print", data=b"\xff\xfe", headers=ADMIN)
    assert response.status == 400
    assert (await response.json())["result"]["error_msg"] == "The text to print is not valid UTF-8"


async def test_websocket_input_in_json_names_and_codes_then_release_on_close(env):
    (client, host, _) = env
    async with client.ws_connect("/api/ws?stream=0", headers=ADMIN) as ws:
        # A new client first lets go of whatever was held.
        for device in ["keyboard", "mouse", "mouse_alt"]:
            await wait_until(host, functools.partial(_has_one, host, device))
            host.reports[device].clear()
        await ws.send_json({"event_type": "key", "event": {"key": "KeyA", "state": True}})
        await ws.send_bytes(b"\x01\x01ShiftLeft")  # by name
        await ws.send_bytes(b"\x01\x81\x00\x30")  # by evdev code: 48 is KEY_B
        await ws.send_bytes(b"\x01\x81\xff\xff")  # an unknown code: dropped
        await ws.send_bytes(b"\x03\x00\x10")  # a move too short: dropped
        await ws.send_bytes(b"\x01\x01NoSuchKey")  # an unknown name: dropped
        await ws.send_bytes(b"\x02\x81\x01\x10")  # BTN_LEFT by code
        await ws.send_bytes(b"\x03\x80\x00\x7f\xff")  # x=-32768, y=32767
        await ws.send_json({"event_type": "mouse_wheel", "event": {"delta": {"x": 0, "y": -3}}})
        await ws.send_bytes(b"\x00")
        msg = await ws.receive(timeout=2)
        while msg.type is aiohttp.WSMsgType.TEXT:  # state events
            msg = await ws.receive(timeout=2)
        assert msg.data == b"\xff"  # the socket still works
        await wait_until(host, lambda: len(host.reports["keyboard"]) >= 3)
        await wait_until(host, lambda: len(host.reports["mouse"]) >= 3)
        assert hexes(host.reports["keyboard"]) == [
            "00 00 04 00 00 00 00 00",
            "02 00 04 00 00 00 00 00",
            "02 00 04 05 00 00 00 00",
        ]
        assert hexes(host.reports["mouse"]) == [
            "01 ff 3f ff 3f 00 00",
            "01 00 00 ff 7f 00 00",
            "01 00 00 ff 7f fd 00",
        ]
    # The client went away with keys and a button down: the target sees them let go.
    await wait_until(host, lambda: host.reports["keyboard"][-1] == bytes(8))
    await wait_until(host, lambda: host.buttons == 0)
    assert hexes(host.reports["mouse"])[-1] == "00 00 00 ff 7f 00 00"


def _has_one(host, device):
    return len(host.reports[device]) == 1


# Each text uses what its layout types: direct keys, Shift, AltGr and (es) dead keys. de
# and fr are XKB's "nodeadkeys" variants, as PiKVM's files are.
GERMAN = (
    "Größe, Maß & Übermut: 12 Äpfel kosten 3,50 € (inkl. 19% MwSt.) — ok? "
    "^Hallo` {x} [y] <z> |a| \\b @c ~d #e 'f' \"g\" µ²³ \u00b4\u00b8\n"
)
FRENCH = (
    "Où est-il ? L'été à Noël, ça fait 15 € & 20 % de plus ! [x] {y} "
    "<z> |a| \\b @c #d ~e `f ^g ¨ µ * ² ça ne fait rien.\n"
)
SPANISH = (
    "¿Qué tal, señor Muñoz? ¡Olé! Pingüino, cigüeña; àèìòù âêîôû ç Ç [x] {y} "
    "<z> |a| \\b @c #d ~e `f ^g ¬ € ª º · ½\n"
)


@pytest.mark.parametrize(("layout", "text"), [("de", GERMAN), ("fr", FRENCH), ("es", SPANISH)])
async def test_print_1000_characters_arrives_byte_exact(make_client, make_config, layout, text):
    text = "".join(itertools.islice(itertools.cycle(text), 1000))
    async with hid_client(make_client, make_config, layout=layout) as (client, host, _):
        response = await client.post(
            "/api/hid/print", params={"keymap": layout}, data=text.encode(), headers=ADMIN
        )
        assert (await response.json()) == {"ok": True, "result": {}}
        await wait_until(host, lambda: host.text == text, timeout=5)
        assert host.reports["keyboard"][-1] == bytes(8)


async def test_print_limit_slow_and_skipped_characters(env):
    (client, host, _) = env
    response = await client.post(
        "/api/hid/print", params={"limit": "8", "slow": "1"}, data="ab ☃c✓d🙂e and more".encode(), headers=ADMIN
    )  # fmt: skip
    # What the layout cannot type is reported, each character once, and the rest typed.
    assert (await response.json()) == {"ok": True, "result": {"skipped": "☃✓🙂"}}
    await wait_until(host, lambda: host.text == "ab cd")
    response = await client.post(
        "/api/hid/print", params={"limit": "0"}, data="x — “q”".encode(), headers=ADMIN
    )
    # Typographic characters a layout lacks are typed as their ASCII cousins.
    assert (await response.json()) == {"ok": True, "result": {}}
    await wait_until(host, lambda: host.text == 'ab cdx -- "q"')


async def test_inactivity_reset_connected_and_jiggler(env):
    (client, host, _) = env
    await post(client, "events/send_key", key="KeyA", state="1")
    body = await (await client.get("/api/hid/inactivity", headers=ADMIN)).json()
    assert body == {"ok": True, "result": {"inactivity": 0}}
    assert await post(client, "reset") == (200, {"ok": True, "result": {}})
    await wait_until(host, lambda: host.reports["keyboard"][-1] == bytes(8))
    # OTG has no cable switch: `connected` stays null.
    assert await post(client, "set_connected", connected="1") == (200, {"ok": True, "result": {}})
    assert await post(client, "set_params", jiggler="1") == (200, {"ok": True, "result": {}})
    state = (await (await client.get("/api/hid", headers=ADMIN)).json())["result"]
    assert state["connected"] is None
    assert state["jiggler"] == {"active": True, "enabled": True, "interval": 60}


async def test_jiggler_moves_the_pointer_when_idle(make_client, make_config):
    jiggler = {"active": True, "interval": 1}
    async with hid_client(make_client, make_config, jiggler=jiggler) as (client, host, _):
        await post(client, "events/send_mouse_move", to_x="1000", to_y="1000")
        await wait_until(host, lambda: len(host.reports["mouse"]) >= 12, timeout=4)
        moves = hexes(host.reports["mouse"])
        assert len(set(moves[1:11])) > 1  # wandering around...
        await wait_until(host, lambda: hexes(host.reports["mouse"])[-1] == moves[0])  # ...and back


async def test_jiggler_can_not_start_when_not_allowed(make_client, make_config):
    jiggler = {"enabled": False}
    async with hid_client(make_client, make_config, jiggler=jiggler) as (client, _, _):
        await post(client, "set_params", jiggler="1")
        state = (await (await client.get("/api/hid", headers=ADMIN)).json())["result"]
        assert state["jiggler"] == {"active": False, "enabled": False, "interval": 60}


async def test_an_owners_pikvm_keymap_folder_types_german(make_client, make_config, tmp_path):
    # `kvmd: {hid: {keymap: /usr/share/kvmd/keymaps/de}}` on a PiKVM: PiKVM's (QEMU's)
    # files, here Debian's copies, in a folder that stands in for PiKVM's.
    folder = tmp_path / "keymaps"
    folder.mkdir()
    for name in ("de", "en-us", "fr"):
        (folder / name).write_bytes((KEYMAPS / name).read_bytes())
    (folder / "broken").write_text("a 0x1e\nb\n")
    # The host reads it with libxkbcommon's de(nodeadkeys), the layout the file names.
    text = "Größe, Maß & Übermut: 12 Äpfel, 3,50 € {x} [y] <z> |a| \\b @c ~d #e 'f' \"g\" µ²³ zY"
    async with hid_client(make_client, make_config, layout="de", keymap=str(folder / "de")) as env:
        (client, host, _) = env
        keymaps = (await (await client.get("/api/hid/keymaps", headers=ADMIN)).json())["result"]
        assert keymaps == {
            "keymaps": {"default": "de", "available": ["broken", "de", "en-us", "fr"]}
        }
        response = await client.post("/api/hid/print", data=text.encode(), headers=ADMIN)
        assert (await response.json()) == {"ok": True, "result": {}}
        await wait_until(host, lambda: host.text == text, timeout=5)
        broken = await client.post("/api/hid/print?keymap=broken", data=b"a", headers=ADMIN)
        assert broken.status == 400


async def test_keymap_folder_lists_user_layouts(make_client, make_config, tmp_path):
    folder = tmp_path / "keymaps"
    folder.mkdir()
    (folder / "en-us").write_text((KEYMAPS / "en-us").read_text())
    # A user's own layout in PiKVM's format: Dvorak's top row is enough to type "',."
    (folder / "dvorak").write_text(
        "apostrophe 0x10\nquotedbl 0x10 shift\ncomma 0x11\nless 0x11 shift\nperiod 0x12\n"
    )
    (folder / "broken").write_text("NotAKey a\n")
    async with hid_client(make_client, make_config, keymap=str(folder / "en-us")) as env:
        (client, host, _) = env
        keymaps = (await (await client.get("/api/hid/keymaps", headers=ADMIN)).json())["result"]
        assert keymaps["keymaps"]["available"] == ["broken", "dvorak", "en-us"]
        response = await client.post(
            "/api/hid/print", params={"keymap": "dvorak"}, data="',.\"", headers=ADMIN
        )
        assert (await response.json())["ok"] is True
        await wait_until(host, lambda: len(host.pressed) == 4)
        assert host.pressed == ["KeyQ", "KeyW", "KeyE", "KeyQ"]
        assert (await post(client, "print", keymap="broken"))[0] == 400
