# SPDX-License-Identifier: GPL-3.0-or-later
"""Wake-on-LAN: switching the channel on sends the magic packet for the configured MAC."""

import logging
import socket
from collections.abc import Callable

from kvmd.plugins.gpio.config import WolDriverConfig
from kvmd.plugins.gpio.drivers.driver import TriggerDriver

logger = logging.getLogger(__name__)


def magic_packet(mac: str) -> bytes:
    """Six 0xFF bytes, then the MAC sixteen times: 102 bytes."""
    address = bytes.fromhex(mac.replace(":", "").replace("-", ""))
    return b"\xff" * 6 + address * 16


class WolDriver(TriggerDriver):
    def __init__(self, name: str, config: WolDriverConfig, notify: Callable[[], None]) -> None:
        super().__init__(name, config, notify)
        self._packet = magic_packet(config.mac)
        self._target = (config.ip, config.port)
        self._mac = config.mac

    async def _trigger(self, pin: str) -> None:
        family = socket.AF_INET6 if ":" in self._target[0] else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            sock.sendto(self._packet, self._target)
        logger.info("GPIO %s: sent WoL for %s to %s:%d", self.name, self._mac, *self._target)
