# SPDX-License-Identifier: GPL-3.0-or-later
"""Bus states as websocket frames, in PiKVM's current and legacy event formats.

A state is encoded once per format however many clients receive it: the renderer
keeps the frames of the last state it saw per topic, and every subscriber gets the
very same state object from the bus.
"""

from collections.abc import Iterator

import msgspec

from kvmd.bus import Topic
from kvmd.info.state import InfoState, legacy_hw, legacy_system
from kvmd.plugins.gpio.base import GpioState

# (dedupe key, encoded text frame). A client never gets the same frame twice in a row
# under one key, which keeps multi-event states (info, legacy gpio) from repeating parts
# that did not change.
Frame = tuple[str, bytes]


class OcrWrapped(msgspec.Struct, frozen=True):
    ocr: msgspec.Struct


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


LOOP_CURRENT = encode_event("loop", {"version": {"major": 4, "minor": 0}})
LOOP_LEGACY = encode_event("loop", {})
PONG = encode_event("pong", {})


class EventRenderer:
    def __init__(self) -> None:
        self._cache: dict[tuple[Topic, bool], tuple[msgspec.Struct, list[Frame]]] = {}

    def render(self, topic: Topic, state: msgspec.Struct, *, legacy: bool) -> list[Frame]:
        cached = self._cache.get((topic, legacy))
        if cached is not None and cached[0] is state:
            return cached[1]
        events = _legacy(topic, state) if legacy else _current(topic, state)
        frames = [(key, encode_event(name, event)) for (key, name, event) in events]
        self._cache[(topic, legacy)] = (state, frames)
        return frames


_Event = tuple[str, str, object]


def _current(topic: Topic, state: msgspec.Struct) -> Iterator[_Event]:
    if isinstance(state, InfoState):
        for category in INFO_CATEGORIES:
            yield (f"info.{category}", "info", {category: getattr(state, category)})
    else:
        yield (topic.value, topic.value, state)


def _legacy(topic: Topic, state: msgspec.Struct) -> Iterator[_Event]:
    if isinstance(state, GpioState):
        yield ("gpio_state", "gpio_state", state.state)
        yield ("gpio_model_state", "gpio_model_state", state.model)
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
