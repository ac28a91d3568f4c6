# SPDX-License-Identifier: GPL-3.0-or-later
"""User GPIO drivers, imported only when a channel uses one."""

import importlib
from collections.abc import Callable

from kvmd.plugins.gpio.config import DriverConfig, driver_type
from kvmd.plugins.gpio.drivers.driver import Driver

DRIVERS: dict[str, str] = {
    "gpio": "kvmd.plugins.gpio.drivers.gpio:GpioDriver",
    "hidrelay": "kvmd.plugins.gpio.drivers.hidrelay:HidRelayDriver",
    "cmd": "kvmd.plugins.gpio.drivers.cmd:CmdDriver",
    "cmdret": "kvmd.plugins.gpio.drivers.cmd:CmdRetDriver",
    "wol": "kvmd.plugins.gpio.drivers.wol:WolDriver",
    "tesmart": "kvmd.plugins.gpio.drivers.tesmart:TesmartDriver",
    "noop": "kvmd.plugins.gpio.drivers.driver:NoopDriver",
}


def make_driver(name: str, config: DriverConfig, notify: Callable[[], None]) -> Driver:
    module, cls_name = DRIVERS[driver_type(config)].split(":")
    cls: type[Driver] = getattr(importlib.import_module(module), cls_name)
    return cls(name, config, notify)
