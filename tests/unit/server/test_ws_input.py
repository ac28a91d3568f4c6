# SPDX-License-Identifier: GPL-3.0-or-later
import json

import pytest

from kvmd.server.ws_input import (
    ButtonInput,
    CodeInput,
    KeyInput,
    MalformedInputError,
    MoveInput,
    Ping,
    RelativeInput,
    parse_binary,
    parse_text,
    squash_deltas,
)


def text(event_type: str, event: object) -> str:
    return json.dumps({"event_type": event_type, "event": event})


@pytest.mark.parametrize(
    ("message", "parsed"),
    [
        (text("ping", {}), Ping(binary=False)),
        ('{"event_type": "ping"}', Ping(binary=False)),
        (text("key", {"key": "KeyA", "state": True}), KeyInput(key="KeyA", state=True)),
        (
            text("key", {"key": "ShiftLeft", "state": False, "finish": True}),
            KeyInput(key="ShiftLeft", state=False, finish=True),
        ),
        (
            text("mouse_button", {"button": "LEFT", "state": True}),
            ButtonInput(button="left", state=True),
        ),
        (text("mouse_move", {"to": {"x": -40000, "y": 100}}), MoveInput(x=-32768, y=100)),
        (text("mouse_move", {"to": {"x": 10**30, "y": 0}}), MoveInput(x=32767, y=0)),
        (
            text("mouse_relative", {"delta": {"x": 300, "y": -5}}),
            RelativeInput(deltas=[(127, -5)], squash=False, wheel=False),
        ),
        (
            text("mouse_wheel", {"delta": [{"x": 0, "y": -1}, {"x": 0, "y": 2}], "squash": True}),
            RelativeInput(deltas=[(0, -1), (0, 2)], squash=True, wheel=True),
        ),
    ],
)
def test_json_messages(message, parsed):
    assert parse_text(message) == parsed


# PiKVM takes booleans as true/false, 1/0 or yes/no in any case, as strings or numbers,
# and integers as numeric strings; client libraries send all of these (pikvm-lib clicks
# with "state": "true").
@pytest.mark.parametrize(
    ("message", "parsed"),
    [
        (text("key", {"key": "KeyA", "state": "true"}), KeyInput(key="KeyA", state=True)),
        (text("key", {"key": "KeyA", "state": 1}), KeyInput(key="KeyA", state=True)),
        (text("key", {"key": "KeyA", "state": "No"}), KeyInput(key="KeyA", state=False)),
        (
            text("key", {"key": "KeyA", "state": " YES ", "finish": "1"}),
            KeyInput(key="KeyA", state=True, finish=True),
        ),
        (
            text("mouse_button", {"button": "left", "state": "TRUE"}),
            ButtonInput(button="left", state=True),
        ),
        (
            text("mouse_button", {"button": "left", "state": 0}),
            ButtonInput(button="left", state=False),
        ),
        (text("mouse_move", {"to": {"x": "100", "y": "-200"}}), MoveInput(x=100, y=-200)),
        (text("mouse_move", {"to": {"x": "99999", "y": 5}}), MoveInput(x=32767, y=5)),
        (
            text("mouse_relative", {"delta": {"x": "-5", "y": "+300"}, "squash": "false"}),
            RelativeInput(deltas=[(-5, 127)], squash=False, wheel=False),
        ),
        (
            text("mouse_wheel", {"delta": [{"x": 0, "y": "-1"}], "squash": "yes"}),
            RelativeInput(deltas=[(0, -1)], squash=True, wheel=True),
        ),
    ],
)
def test_json_messages_take_pikvm_booleans_and_numeric_strings(message, parsed):
    assert parse_text(message) == parsed


@pytest.mark.parametrize(
    "message",
    [
        "",
        "not json",
        "[]",
        "{}",
        text("key", {"key": 5, "state": True}),
        text("key", {"key": "Key A", "state": True}),
        text("key", {"key": "KeyA"}),
        text("mouse_button", {"button": "fifth", "state": True}),
        text("mouse_move", {"to": {"x": 1}}),
        text("mouse_relative", {"delta": []}),
        text("teleport", {}),
        text("key", []),
        text("key", {"key": "KeyA", "state": "maybe"}),
        text("key", {"key": "KeyA", "state": 2}),
        text("key", {"key": "KeyA", "state": 1.0}),
        text("key", {"key": "KeyA", "state": None}),
        text("mouse_button", {"button": "left", "state": []}),
        text("mouse_move", {"to": {"x": "1.5", "y": 0}}),
        text("mouse_move", {"to": {"x": "0x10", "y": 0}}),
        text("mouse_move", {"to": {"x": "123456789", "y": 0}}),
        text("mouse_move", {"to": {"x": True, "y": 0}}),
        text("mouse_relative", {"delta": {"x": "", "y": 0}}),
    ],
)
def test_malformed_json(message):
    with pytest.raises(MalformedInputError):
        parse_text(message)


@pytest.mark.parametrize(
    ("message", "parsed"),
    [
        (b"\x00", Ping(binary=True)),
        (b"\x00junk", Ping(binary=True)),
        (b"\x01\x01KeyA", KeyInput(key="KeyA", state=True)),
        (b"\x01\x02Enter", KeyInput(key="Enter", state=False, finish=True)),
        (
            b"\x01\x00" + b"F" * 40,
            KeyInput(key="F" * 32, state=False),
        ),  # only 32 bytes of name count
        (b"\x01\x81\x00\x1e", CodeInput(code=30, state=True, finish=False, is_button=False)),
        (b"\x02\x01right", ButtonInput(button="right", state=True)),
        (b"\x02\x80\x01\x10", CodeInput(code=272, state=False, finish=False, is_button=True)),
        (b"\x03\x80\x00\x7f\xff", MoveInput(x=-32768, y=32767)),
        (b"\x04\x00\x05\xfb", RelativeInput(deltas=[(5, -5)], squash=False, wheel=False)),
        (
            b"\x05\x01\x00\x01\x00\xff",
            RelativeInput(deltas=[(0, 1), (0, -1)], squash=True, wheel=True),
        ),
    ],
)
def test_binary_messages(message, parsed):
    assert parse_binary(message) == parsed


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"\x01",
        b"\x01\x01",
        b"\x01\x01\xff\xfe",
        b"\x01\x80\x00",
        b"\x03\x00\x00\x00",
        b"\x04\x00",
        b"\x04\x00\x01",
        b"\x09",
    ],
)
def test_malformed_binary(message):
    with pytest.raises(MalformedInputError):
        parse_binary(message)


def test_squash_sums_until_an_axis_would_overflow():
    assert squash_deltas([(100, 0), (20, 1), (10, 1), (-3, 0)]) == [(120, 1), (7, 1)]
    assert squash_deltas([(0, 0)]) == []
    assert squash_deltas([(127, -127), (1, 0)]) == [(127, -127), (1, 0)]
