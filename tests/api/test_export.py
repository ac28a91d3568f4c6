# SPDX-License-Identifier: GPL-3.0-or-later
"""Prometheus metrics and Redfish, against PiKVM's samples and the simulated machine."""

import asyncio
import base64
import re
import socket

import pytest

from kvmd.hw.gpio import forget_simulated_chip, simulated_chip
from kvmd.sim.machine import Machine, Timing
from tests.api.test_atx import ATX
from tests.api.test_gpio import pikvm_sample_config
from tests.conftest import ADMIN, SAMPLES, sample


def parse_metrics(text):
    """(name, value) pairs; every metric is `# TYPE name gauge` and `name value`, then a
    blank line between metrics and a newline at the end, as PiKVM's sample."""
    assert text.endswith(" 0\n") or text.endswith(" 1\n")
    pairs = []
    for block in text[:-1].split("\n\n"):
        (type_line, value_line) = block.split("\n")
        (name, value) = value_line.split(" ")
        assert type_line == f"# TYPE {name} gauge"
        pairs.append((name, value))
    return pairs


@pytest.fixture
async def gpio_client(make_client, make_config, tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        config = make_config(kvmd={"gpio": pikvm_sample_config(tmp_path, udp.getsockname()[1])})
        (client, _) = await make_client(config)
        yield client


async def test_prometheus_metrics_follow_pikvm_sample(gpio_client):
    response = await gpio_client.get("/api/export/prometheus/metrics", headers=ADMIN)
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    ours = parse_metrics(await response.text())
    theirs = parse_metrics((SAMPLES / "prometheus_metrics.txt").read_text())
    names = [name for name, _ in ours]
    # Every metric of the sample, in the sample's order, with the sample's value...
    positions = [names.index(name) for name, _ in theirs]
    assert positions == sorted(positions)
    values = dict(ours)
    for name, value in theirs:
        if "_online_" in name:
            assert values[name] == "1"  # ...except online, which PiKVM fills with the state
        else:
            assert values[name] == value, name
    # What PiKVM lacks comes last.
    assert names[-5:] == [
        "pikvm_atx_hdd",
        "pikvm_atx_busy",
        "pikvm_hid_online",
        "pikvm_msd_online",
        "pikvm_streamer_online",
    ]
    assert all(re.fullmatch(r"pikvm_\w+", name) for name in names)


async def test_prometheus_needs_credentials_and_takes_basic(gpio_client):
    response = await gpio_client.get("/api/export/prometheus/metrics")
    assert response.status == 401
    assert "WWW-Authenticate" not in response.headers
    assert await response.json() == sample("prometheus_metrics_noauth.json")
    basic = await gpio_client.get(
        "/export/prometheus/metrics",
        headers={"Authorization": "Basic " + base64.b64encode(b"admin:admin").decode()},
    )
    assert basic.status == 200
    assert "pikvm_gpio_input_state_flag1 0\n" in await basic.text()


async def test_redfish_root_is_public_and_the_rest_is_not(client):
    root = await client.get("/api/redfish/v1")
    assert root.status == 200
    assert await root.json() == sample("redfish_v1_noauth.json")
    assert (await client.get("/api/redfish/v1/Systems")).status == 401
    systems = await client.get("/api/redfish/v1/Systems", headers=ADMIN)
    assert await systems.json() == sample("redfish_systems.json")
    system = await (await client.get("/redfish/v1/Systems/0", headers=ADMIN)).json()
    expected = sample("redfish_system0.json")
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", system.pop("HostName"))
    expected.pop("HostName")
    assert system == expected


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


async def test_redfish_reset_types_drive_the_machine(machine_client):
    (client, machine) = machine_client
    assert await power_state(client) == "Off"
    assert await reset(client, b'{"ResetType": "On"}') == (204, b"")
    await until_power(client, "On")
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


@pytest.mark.parametrize(
    ("body", "sid"),
    [
        (b'{"ResetType": "on"}', "0"),  # case-sensitive
        (b'{"ResetType": "Explode"}', "0"),
        (b"{}", "0"),
        (b"not json", "0"),
        (b'{"ResetType": "On"}', "1"),
    ],
)
async def test_redfish_bad_requests(machine_client, body, sid):
    (client, machine) = machine_client
    (status, answer) = await reset(client, body, sid)
    assert status == 400
    assert b'"ValidatorError"' in answer
    assert machine.boots == 0


async def test_redfish_without_atx_accepts_and_does_nothing(client):
    assert await reset(client, b'{"ResetType": "On"}') == (204, b"")
    patched = await client.patch("/api/redfish/v1/Systems/0", json={}, headers=ADMIN)
    assert patched.status == 204
