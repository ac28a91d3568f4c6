# SPDX-License-Identifier: GPL-3.0-or-later
import json

from kvmd.bus import Topic
from kvmd.plugins.atx.base import AtxActs, AtxLeds, AtxState
from kvmd.plugins.gpio.disabled import DisabledGpio
from kvmd.plugins.streamer.base import OcrState
from kvmd.server.events import EventRenderer


def decode(frames):
    return [(frame.key, json.loads(frame.data)) for frame in frames]


def test_current_and_legacy_names():
    renderer = EventRenderer()
    atx = AtxState(enabled=False, busy=False, acts=AtxActs(), leds=AtxLeds())
    assert decode(renderer.render(Topic.ATX, atx, legacy=False)) == [
        (
            "atx",
            {
                "event_type": "atx",
                "event": {
                    "busy": False,
                    "enabled": False,
                    "acts": {"power": False, "reset": False},
                    "leds": {"hdd": False, "power": False},
                },
            },
        )
    ]
    assert [f["event_type"] for (_, f) in decode(renderer.render(Topic.ATX, atx, legacy=True))] == [
        "atx_state"
    ]
    ocr = decode(renderer.render(Topic.OCR, OcrState(), legacy=True))
    assert ocr[0][1] == {
        "event_type": "streamer_ocr_state",
        "event": {"ocr": {"enabled": False, "langs": {"available": [], "default": []}}},
    }


def test_legacy_gpio_splits_state_and_model():
    gpio = DisabledGpio.__new__(DisabledGpio).state()
    names = [
        f["event_type"] for (_, f) in decode(EventRenderer().render(Topic.GPIO, gpio, legacy=True))
    ]
    assert names == ["gpio_state", "gpio_model_state"]


def test_a_state_is_encoded_once_per_format():
    renderer = EventRenderer()
    atx = AtxState(enabled=True, busy=False, acts=AtxActs(), leds=AtxLeds())
    first = renderer.render(Topic.ATX, atx, legacy=False)
    assert renderer.render(Topic.ATX, atx, legacy=False) is first
    assert (
        renderer.render(
            Topic.ATX,
            AtxState(enabled=True, busy=True, acts=AtxActs(), leds=AtxLeds()),
            legacy=False,
        )
        is not first
    )
