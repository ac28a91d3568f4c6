# SPDX-License-Identifier: GPL-3.0-or-later
"""The disabled backends answer in PiKVM's shapes, and errors map to PiKVM's statuses."""

import dataclasses
import io
import logging

import pytest

from kvmd.errors import HardwareError
from kvmd.plugins.atx.disabled import DisabledAtx
from kvmd.server.auth import access_of
from tests.conftest import ADMIN, sample


async def test_atx_state_matches_pikvm_sample(client):
    response = await client.get("/api/atx", headers=ADMIN)
    assert response.status == 200
    # PiKVM's current version adds `acts` (which button is busy) to the 4.0 sample.
    expected = sample("atx.json")
    expected["result"]["acts"] = {"power": False, "reset": False}
    assert await response.json() == expected


async def test_atx_disabled_error_matches_pikvm_sample(client):
    response = await client.post("/api/atx/power?action=on", headers=ADMIN)
    assert response.status == 400
    assert await response.json() == sample("atx_power_disabled.json")
    click = await client.post("/api/atx/click?button=reset&wait=1", headers=ADMIN)
    assert (await click.json())["result"]["error"] == "AtxDisabledError"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/api/atx/power", "None argument is not a valid action"),
        ("/api/atx/power?action=explode", "The argument 'explode' is not a valid action"),
        ("/api/atx/power?action=on&wait=perhaps", "The argument 'perhaps' is not a valid wait"),
        ("/api/atx/click?button=any", "The argument 'any' is not a valid button"),
    ],
)
async def test_atx_bad_arguments(client, path, message):
    response = await client.post(path, headers=ADMIN)
    assert response.status == 400
    result = (await response.json())["result"]
    assert result["error"] == "ValidatorError"
    assert result["error_msg"].startswith(message)


async def test_wrong_method_is_plain_405(client):
    response = await client.get("/api/atx/power?action=on", headers=ADMIN)
    assert response.status == 405


async def test_hid_state(client):
    body = await (await client.get("/api/hid", headers=ADMIN)).json()
    expected = sample("hid.json")["result"]
    # PiKVM 4.0's keys plus the later `enabled`; a disabled backend says it is off.
    assert body["result"].keys() == {*expected.keys(), "enabled"}
    assert body["result"]["enabled"] is False
    assert body["result"]["online"] is False
    assert body["result"]["keyboard"]["leds"] == {"caps": False, "num": False, "scroll": False}
    keymaps = await (await client.get("/api/hid/keymaps", headers=ADMIN)).json()
    assert keymaps["result"]["keymaps"]["default"] == "en-us"


async def test_msd_gpio_streamer_states(client):
    msd = (await (await client.get("/api/msd", headers=ADMIN)).json())["result"]
    assert msd == {"busy": False, "drive": None, "enabled": False, "online": False, "storage": None}
    gpio = (await (await client.get("/api/gpio", headers=ADMIN)).json())["result"]
    assert gpio == {
        "model": {
            "scheme": {"inputs": {}, "outputs": {}},
            "view": {"header": {"title": [{"text": "GPIO", "type": "label"}]}, "table": []},
        },
        "state": {"inputs": {}, "outputs": {}},
    }
    streamer = (await (await client.get("/api/streamer", headers=ADMIN)).json())["result"]
    # PiKVM 4.0's keys plus the later `applied`.
    assert streamer.keys() == {*sample("streamer.json")["result"].keys(), "applied"}
    assert streamer["streamer"] is None
    ocr = (await (await client.get("/api/streamer/ocr", headers=ADMIN)).json())["result"]
    assert ocr == {"ocr": {"enabled": False, "langs": {"available": [], "default": []}}}


class _BrokenAtx(DisabledAtx):
    def state(self):
        raise RuntimeError("secret internal detail")

    async def click(self, button, *, wait):
        raise HardwareError("Power pin is stuck")


async def test_unexpected_exception_is_a_generic_500(make_client, make_config, caplog):
    def patch(deps):
        return dataclasses.replace(deps, atx=_BrokenAtx(deps.config.kvmd.atx, deps.bus))

    (client, _) = await make_client(make_config(), patch)
    with caplog.at_level(logging.ERROR):
        response = await client.get("/api/atx", headers=ADMIN)
    assert response.status == 500
    assert await response.json() == {
        "ok": False,
        "result": {"error": "InternalError", "error_msg": "Internal server error"},
    }
    assert "secret internal detail" in caplog.text  # the traceback went to the log, not the client
    click = await client.post("/api/atx/click?button=power", headers=ADMIN)
    assert click.status == 500
    assert (await click.json())["result"] == {
        "error": "HardwareError",
        "error_msg": "Power pin is stuck",
    }


async def test_every_route_declares_access(client):
    routes = [r for r in client.server.app.router.routes() if r.method != "HEAD"]
    assert len(routes) >= 2 * 13
    for route in routes:
        assert access_of(route.handler) is not None, route


async def test_body_too_large_gets_the_envelope(client):
    response = await client.post(
        "/api/auth/login",
        data=io.BytesIO(b"x" * (3 * 1024 * 1024)),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status == 413
    assert (await response.json())["result"]["error"] == "HttpError"
