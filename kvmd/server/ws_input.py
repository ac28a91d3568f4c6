# SPDX-License-Identifier: GPL-3.0-or-later
"""Client-to-server websocket messages (API.md §4): pure parsers, no I/O.

Anything malformed raises `MalformedInputError`; the caller drops the message and keeps
the socket open. Values out of range are clamped, as PiKVM does.
"""

import re
import struct

import msgspec

from kvmd.plugins.hid.reports import clamp
from kvmd.server.params import bool_word, decode_json


class MalformedInputError(ValueError):
    pass


class Ping(msgspec.Struct, frozen=True):
    binary: bool


class KeyInput(msgspec.Struct, frozen=True):
    key: str
    state: bool
    finish: bool = False


class ButtonInput(msgspec.Struct, frozen=True):
    button: str
    state: bool


class CodeInput(msgspec.Struct, frozen=True):
    """A key (or button) sent as an evdev code instead of a web name."""

    code: int
    state: bool
    finish: bool
    is_button: bool


class MoveInput(msgspec.Struct, frozen=True):
    x: int
    y: int


class RelativeInput(msgspec.Struct, frozen=True):
    deltas: list[tuple[int, int]]
    squash: bool
    wheel: bool


Input = Ping | KeyInput | ButtonInput | CodeInput | MoveInput | RelativeInput

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,63}$")
BUTTONS = frozenset({"left", "right", "middle", "up", "down"})


class _Envelope(msgspec.Struct):
    event_type: str
    event: msgspec.Raw = msgspec.Raw(b"{}")


# PiKVM's validators take a boolean as true/false, 1/0 or yes/no in any case, as JSON
# strings or numbers, and an integer as a number or a numeric string; client libraries
# send all of these, so the events are decoded loosely and then checked.
_Bool = bool | int | str
_Int = int | str


class _KeyEvent(msgspec.Struct):
    key: str
    state: _Bool
    finish: _Bool = False


class _ButtonEvent(msgspec.Struct):
    button: str
    state: _Bool


class _Point(msgspec.Struct):
    x: _Int
    y: _Int


class _MoveEvent(msgspec.Struct):
    to: _Point


class _RelativeEvent(msgspec.Struct):
    delta: _Point | list[_Point]
    squash: _Bool = False


# Longer than any coordinate or delta PiKVM accepts as text.
_MAX_NUMBER = 8
_NUMBER = re.compile(r"^[-+]?[0-9]+$")


def _bool(value: _Bool, name: str) -> bool:
    if isinstance(value, bool):
        return value
    word = bool_word(str(value))
    if word is None:
        raise MalformedInputError(f"bad {name}")
    return word


def _int(value: _Int, name: str) -> int:
    if isinstance(value, int):
        return value
    text = value.strip()
    if len(text) > _MAX_NUMBER or not _NUMBER.match(text):
        raise MalformedInputError(f"bad {name}")
    return int(text)


_JSON_EVENTS: dict[str, type[msgspec.Struct]] = {
    "key": _KeyEvent,
    "mouse_button": _ButtonEvent,
    "mouse_move": _MoveEvent,
    "mouse_relative": _RelativeEvent,
    "mouse_wheel": _RelativeEvent,
}


def parse_text(data: str) -> Input:
    try:
        envelope = decode_json(data, _Envelope)
        if envelope.event_type == "ping":
            return Ping(binary=False)
        cls = _JSON_EVENTS.get(envelope.event_type)
        if cls is None:
            raise MalformedInputError(f"unknown event type {envelope.event_type[:32]!r}")
        event = decode_json(envelope.event, cls)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        raise MalformedInputError(str(exc)) from None
    return _from_json(envelope.event_type, event)


def _from_json(event_type: str, event: msgspec.Struct) -> Input:
    if isinstance(event, _KeyEvent):
        return KeyInput(
            key=_check_name(event.key),
            state=_bool(event.state, "state"),
            finish=_bool(event.finish, "finish"),
        )
    if isinstance(event, _ButtonEvent):
        return ButtonInput(button=_check_button(event.button), state=_bool(event.state, "state"))
    if isinstance(event, _MoveEvent):
        (x, y) = _point(event.to, -32768, 32767)
        return MoveInput(x=x, y=y)
    if not isinstance(event, _RelativeEvent):
        raise MalformedInputError(f"unexpected event {event_type}")
    points = event.delta if isinstance(event.delta, list) else [event.delta]
    if not points or len(points) > 1024:
        raise MalformedInputError("bad number of deltas")
    deltas = [_point(p, -127, 127) for p in points]
    return RelativeInput(
        deltas=deltas, squash=_bool(event.squash, "squash"), wheel=event_type == "mouse_wheel"
    )


def _point(point: _Point, low: int, high: int) -> tuple[int, int]:
    return (clamp(_int(point.x, "x"), low, high), clamp(_int(point.y, "y"), low, high))


def parse_binary(data: bytes) -> Input:
    if not data:
        raise MalformedInputError("empty binary message")
    kind = data[0]
    if kind == 0:
        return Ping(binary=True)
    if kind in (1, 2):
        return _parse_key_or_button(data, is_button=kind == 2)
    if kind == 3:
        if len(data) != 5:
            raise MalformedInputError("bad mouse move length")
        (x, y) = struct.unpack(">hh", data[1:])
        return MoveInput(x=x, y=y)
    if kind in (4, 5):
        if len(data) < 4 or len(data) % 2:
            raise MalformedInputError("bad relative move length")
        pairs = struct.unpack(f">{len(data) - 2}b", data[2:])
        deltas = [
            (clamp(dx, -127, 127), clamp(dy, -127, 127))
            for (dx, dy) in zip(pairs[::2], pairs[1::2], strict=True)
        ]
        return RelativeInput(deltas=deltas, squash=bool(data[1] & 1), wheel=kind == 5)
    raise MalformedInputError(f"unknown binary message type {kind}")


def _parse_key_or_button(data: bytes, *, is_button: bool) -> Input:
    if len(data) < 3:
        raise MalformedInputError("key message too short")
    flags = data[1]
    state = bool(flags & 0x01)
    finish = bool(flags & 0x02)
    if flags & 0x80:
        if len(data) != 4:
            raise MalformedInputError("bad key code length")
        code = struct.unpack(">H", data[2:4])[0]
        return CodeInput(code=code, state=state, finish=finish, is_button=is_button)
    try:
        name = data[2:34].decode("ascii")
    except UnicodeDecodeError:
        raise MalformedInputError("key name is not ASCII") from None
    if is_button:
        return ButtonInput(button=_check_button(name), state=state)
    return KeyInput(key=_check_name(name), state=state, finish=finish)


def _check_name(key: str) -> str:
    if not _NAME.match(key):
        raise MalformedInputError("bad key name")
    return key


def _check_button(button: str) -> str:
    button = button.lower()
    if button not in BUTTONS:
        raise MalformedInputError("bad mouse button")
    return button


def squash_deltas(deltas: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sum consecutive deltas while both axes stay within ±127 (fewer HID reports)."""
    out: list[tuple[int, int]] = []
    (sx, sy) = (0, 0)
    for dx, dy in deltas:
        if abs(sx + dx) > 127 or abs(sy + dy) > 127:
            out.append((sx, sy))
            (sx, sy) = (0, 0)
        sx += dx
        sy += dy
    if sx or sy:
        out.append((sx, sy))
    return out
