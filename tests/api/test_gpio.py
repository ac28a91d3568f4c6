# SPDX-License-Identifier: GPL-3.0-or-later
"""/api/gpio with real drivers: commands, Wake-on-LAN on loopback, lines of the simulated chip."""

import asyncio
import socket
import time
from typing import Any

import pytest

from kvmd.hw.gpio import forget_simulated_chip, simulated_chip
from tests.conftest import ADMIN, sample


def pikvm_sample_config(tmp_path, udp_port):
    """The channels behind PiKVM's gpio.json sample, on this machine."""
    flag = tmp_path / "gpio-flag"
    return {
        "drivers": {
            "ret1": {"type": "cmdret", "cmd": ["test", "-e", str(flag)], "state_poll": 0.1},
            "cmd1": {"type": "cmd", "cmd": ["touch", str(flag)]},
            "wol1": {
                "type": "wol",
                "mac": "52:54:00:AB:cd:01",
                "ip": "127.0.0.1",
                "port": udp_port,
            },
        },
        "scheme": {
            "flag1": {"driver": "ret1", "pin": 0, "mode": "input"},
            "cmd1": {"driver": "cmd1", "pin": 0, "mode": "output", "switch": False},
            "wol1": {"driver": "wol1", "pin": 0, "mode": "output", "switch": False},
        },
        "view": {
            "header": {"title": "Fake GPIO"},
            "table": [
                ["#Fake devices (no hardware)"],
                [],
                ["#Flag file /tmp/kvmd-run/gpio-flag:", "flag1|green"],
                ["#Run cmd1:", "cmd1|confirm|Run"],
                ["#Wake-on-LAN to 127.0.0.1:", "wol1|Wake"],
            ],
        },
    }


# Lines of the simulated chip: a relay that is on when its line is low, a button pulsed
# for 0.05..0.3 s, a constant output, and an input.
CHIP = {
    "drivers": {"chip": {"type": "gpio", "device": "simulated"}},
    "scheme": {
        "relay": {"driver": "chip", "pin": 5, "mode": "output", "inverted": True},
        "button": {
            "driver": "chip",
            "pin": 6,
            "mode": "output",
            "switch": False,
            "pulse": {"delay": 0.1, "min_delay": 0.05, "max_delay": 0.3},
            "busy_delay": 0.05,
        },
        "fan": {
            "driver": "chip",
            "pin": 7,
            "mode": "output",
            "switch": False,
            "pulse": False,
            "initial": True,
        },
        "door": {"driver": "chip", "pin": 8, "debounce": 0.01},
    },
    "view": {"table": [["door|red", "relay|Relay", "button|confirm,hide|Push", "fan"]]},
}


@pytest.fixture
def udp():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(3)
        yield sock


@pytest.fixture
async def fake(make_client, make_config, tmp_path, udp):
    config = make_config(kvmd={"gpio": pikvm_sample_config(tmp_path, udp.getsockname()[1])})
    (client, _) = await make_client(config, loops=True)
    return client


@pytest.fixture
async def chip_env(make_client, make_config):
    forget_simulated_chip()
    chip = simulated_chip()
    edges = []
    chip.watch(lambda pin, level: edges.append((pin, level, time.monotonic())))
    (client, deps) = await make_client(make_config(kvmd={"gpio": CHIP}), loops=True)
    yield (client, chip, edges, deps)
    await client.close()
    forget_simulated_chip()


def level(chip, pin):
    return chip.levels[pin]


async def call(client, method, path, **params):
    response = await client.request(method, path, params=params, headers=ADMIN)
    return (response.status, await response.json())


async def gpio_state(client):
    return (await call(client, "GET", "/api/gpio"))[1]["result"]["state"]


async def test_the_model_and_state_match_pikvm_sample(fake):
    assert await call(fake, "GET", "/api/gpio") == (200, sample("gpio.json"))


async def test_pulsing_a_cmd_runs_it_and_cmdret_sees_the_result(fake, tmp_path):
    assert await call(fake, "POST", "/api/gpio/pulse", channel="cmd1") == (
        200,
        sample("gpio_pulse_cmd1.json"),
    )
    async with fake.ws_connect("/api/ws?stream=0", headers=ADMIN) as ws:
        async with asyncio.timeout(5):
            while True:
                event = await ws.receive_json()
                if (
                    event["event_type"] == "gpio"
                    and event["event"]["state"]["inputs"]["flag1"]["state"]
                ):
                    break
    assert (tmp_path / "gpio-flag").exists()


