# SPDX-License-Identifier: GPL-3.0-or-later
"""Bus states as websocket frames, in PiKVM's current and legacy event formats.

A state is encoded once per format however many clients receive it: the renderer
keeps the frames of the last state it saw per topic, and every subscriber gets the
very same state object from the bus.
"""

from collections.abc import Iterator
from typing import NamedTuple

import msgspec

import kvmd
from kvmd.bus import Topic
from kvmd.info.state import InfoState, legacy_hw, legacy_system
from kvmd.plugins.gpio.base import GpioState
from kvmd.plugins.gpio.config import GpioConfig, WolDriverConfig
from kvmd.plugins.streamer.base import StreamerState


class Frame(NamedTuple):
    """One encoded text frame, and what a client must not be sent twice in a row.

    A client gets the frame only when `mark` changed since the last frame under `key`,
    which keeps multi-event states (info, gpio) from repeating parts that did not change.
    A frame that `covers` the state stands for the frames after it: when it is sent they
    are only remembered.
    """

    key: str
    mark: bytes
    data: bytes
    covers: bool = False


class OcrWrapped(msgspec.Struct, frozen=True):
    ocr: msgspec.Struct


class WolTarget(msgspec.Struct, frozen=True):
    ip: str
    port: int
    mac: str


class LegacyWol(msgspec.Struct, frozen=True):
    """PiKVM's old `wol_state`, from before Wake-on-LAN became a GPIO driver."""

    enabled: bool
    target: WolTarget


def legacy_wol(config: GpioConfig) -> LegacyWol | None:
    """The target of the WoL output channel (`__wol__` first, as PiKVM names it), if any."""
    drivers = config.all_drivers()
    channels = sorted(config.scheme.items(), key=lambda item: item[0] != "__wol__")
    for _, channel in channels:
        driver = drivers.get(channel.driver)
        if channel.mode == "output" and isinstance(driver, WolDriverConfig):
            return LegacyWol(
                enabled=True, target=WolTarget(ip=driver.ip, port=driver.port, mac=driver.mac)
            )
    return None


INFO_CATEGORIES = ("auth", "extras", "fan", "health", "meta", "node", "system")
_LEGACY_INFO = ("auth", "extras", "fan", "hw", "meta", "system")
_LEGACY_NAMES = {
    Topic.HID: "hid_state",
    Topic.HID_KEYMAPS: "hid_keymaps_state",
    Topic.ATX: "atx_state",
    Topic.MSD: "msd_state",
    Topic.STREAMER: "streamer_state",
}


def encode_event(event_type: str, event: object) -> bytes:
    return msgspec.json.encode({"event_type": event_type, "event": event}, order="sorted")


def _loop_version() -> dict[str, int]:
    (major, minor) = (int(part) for part in kvmd.__version__.split(".")[:2])
    return {"major": major, "minor": minor}


# The version is this daemon's: clients that check it learn what they talk to.
LOOP_CURRENT = encode_event("loop", {"version": _loop_version()})
LOOP_LEGACY = encode_event("loop", {})
PONG = encode_event("pong", {})


class EventRenderer:
    def __init__(self, wol: LegacyWol | None = None) -> None:
        self._wol = wol
        self._cache: dict[tuple[Topic, bool], tuple[msgspec.Struct, list[Frame]]] = {}

    def render(self, topic: Topic, state: msgspec.Struct, *, legacy: bool) -> list[Frame]:
        cached = self._cache.get((topic, legacy))
        if cached is not None and cached[0] is state:
            return cached[1]
        split = None if legacy else _PARTIAL.get(type(state))
        if split is not None:
            frames = _partial_frames(topic, state, *split)
        else:
            events = _legacy(topic, state, self._wol) if legacy else _current(topic, state)
            frames = []
            for key, name, event in events:
                data = encode_event(name, event)
                frames.append(Frame(key, data, data))
        self._cache[(topic, legacy)] = (state, frames)
        return frames


_Event = tuple[str, str, object]


# States a client gets whole only first and when the leading fields change; otherwise
# only the parts that changed, each with the fields that go along with it (PiKVM's
# partial events). PiKVM's web UI rebuilds its GPIO menu on every event with a `model`
# (replacing the control under the pointer), and its stream settings (resolution list,
# slider ranges, stream mode) on every event with `features`.
_PARTIAL: dict[type[msgspec.Struct], tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]] = {
    GpioState: (("model",), (("state",),)),
    StreamerState: (
        ("features",),
        (("params", "limits"), ("applied", "limits"), ("streamer",), ("snapshot",)),
    ),
}


def _partial_frames(
    topic: Topic,
    state: msgspec.Struct,
    leading: tuple[str, ...],
    parts: tuple[tuple[str, ...], ...],
) -> list[Frame]:
    whole = msgspec.json.encode([getattr(state, name) for name in leading])
    frames = [Frame(f"{topic.value}.{leading[0]}", whole, encode_event(topic.value, state), True)]
    for fields in parts:
        data = encode_event(topic.value, {name: getattr(state, name) for name in fields})
        mark = msgspec.json.encode(getattr(state, fields[0]))
        frames.append(Frame(f"{topic.value}.{fields[0]}", mark, data))
    return frames


def _current(topic: Topic, state: msgspec.Struct) -> Iterator[_Event]:
    if isinstance(state, InfoState):
        for category in INFO_CATEGORIES:
            yield (f"info.{category}", "info", {category: getattr(state, category)})
    else:
        yield (topic.value, topic.value, state)


def _legacy(topic: Topic, state: msgspec.Struct, wol: LegacyWol | None) -> Iterator[_Event]:
    if isinstance(state, GpioState):
        yield ("gpio_state", "gpio_state", state.state)
        yield ("gpio_model_state", "gpio_model_state", state.model)
        if wol is not None:
            yield ("wol_state", "wol_state", wol)
    elif isinstance(state, InfoState):
        parts = {**{c: getattr(state, c) for c in _LEGACY_INFO if c != "hw"}}
        parts["hw"] = legacy_hw(state)
        parts["system"] = legacy_system(state)
        for category in _LEGACY_INFO:
            name = f"info_{category}_state"
            yield (name, name, parts[category])
    elif topic is Topic.OCR:
        yield ("streamer_ocr_state", "streamer_ocr_state", OcrWrapped(ocr=state))
    elif topic in _LEGACY_NAMES:
        name = _LEGACY_NAMES[topic]
        yield (name, name, state)
    # Legacy clients know no `clients` event.
