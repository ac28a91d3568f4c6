# SPDX-License-Identifier: GPL-3.0-or-later
"""/api/hid/keymaps/layout: what each key of a layout types, for the on-screen keyboard."""

import pytest

from tests.authenv import write_users, xhdr
from tests.conftest import ADMIN
from tests.hidenv import KEYMAPS


@pytest.fixture
async def client(make_client, make_config, tmp_path):
    write_users(tmp_path)
    hid = {"type": "disabled", "keymap": str(KEYMAPS / "en-us")}
    (client, _) = await make_client(make_config(kvmd={"hid": hid}))
    return client


async def layout(client, headers=ADMIN, **params):
    response = await client.get("/api/hid/keymaps/layout", params=params, headers=headers)
    return (response.status, await response.json())


async def test_default_is_the_configured_keymap(client):
    (status, body) = await layout(client)
    assert status == 200
    assert body["ok"] is True
    result = body["result"]
    assert result["keymap"] == "en-us"
    assert result["xkb"] == {"layout": "us", "variant": ""}
    keys = result["keys"]
    assert keys["Digit2"][:2] == ["2", "@"]
    assert keys["KeyQ"][:2] == ["q", "Q"]
    assert keys["Quote"][:2] == ["'", '"']
    assert all(len(levels) == 4 for levels in keys.values())


async def test_german_layout_labels(client):
    (status, body) = await layout(client, keymap="de")
    assert status == 200
    result = body["result"]
    assert result["keymap"] == "de"
    assert result["xkb"] == {"layout": "de", "variant": "nodeadkeys"}
    keys = result["keys"]
    assert keys["KeyY"][0] == "z"
    assert keys["KeyZ"][0] == "y"
    assert keys["KeyQ"][2] == "@"
    assert keys["Digit2"][1] == '"'
    assert keys["Semicolon"][:2] == ["ö", "Ö"]
    assert keys["IntlBackslash"][:3] == ["<", ">", "|"]


async def test_spanish_dead_keys_show_their_accent(client):
    (_, body) = await layout(client, keymap="es")
    keys = body["result"]["keys"]
    assert keys["Semicolon"][:2] == ["ñ", "Ñ"]
    assert keys["Digit1"][:2] == ["1", "!"]
    # The key right of P is dead grave (plain) and dead circumflex (Shift) on es.
    assert keys["BracketLeft"][:2] == ["`", "^"]


@pytest.mark.parametrize("name", ["../etc", "no-such-layout", "en-us/../de", ".hidden"])
async def test_a_bad_or_unknown_name_is_400(client, name):
    (status, body) = await layout(client, keymap=name)
    assert status == 400
    assert body == {
        "ok": False,
        "result": {
            "error": "ValidatorError",
            "error_msg": f"The argument {name!r} is not a valid keymap",
        },
    }


async def test_roles_as_the_other_hid_reads(client):
    # A viewer reads the HID state and the keymaps list, so it reads a layout too.
    for path in ("/api/hid", "/api/hid/keymaps", "/api/hid/keymaps/layout?keymap=de"):
        assert (await client.get(path, headers=xhdr("viewer"))).status == 200, path
        anonymous = await client.get(path)
        assert anonymous.status == 401, path
        assert (await anonymous.json())["result"]["error"] == "UnauthorizedError"
