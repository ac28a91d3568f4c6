# SPDX-License-Identifier: GPL-3.0-or-later
"""User GPIO drivers at their device boundary: a HID relay board's feature reports, a
TESmart switch on a pty and on TCP, and the config rules for channels."""

import asyncio
import os
import pty
import termios
import tty

import msgspec
import pytest

from kvmd.bus import Bus
from kvmd.plugins.gpio.base import GpioDriverOfflineError
from kvmd.plugins.gpio.config import GpioConfig, HidRelayDriverConfig
from kvmd.plugins.gpio.drivers.hidrelay import (
    HIDIOCGFEATURE,
    HIDIOCGRAWINFO,
    HIDIOCSFEATURE,
    HidrawTransport,
    HidRelayDriver,
)
from kvmd.plugins.gpio.user import UserGpio


class FakeRelayBoard:
    """A USBRelay8 at the transport boundary: records every feature report it is sent."""

    def __init__(self):
        self.sent = []
        self.bits = 0
        self.unplugged = False

    def get_feature(self):
        if self.unplugged:
            raise OSError(19, "No such device")
        return b"BITFT" + b"\x00\x00" + bytes([self.bits])

    def set_feature(self, report):
        if self.unplugged:
            raise OSError(19, "No such device")
        self.sent.append(report.hex(" "))
        (command, relay) = (report[1], report[2])
        mask = 1 << (relay - 1)
        self.bits = self.bits | mask if command == 0xFF else self.bits & ~mask


@pytest.fixture
async def relay():
    board = FakeRelayBoard()
    config = msgspec.convert(
        {
            "drivers": {"relays": {"type": "hidrelay", "device": "/dev/hidraw0"}},
            "scheme": {
                "lamp": {"driver": "relays", "pin": 2, "mode": "output"},
                "reset": {
                    "driver": "relays",
                    "pin": 7,
                    "mode": "output",
                    "switch": False,
                    "busy_delay": 0,
                    "pulse": {"delay": 0.05, "min_delay": 0.05, "max_delay": 0.05},
                },
            },
        },
        GpioConfig,
    )
    gpio = UserGpio(config, Bus())
    driver = gpio._drivers[0]
    assert isinstance(driver, HidRelayDriver)
    driver._transport = board
    await gpio.start()
    yield (gpio, board)
    await gpio.stop()


async def test_hidrelay_switch_and_pulse_send_the_exact_feature_reports(relay):
    (gpio, board) = relay
    # Start-up: both outputs to their initial state (off).
    assert board.sent == ["00 fd 03 00 00 00 00 00 00", "00 fd 08 00 00 00 00 00 00"]
    board.sent.clear()
    await gpio.switch("lamp", True, wait=True)
    assert board.sent == ["00 ff 03 00 00 00 00 00 00"]
    assert gpio.state().state.outputs["lamp"].state is True
    board.sent.clear()
    await gpio.pulse("reset", 0, wait=True)
    assert board.sent == ["00 ff 08 00 00 00 00 00 00", "00 fd 08 00 00 00 00 00 00"]
    assert board.bits == 0b100


async def test_hidrelay_offline_board(relay):
    (gpio, board) = relay
    board.unplugged = True
    with pytest.raises(GpioDriverOfflineError, match="No such device"):
        await gpio.switch("lamp", True, wait=True)
    await gpio._drivers[0]._poll()
    assert gpio.state().state.outputs["lamp"].online is False
    board.unplugged = False
    await gpio._drivers[0]._poll()
    assert gpio.state().state.outputs["lamp"].online is True


def test_hidraw_ioctl_numbers_are_the_kernels():
    # From <linux/hidraw.h>: _IOC(_IOC_WRITE|_IOC_READ, 'H', 0x06/0x07, len), _IOR('H', 3, 8).
    assert HIDIOCSFEATURE(9) == 0xC0094806
    assert HIDIOCGFEATURE(9) == 0xC0094807
    assert HIDIOCGRAWINFO == 0x80084803


async def test_the_real_transport_on_something_that_is_not_hidraw_is_offline(tmp_path):
    not_hidraw = tmp_path / "hidraw0"
    not_hidraw.write_bytes(b"")
    driver = HidRelayDriver(
        "relays",
        HidRelayDriverConfig(device=str(not_hidraw)),
        lambda: None,
        HidrawTransport(str(not_hidraw)),
    )
    driver.add_output("0", False)
    await driver.start()
    with pytest.raises(GpioDriverOfflineError):
        driver.read("0")
    with pytest.raises(GpioDriverOfflineError):
        await driver.write("0", True)


class FakeTesmart:
    """A TESmart switch's serial side: answers queries, switches on select frames."""

    def __init__(self, fd):
        self.fd = fd
        self.frames = []
        self.active = 0
        self.buffer = b""

    def on_readable(self):
        self.buffer += os.read(self.fd, 1024)
        while len(self.buffer) >= 6:
            (frame, self.buffer) = (self.buffer[:6], self.buffer[6:])
            self.frames.append(frame.hex(" "))
            if frame[3] == 0x01:
                self.active = frame[4] - 1
                # Some models announce the change unasked: the driver must skip it.
                os.write(self.fd, bytes([0xAA, 0xBB, 0x03, 0x11, self.active, 0xEE]))
            elif frame[3] == 0x10:
                os.write(self.fd, bytes([0xAA, 0xBB, 0x03, 0x11, self.active, 0xEE]))