async def test_events_carry_the_model_once_then_only_the_state(fake):
    # PiKVM's web UI rebuilds its GPIO menu on every event with a `model`, replacing the
    # control under the pointer: a switch must send only the state.
    async with fake.ws_connect("/api/ws?stream=0", headers=ADMIN) as ws:
        gpio: list[dict[str, Any]] = []
        async with asyncio.timeout(5):
            while not gpio:
                event = await ws.receive_json()
                if event["event_type"] == "gpio":
                    gpio.append(event["event"])
        full = sample("gpio.json")["result"]
        assert gpio == [full]  # the first: model and state together
        assert (await call(fake, "POST", "/api/gpio/pulse", channel="cmd1"))[0] == 200
        async with asyncio.timeout(5):
            while not (gpio[-1]["state"]["inputs"]["flag1"]["state"]):
                event = await ws.receive_json()
                if event["event_type"] == "gpio":
                    gpio.append(event["event"])
    assert len(gpio) >= 2
    assert [list(event) for event in gpio[1:]] == [["state"]] * (len(gpio) - 1)
    assert set(gpio[-1]["state"]) == {"inputs", "outputs"}


async def test_legacy_clients_get_wol_state_of_the_wol_channel(fake, udp):
    # Scripts written for PiKVM before WoL became a GPIO driver read `wol_state`.
    async with fake.ws_connect("/api/ws?stream=0&legacy=1", headers=ADMIN) as ws:
        events: list[dict[str, Any]] = []
        async with asyncio.timeout(5):
            while not events or events[-1]["event_type"] != "loop":
                events.append(await ws.receive_json())
    wol = [e["event"] for e in events if e["event_type"] == "wol_state"]
    assert wol == [
        {
            "enabled": True,
            "target": {"ip": "127.0.0.1", "port": udp.getsockname()[1], "mac": "52:54:00:AB:cd:01"},
        }
    ]


async def test_wol_sends_the_magic_packet(fake, udp):
    assert (await call(fake, "POST", "/api/gpio/pulse", channel="wol1", wait=1))[0] == 200
    (packet, _) = udp.recvfrom(1024)
    assert packet == b"\xff" * 6 + bytes.fromhex("525400abcd01") * 16
    assert len(packet) == 102


async def test_switching_a_pulse_only_channel_is_refused(fake):
    assert await call(fake, "POST", "/api/gpio/switch", channel="cmd1", state=1) == (
        400,
        sample("gpio_switch_const_err.json"),
    )


@pytest.mark.parametrize(
    ("path", "params", "error"),
    [
        ("switch", {"channel": "nope", "state": 1}, "GpioChannelNotFoundError"),
        ("pulse", {"channel": "nope"}, "GpioChannelNotFoundError"),
        ("switch", {"channel": "flag1", "state": 1}, "GpioChannelNotFoundError"),  # an input
        ("switch", {"channel": "bad name", "state": 1}, "ValidatorError"),
        ("switch", {"channel": "x" * 256, "state": 1}, "ValidatorError"),
        ("switch", {"channel": "cmd1"}, "ValidatorError"),
        ("switch", {"channel": "cmd1", "state": "half"}, "ValidatorError"),
        ("pulse", {"channel": "cmd1", "delay": -1}, "ValidatorError"),
        ("pulse", {"channel": "cmd1", "delay": 1e9}, "ValidatorError"),
        ("pulse", {"channel": "cmd1", "delay": "nan"}, "ValidatorError"),
        ("pulse", {"channel": "cmd1", "delay": "inf"}, "ValidatorError"),
        ("pulse", {"channel": "cmd1", "wait": "soon"}, "ValidatorError"),
    ],
)
async def test_bad_input_gets_pikvm_errors(fake, path, params, error):
    (status, body) = await call(fake, "POST", f"/api/gpio/{path}", **params)
    assert status == 400
    assert body["result"]["error"] == error


async def test_a_failing_command_is_an_offline_driver_with_wait(make_client, make_config, tmp_path):
    config = {
        "drivers": {"fail": {"type": "cmd", "cmd": ["false"]}},
        "scheme": {"fail": {"driver": "fail", "pin": 0, "mode": "output", "switch": False}},
    }
    (client, _) = await make_client(make_config(kvmd={"gpio": config}))
    (status, body) = await call(client, "POST", "/api/gpio/pulse", channel="fail", wait=1)
    assert status == 400
    assert body["result"]["error"] == "GpioDriverOfflineError"
    assert "exited with 1" in body["result"]["error_msg"]
    # Without wait the failure is only logged: the request started the pulse.
    assert (await call(client, "POST", "/api/gpio/pulse", channel="fail"))[0] == 200


