# SPDX-License-Identifier: GPL-3.0-or-later
"""Redfish's root and Systems against PiKVM's samples and the simulated machine, and the
path normalisation DMTF's clients need to reach them (issue 19, items 9 and 11)."""

import asyncio
import re

import pytest

from kvmd.hw.gpio import forget_simulated_chip, simulated_chip
from kvmd.sim.machine import Machine, Timing
from tests.api.test_atx import ATX
from tests.conftest import ADMIN, sample

SYSTEM = "/redfish/v1/Systems/0"
SESSIONS = "/redfish/v1/SessionService/Sessions"


@pytest.fixture
async def machine_client(make_client, make_config):
    forget_simulated_chip()
    machine = Machine(simulated_chip(), timing=Timing(shutdown=0.2, blink=0.2, force_off=0.5))
    machine.attach()
    (client, _) = await make_client(make_config(kvmd={"atx": ATX}))
    yield (client, machine)
    machine.close()
    await client.close()
    forget_simulated_chip()


async def test_root_is_public_and_names_systems_and_managers(client):
    root = await client.get("/api/redfish/v1")
    assert root.status == 200
    assert root.headers["Content-Type"] == "application/json; charset=utf-8"
    # PiKVM 4.0's sample, plus the Managers that later PiKVMs list, and the Links the
    # schema requires (PiKVM has none: DMTF's validator fails its root).
    expected = sample("redfish_v1_noauth.json")
    expected["Managers"] = {"@odata.id": "/redfish/v1/Managers"}
    expected["Links"] = {"Sessions": {"@odata.id": "/redfish/v1/SessionService/Sessions"}}
    assert await root.json() == expected
    for path in ("/api/redfish/v1/Systems", "/redfish/v1/Managers", SESSIONS):
        assert (await client.get(path)).status == 401, path
    # Credentials go with every request: there are never Redfish sessions to list.
    sessions = await (await client.get(SESSIONS, headers=ADMIN)).json()
    assert sessions == {
        "@odata.id": SESSIONS,
        "@odata.type": "#SessionCollection.SessionCollection",
        "Members": [],
        "Members@odata.count": 0,
        "Name": "Session Collection",
    }


async def test_systems_and_system_follow_pikvm(machine_client):
    (client, _) = machine_client
    systems = await client.get("/api/redfish/v1/Systems", headers=ADMIN)
    assert await systems.json() == sample("redfish_systems.json")
    system = await (await client.get(SYSTEM, headers=ADMIN)).json()
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", system.pop("HostName"))
    # PiKVM 4.0's sample, plus what later PiKVMs add: Boot and SetDefaultBootOrder's target;
    # and the Name every resource must have (PiKVM has none).
    expected = sample("redfish_system0.json")
    expected.pop("HostName")
    expected["Name"] = "Target"
    expected["Boot"] = {"BootSourceOverrideEnabled": "Disabled", "BootSourceOverrideTarget": None}
    expected["Actions"]["#ComputerSystem.SetDefaultBootOrder"] = {
        "target": f"{SYSTEM}/Actions/ComputerSystem.SetDefaultBootOrder"
    }
    # And GracefulRestart, which PiKVM lacks and redfishtool's `reset` sends by default.
    expected["Actions"]["#ComputerSystem.Reset"]["ResetType@Redfish.AllowableValues"].append(
        "GracefulRestart"
    )
    assert system == expected


async def test_without_atx_there_is_no_system_to_list(client):
    systems = await (await client.get("/redfish/v1/Systems", headers=ADMIN)).json()
    assert (systems["Members"], systems["Members@odata.count"]) == ([], 0)


async def reset(client, body, sid="0"):
    url = f"/api/redfish/v1/Systems/{sid}/Actions/ComputerSystem.Reset"
    response = await client.post(url, data=body, headers=ADMIN)
    return (response.status, await response.read())


async def power_state(client):
    response = await client.get("/api/redfish/v1/Systems/0", headers=ADMIN)
    return (await response.json())["PowerState"]


async def until_power(client, expected):
    async with asyncio.timeout(5):
        while await power_state(client) != expected:
            await asyncio.sleep(0.05)


async def test_reset_types_drive_the_machine(machine_client):
    (client, machine) = machine_client
    assert await power_state(client) == "Off"
    assert await reset(client, b'{"ResetType": "On"}') == (204, b"")
    await until_power(client, "On")
    assert machine.boots == 1
    await asyncio.sleep(1.2)  # the hold-off after a click
    assert await reset(client, b'{"ResetType": "ForceRestart"}') == (204, b"")
    async with asyncio.timeout(3):
        while machine.resets == 0:
            await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    assert await reset(client, b'{"ResetType": "ForceOff"}') == (204, b"")
    await until_power(client, "Off")
    assert machine.forced_offs == 1
    await asyncio.sleep(1.2)
    assert await reset(client, b'{"ResetType": "PushPowerButton"}') == (204, b"")
    await until_power(client, "On")
    assert machine.boots == 2