def tesmart_config(**driver):
    return msgspec.convert(
        {
            "drivers": {"kvm": {"type": "tesmart", "state_poll": 0.1, "timeout": 1, **driver}},
            "scheme": {
                "server1": {"driver": "kvm", "pin": 0, "mode": "input"},
                "server4": {"driver": "kvm", "pin": 3, "mode": "input"},
                "select4": {
                    "driver": "kvm",
                    "pin": 3,
                    "mode": "output",
                    "switch": False,
                    "busy_delay": 0,
                },
            },
        },
        GpioConfig,
    )


async def exercise_tesmart(gpio):
    await gpio.start()
    try:
        inputs = gpio.state().state.inputs
        assert (inputs["server1"].state, inputs["server4"].state) == (True, False)
        await gpio.pulse("select4", 0, wait=True)
        inputs = gpio.state().state.inputs
        assert (inputs["server1"].state, inputs["server4"].state) == (False, True)
    finally:
        await gpio.stop()


async def test_tesmart_over_a_pty_sends_the_exact_frames():
    (master, slave) = pty.openpty()
    tty.setraw(slave)
    attrs = termios.tcgetattr(master)
    attrs[3] &= ~termios.ECHO
    termios.tcsetattr(master, termios.TCSANOW, attrs)
    switch = FakeTesmart(master)
    loop = asyncio.get_running_loop()
    loop.add_reader(master, switch.on_readable)
    try:
        await exercise_tesmart(UserGpio(tesmart_config(device=os.ttyname(slave)), Bus()))
    finally:
        loop.remove_reader(master)
        os.close(master)
        os.close(slave)
    assert switch.frames[:3] == [
        "aa bb 03 10 00 ee",  # start: which port is active?
        "aa bb 03 01 04 ee",  # pulse select4 (pin 3): port 4
        "aa bb 03 10 00 ee",  # and read it back
    ]
    assert switch.active == 3


async def test_tesmart_over_tcp():
    frames = []
    connections = []

    async def serve(reader, writer):
        connections.append(writer)
        active = 0
        while True:
            try:
                frame = await reader.readexactly(6)
            except asyncio.IncompleteReadError:
                writer.close()
                return
            frames.append(frame.hex(" "))
            if frame[3] == 0x01:
                active = frame[4] - 1
            else:
                writer.write(bytes([0xAA, 0xBB, 0x03, 0x11, active, 0xEE]))

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        await exercise_tesmart(UserGpio(tesmart_config(host="127.0.0.1", port=port), Bus()))
        for writer in connections:
            writer.close()
            await writer.wait_closed()
    assert frames[:3] == ["aa bb 03 10 00 ee", "aa bb 03 01 04 ee", "aa bb 03 10 00 ee"]


async def test_a_tesmart_that_does_not_answer_is_offline():
    (master, slave) = pty.openpty()
    try:
        gpio = UserGpio(tesmart_config(device=os.ttyname(slave), timeout=0.2), Bus())
        await gpio.start()
        assert gpio.state().state.inputs["server1"].online is False
        await gpio.stop()
    finally:
        os.close(master)
        os.close(slave)


@pytest.mark.parametrize(
    ("gpio", "message"),
    [
        ({"scheme": {"x": {"driver": "nope", "pin": 1}}}, "no driver 'nope'"),
        ({"scheme": {"1x": {"pin": 1}}}, "bad GPIO channel name"),
        ({"drivers": {"bad name": {"type": "noop"}}}, "bad GPIO driver name"),
        (
            {
                "drivers": {"r": {"type": "hidrelay", "device": "/dev/hidraw0"}},
                "scheme": {"x": {"driver": "r", "pin": 8, "mode": "output"}},
            },
            "bad pin 8",
        ),
        (
            {
                "drivers": {"w": {"type": "wol", "mac": "00:11:22:33:44:55"}},
                "scheme": {"x": {"driver": "w", "pin": 0}},
            },
            "has no inputs",
        ),
        ({"drivers": {"w": {"type": "wol", "mac": "00:11:22:33:44"}}}, "matching regex"),
        ({"drivers": {"t": {"type": "tesmart"}}}, "exactly one of host and device"),
        (
            {
                "scheme": {
                    "x": {
                        "pin": 1,
                        "mode": "output",
                        "pulse": {"delay": 1, "min_delay": 2, "max_delay": 1},
                    }
                }
            },
            "min_delay > max_delay",
        ),
        ({"scheme": {"x": {"pin": "a"}}}, "bad pin 'a'"),
    ],
)
def test_config_rules(gpio, message):
    with pytest.raises(msgspec.ValidationError, match=message):
        msgspec.convert(gpio, GpioConfig)
