# SPDX-License-Identifier: GPL-3.0-or-later
"""USB gadget HID: a boot keyboard and one or two mice, each a /dev/hidgN device."""

import asyncio
import logging

from kvmd.bus import Bus
from kvmd.plugins.hid.base import (
    HidBackend,
    HidLeds,
    HidOutputs,
    HidState,
    KeyboardState,
    MouseState,
)
from kvmd.plugins.hid.config import OtgHidConfig, OtgMouseConfig
from kvmd.plugins.hid.device import ReportDevice
from kvmd.plugins.hid.keys import Key
from kvmd.plugins.hid.reports import (
    ButtonEvent,
    ClearEvent,
    KeyboardReports,
    KeyEvent,
    MouseReports,
    MoveEvent,
    RelativeEvent,
)

logger = logging.getLogger(__name__)

# Output names as PiKVM offers them: the main (absolute) mouse, the same with doubled
# coordinates for Windows 98, and the second (relative) mouse.
USB = "usb"
USB_WIN98 = "usb_win98"
USB_REL = "usb_rel"


class _Mouse:
    def __init__(self, config: OtgMouseConfig, device: ReportDevice, reports: MouseReports) -> None:
        self.config = config
        self.device = device
        self.reports = reports


class OtgHid(HidBackend):
    def __init__(self, config: OtgHidConfig, bus: Bus) -> None:
        super().__init__(config, bus)
        self._config = config
        self._leds = HidLeds()
        self._keyboard_reports = KeyboardReports()
        self._keyboard = ReportDevice(
            None if config.noop else config.keyboard.device,
            config.keyboard,
            self._keyboard_reports,
            name="keyboard",
            on_change=self._publish,
            on_output=self._on_leds,
        )
        self._mice = {USB: self._make_mouse(config.mouse, "mouse")}
        if config.mouse_alt.device:
            self._mice[USB_REL] = self._make_mouse(config.mouse_alt, "mouse-alt")
        self._outputs = list(self._mice)
        if config.mouse.absolute_win98_fix and USB_REL in self._mice:
            self._outputs.insert(1, USB_WIN98)
        self._output = USB

    def _make_mouse(self, config: OtgMouseConfig, name: str) -> _Mouse:
        reports = MouseReports(absolute=config.absolute, horizontal_wheel=config.horizontal_wheel)
        device = ReportDevice(
            None if self._config.noop else config.device,
            config,
            reports,
            name=name,
            on_change=self._publish,
        )
        return _Mouse(config, device, reports)

    @property
    def _mouse(self) -> _Mouse:
        return self._mice[USB_REL if self._output == USB_REL else USB]

    def state(self) -> HidState:
        mouse = self._mouse
        outputs = HidOutputs()
        if len(self._mice) > 1:
            outputs = HidOutputs(available=self._outputs, active=self._output)
        return HidState(
            online=self._keyboard.online and mouse.device.online,
            busy=False,
            connected=None,
            keyboard=KeyboardState(
                online=self._keyboard.online, leds=self._leds, outputs=HidOutputs()
            ),
            mouse=MouseState(
                online=mouse.device.online, absolute=mouse.reports.absolute, outputs=outputs
            ),
            jiggler=self._jiggler_state(),
        )

    async def start(self) -> None:
        # Whatever a previous run left pressed is let go before anything else is sent.
        self._release_all()
        self._publish()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(super().run())
            tasks.create_task(self._keyboard.run())
            for mouse in self._mice.values():
                tasks.create_task(mouse.device.run())

    async def stop(self) -> None:
        # `run` is cancelled by now; an all-clear report goes out straight, if the host takes it.
        self._keyboard_reports.clear()
        self._keyboard.write_now(self._keyboard_reports.snapshot())
        for mouse in self._mice.values():
            mouse.device.write_now(mouse.reports.clear())

    async def wait_sent(self) -> None:
        await self._keyboard.wait_drained()

    def keyboard_backlog(self) -> int:
        return self._keyboard.backlog()

    async def reset(self) -> None:
        self._release_all()
        await self.wait_sent()

    def _on_leds(self, data: bytes) -> None:
        # The host's LED output report; a pty stand-in may hand over several at once.
        self._leds = HidLeds.from_bits(data[-1])
        self._publish()

    def _set_outputs(self, keyboard: str | None, mouse: str | None) -> None:
        if mouse is None or mouse == self._output or mouse not in self._outputs:
            return
        # The mouse being left must not keep a button down on the target.
        self._mouse.device.push(ClearEvent())
        self._output = mouse
        self._mouse.reports.win98 = mouse == USB_WIN98
        logger.info("HID mouse output: %s", mouse)

    def _is_absolute(self) -> bool:
        return self._mouse.reports.absolute

    def _key(self, key: Key, state: bool) -> None:
        self._keyboard.push(KeyEvent(key, state))

    def _mouse_button(self, button: str, state: bool) -> None:
        self._mouse.device.push(ButtonEvent(button, state))

    def _mouse_move(self, x: int, y: int) -> None:
        if self._is_absolute():
            self._mouse.device.push(MoveEvent(x, y))

    def _mouse_relative(self, dx: int, dy: int) -> None:
        if not self._is_absolute():
            self._mouse.device.push(RelativeEvent(dx, dy))

    def _mouse_wheel(self, dx: int, dy: int) -> None:
        self._mouse.device.push(RelativeEvent(dx, dy, wheel=True))

    def _release_all(self) -> None:
        self._keyboard.push(ClearEvent())
        for mouse in self._mice.values():
            mouse.device.push(ClearEvent())