async def test_graceful_restart_shuts_down_then_powers_on(machine_client):
    # redfishtool's default reset: a short press, and once the OS has shut down (the power
    # LED is out), another press. The power button is busy all along.
    (client, machine) = machine_client
    actions = (await (await client.get(f"/api{SYSTEM}", headers=ADMIN)).json())["Actions"]
    allowed = actions["#ComputerSystem.Reset"]["ResetType@Redfish.AllowableValues"]
    assert "GracefulRestart" in allowed
    assert await reset(client, b'{"ResetType": "GracefulRestart"}') == (204, b"")
    await until_power(client, "On")  # off: it is only turned on
    assert machine.boots == 1
    await asyncio.sleep(1.2)  # the hold-off after a click
    assert await reset(client, b'{"ResetType": "GracefulRestart"}') == (204, b"")
    busy = await client.post("/api/atx/click?button=power", headers=ADMIN)
    assert busy.status == 409
    await until_power(client, "Off")
    async with asyncio.timeout(5):
        while machine.boots < 2:
            await asyncio.sleep(0.05)
    assert (machine.forced_offs, machine.resets) == (0, 0)
    await until_power(client, "On")  # the LED is read after its debounce


@pytest.mark.parametrize(
    ("body", "sid"),
    [
        (b'{"ResetType": "on"}', "0"),  # case-sensitive
        (b'{"ResetType": "Explode"}', "0"),
        (b"{}", "0"),
        (b"not json", "0"),
        (b"", "0"),
        (b'{"ResetType": "On"}', "1"),
    ],
)
async def test_bad_reset_requests(machine_client, body, sid):
    (client, machine) = machine_client
    (status, answer) = await reset(client, body, sid)
    assert status == 400
    assert b'"ValidatorError"' in answer
    assert machine.boots == 0


async def test_without_atx_a_reset_is_accepted_and_does_nothing(client):
    assert await reset(client, b'{"ResetType": "On"}') == (204, b"")
    patched = await client.patch("/api/redfish/v1/Systems/0", json={}, headers=ADMIN)
    assert patched.status == 204


# Path normalisation (API-detail.md §0): what DMTF's clients send first.


async def redirect(client, method, path):
    """Status and Location for the path exactly as written: no client library would send
    `//x` or keep `%2F` in a query as it is."""
    (reader, writer) = await asyncio.open_connection("127.0.0.1", client.port)
    try:
        writer.write(f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        head = (await reader.read()).partition(b"\r\n\r\n")[0].decode().split("\r\n")
    finally:
        writer.close()
    headers = dict(line.split(": ", 1) for line in head[1:])
    return (int(head[0].split()[1]), headers.get("Location"))


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ("/redfish/v1/", "/redfish/v1"),
        ("/api/redfish/v1/", "/api/redfish/v1"),
        ("//redfish//v1//", "/redfish/v1"),
        ("/redfish/v1/Systems/", "/redfish/v1/Systems"),
        ("/redfish/v1/Systems/0/", "/redfish/v1/Systems/0"),
        ("/api/info/", "/api/info"),
        ("//api/info", "/api/info"),
        ("/api//info?fields=hw", "/api/info?fields=hw"),
        ("/api/info/?fields=hw&x=%2F", "/api/info?fields=hw&x=%2F"),
    ],
)
async def test_a_trailing_or_doubled_slash_is_a_permanent_redirect(client, path, target):
    # Before any authentication, as PiKVM's: the redirect tells nothing about the target.
    assert await redirect(client, "GET", path) == (308, target)


async def test_only_to_a_path_that_exists_for_the_method(client):
    assert await redirect(client, "GET", "/nothing/") == (404, None)
    assert await redirect(client, "GET", "/api/nothing//") == (404, None)
    # /api/atx/power takes POST only: a GET of it with a slash stays a 404, as in PiKVM.
    assert await redirect(client, "GET", "/api/atx/power/") == (404, None)
    assert await redirect(client, "POST", "/api/atx/power/") == (308, "/api/atx/power")
    # A 308 keeps the method and the body: the client posts again, to the real route.
    response = await client.post(
        "/redfish/v1/Systems/0/Actions/ComputerSystem.Reset/",
        json={"ResetType": "On"},
        headers=ADMIN,
    )
    assert response.status == 204
    # The unslashed paths themselves answer as before.
    assert (await client.get("/redfish/v1")).status == 200
    assert await redirect(client, "GET", "/") == (200, None)


async def test_followed_by_a_client_it_lands_on_the_resource(client):
    response = await client.get("/redfish/v1/")
    assert response.status == 200
    assert str(response.url).endswith("/redfish/v1")
    assert (await response.json())["Id"] == "RootService"
    info = await client.get("/api/info/", headers=ADMIN)
    assert info.status == 200
    assert (await info.json())["ok"] is True