async def test_switching_a_line_and_reading_an_input(chip_env):
    (client, chip, _edges, _) = chip_env
    # Inverted relay starts off: its line idles high. The constant fan is on (initial).
    assert level(chip, 5) is True
    assert level(chip, 7) is True
    state = await gpio_state(client)
    assert state["outputs"]["relay"] == {"online": True, "state": False, "busy": False}
    assert "fan" not in state["outputs"]  # constant outputs are not in the model
    assert (await call(client, "POST", "/api/gpio/switch", channel="relay", state=1, wait=1))[
        0
    ] == 200
    assert level(chip, 5) is False
    assert (await gpio_state(client))["outputs"]["relay"]["state"] is True
    async with client.ws_connect("/api/ws?stream=0", headers=ADMIN) as ws:
        chip.drive(8, True)
        async with asyncio.timeout(3):
            while True:
                event = await ws.receive_json()
                if (
                    event["event_type"] == "gpio"
                    and event["event"]["state"]["inputs"]["door"]["state"]
                ):
                    break


async def test_the_view_is_built_from_the_config(chip_env):
    (client, *_) = chip_env
    model = (await call(client, "GET", "/api/gpio"))[1]["result"]["model"]
    assert model["view"] == {
        "header": {"title": [{"type": "label", "text": "GPIO"}]},
        "table": [
            [
                {"type": "input", "channel": "door", "color": "red"},
                {
                    "type": "output",
                    "channel": "relay",
                    "confirm": False,
                    "hide": False,
                    "text": "Relay",
                },
                {
                    "type": "output",
                    "channel": "button",
                    "confirm": True,
                    "hide": True,
                    "text": "Push",
                },
            ]
        ],
    }
    assert model["scheme"]["outputs"]["button"] == {
        "switch": False,
        "pulse": {"delay": 0.1, "min_delay": 0.05, "max_delay": 0.3},
        "hw": {"driver": "chip", "pin": "6"},
    }
    assert model["scheme"]["outputs"]["relay"]["pulse"] == {
        "delay": 0.1,
        "min_delay": 0.1,
        "max_delay": 0.1,
    }
    assert model["scheme"]["inputs"] == {"door": {"hw": {"driver": "chip", "pin": "8"}}}


@pytest.mark.parametrize(("asked", "held"), [(0, 0.1), (10, 0.3), (0.01, 0.05)])
async def test_a_pulse_is_clamped_to_its_bounds(chip_env, asked, held):
    (client, _, edges, _) = chip_env
    edges.clear()
    assert (await call(client, "POST", "/api/gpio/pulse", channel="button", delay=asked, wait=1))[
        0
    ] == 200
    (on, off) = [edge for edge in edges if edge[0] == 6]
    assert (on[1], off[1]) == (True, False)
    assert held <= off[2] - on[2] < held + 0.1


async def test_a_busy_channel_is_409_and_shows_busy(chip_env):
    (client, *_) = chip_env
    assert (await call(client, "POST", "/api/gpio/pulse", channel="button", delay=0.3))[0] == 200
    assert (await gpio_state(client))["outputs"]["button"] == {
        "online": True,
        "state": False,
        "busy": True,
    }
    (status, body) = await call(client, "POST", "/api/gpio/pulse", channel="button")
    assert status == 409
    assert body["result"]["error"] == "GpioChannelIsBusyError"
    # Other channels are not held up.
    assert (await call(client, "POST", "/api/gpio/switch", channel="relay", state=1))[0] == 200


async def until_level(chip, pin, value, limit=3.0):
    """Wait for a line to reach `value`: a loaded machine may be late, never wrong."""
    async with asyncio.timeout(limit):
        while level(chip, pin) is not value:
            await asyncio.sleep(0.005)


async def test_a_cancelled_request_and_a_stopping_daemon_leave_the_line_off(chip_env):
    (client, chip, _edges, deps) = chip_env
    request = asyncio.create_task(
        call(client, "POST", "/api/gpio/pulse", channel="button", delay=0.3, wait=1)
    )
    await until_level(chip, 6, True)
    request.cancel()
    await asyncio.gather(request, return_exceptions=True)
    assert level(chip, 6) is True  # the pulse goes on: a client leaving does not cut it
    await until_level(chip, 6, False)
    async with asyncio.timeout(3):
        while (await gpio_state(client))["outputs"]["button"]["busy"]:
            await asyncio.sleep(0.01)
    assert (await call(client, "POST", "/api/gpio/pulse", channel="button", delay=0.3))[0] == 200
    await until_level(chip, 6, True)
    await deps.gpio.stop()  # mid-pulse: the line is written off, then released to idle
    assert level(chip, 6) is False
    assert level(chip, 5) is True  # the inverted relay's idle
    assert chip.claimed == {}
