# SPDX-License-Identifier: GPL-3.0-or-later
"""The shipped Raspberry Pi configs: valid, each example merges over each, and the
streamer command lines use only options and values Debian's ustreamer has."""

import re
import subprocess
from pathlib import Path

import pytest

from kvmd.config.load import load_files
from kvmd.config.schema import Config
from kvmd.plugins.atx.config import GpioAtxConfig
from kvmd.plugins.hid.config import Ch9329HidConfig, OtgHidConfig
from kvmd.plugins.msd.config import OtgMsdConfig
from kvmd.plugins.streamer.config import UstreamerConfig

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "kvmd"
BOARDS = sorted(p.stem for p in (CONFIGS / "boards").glob("*.yaml"))
EXAMPLES = sorted(p.stem for p in (CONFIGS / "examples").glob("*.yaml"))


def board(name: str, *extra: Path) -> Config:
    return load_files([CONFIGS / "boards" / f"{name}.yaml", *extra])


def test_the_three_boards_are_shipped():
    assert BOARDS == ["rpi4-csi", "rpi4-usb", "zero2w-csi"]
    assert EXAMPLES == ["ch9329-hid", "gpio-relays", "hidrelay", "locked-down", "wol"]


@pytest.mark.parametrize("name", BOARDS)
def test_a_board_keeps_its_state_off_the_root_and_wires_the_hardware(name):
    config = board(name, CONFIGS / "override.yaml")
    kvmd = config.kvmd
    writable = [
        kvmd.auth.internal.file,
        kvmd.auth.files.users,
        kvmd.auth.files.roles,
        kvmd.auth.files.keys,
        kvmd.auth.files.directory,
        kvmd.audit.file,
    ]
    assert all(path.startswith("/var/lib/kvmd/") for path in writable), writable
    assert (kvmd.server.unix, kvmd.server.port) == ("/run/kvmd/kvmd.sock", 0)
    assert isinstance(kvmd.hid, OtgHidConfig)
    assert (kvmd.hid.keyboard.device, kvmd.hid.mouse.device, kvmd.hid.mouse_alt.device) == (
        "/dev/kvmd-hid-keyboard",
        "/dev/kvmd-hid-mouse",
        "/dev/kvmd-hid-mouse-alt",
    )
    assert isinstance(kvmd.atx, GpioAtxConfig)
    pins = (
        kvmd.atx.power_switch_pin,
        kvmd.atx.reset_switch_pin,
        kvmd.atx.power_led_pin,
        kvmd.atx.hdd_led_pin,
    )
    assert (kvmd.atx.device, pins) == ("/dev/gpiochip0", (23, 27, 24, 22))
    assert isinstance(kvmd.msd, OtgMsdConfig)
    assert kvmd.msd.storage == "/var/lib/kvmd/msd"
    assert config.otg.user == "kvmd"
    assert isinstance(kvmd.streamer, UstreamerConfig)
    assert kvmd.streamer.unix == "/run/kvmd/ustreamer.sock"
    assert kvmd.streamer.cmd[:2] == ["/usr/bin/ustreamer", "--device=/dev/kvmd-video"]


@pytest.mark.parametrize("example", EXAMPLES)
@pytest.mark.parametrize("name", BOARDS)
def test_every_example_merges_over_every_board(name, example):
    config = board(name, CONFIGS / "examples" / f"{example}.yaml")
    plain = board(name)
    assert config != plain  # the example changes something


def test_what_the_examples_set():
    relays = board("rpi4-csi", CONFIGS / "examples" / "gpio-relays.yaml").kvmd.gpio
    assert {name: (ch.pin, ch.switch) for (name, ch) in relays.scheme.items()} == {
        "monitor": (17, True),
        "reset2": (18, False),
    }
    hid = board("rpi4-csi", CONFIGS / "examples" / "ch9329-hid.yaml").kvmd.hid
    assert isinstance(hid, Ch9329HidConfig)
    assert hid.device == "/dev/ttyAMA0"
    auth = board("zero2w-csi", CONFIGS / "examples" / "locked-down.yaml").kvmd.auth
    assert (auth.default_role, auth.expire, auth.lockout.attempts) == ("viewer", 43200, 5)


def _ustreamer_help() -> str:
    done = subprocess.run(["ustreamer", "--help"], capture_output=True, text=True, check=True)
    return done.stdout + done.stderr


def _available(help_text: str, option: str) -> set[str]:
    """The values `--help` lists for an option: "Available: A, B" or "* A ── ..." lines."""
    block = help_text.split(f"--{option} <", 1)[1].split("\n\n", 1)[0]
    inline = re.search(r"Available: ([^;]*)", block)
    words = inline.group(1).split(", ") if inline else re.findall(r"\* (\S+)", block)
    return {word.strip().lower() for word in words}


USTREAMER_6_SINK_OPTIONS = {
    f"{kind}-sink{suffix}"
    for kind in ("jpeg", "raw", "h264")
    for suffix in ("", "-mode", "-rm", "-client-ttl", "-timeout")
} | {"h264-bitrate", "h264-gop", "h264-m2m-device", "h264-boost"}


@pytest.mark.parametrize("name", BOARDS)
def test_the_streamer_command_speaks_ustreamers_options(name):
    streamer = board(name).kvmd.streamer
    assert isinstance(streamer, UstreamerConfig)
    help_text = _ustreamer_help()
    known = set(re.findall(r"--([a-z0-9-]+)", help_text))
    values = {"quality": "80", "desired_fps": "30", "unix": "/run/x.sock", "resolution": "1x1"}
    values |= {"process_name_prefix": "kvmd/streamer", "h264_bitrate": "0", "h264_gop": "0"}
    for arg in streamer.cmd[1:]:
        (option, _, value) = arg.format_map(values).removeprefix("--").partition("=")
        # Debian's 4.9 has no memsinks: kvmd leaves their flags out for it. They are
        # ustreamer 6.62's (options.c), which a board with H.264 needs.
        assert option in known | USTREAMER_6_SINK_OPTIONS, f"{name}: ustreamer has no --{option}"
        if option in ("format", "encoder"):
            assert value in _available(help_text, option), f"{name}: --{option}={value}"
    # What the API lets a client change must reach the command line.
    has_h264 = streamer.h264_bitrate.default > 0
    assert ("--h264-bitrate={h264_bitrate}" in streamer.cmd) == has_h264
    assert ("--h264-gop={h264_gop}" in streamer.cmd) == has_h264
    if has_h264:
        assert board(name).media.memsink.h264.sink == "kvmd::ustreamer::h264"
        assert "--h264-sink=kvmd::ustreamer::h264" in streamer.cmd
    assert ("--quality={quality}" in streamer.cmd) == (streamer.quality > 0)
    assert ("--resolution={resolution}" in streamer.cmd) == bool(streamer.resolution.default)
