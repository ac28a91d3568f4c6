# SPDX-License-Identifier: GPL-3.0-or-later
"""systemd's notify protocol, without libsystemd: datagrams to $NOTIFY_SOCKET.

Type=notify units learn that kvmd is ready (READY=1, once it listens), that it is alive
(WATCHDOG=1 at half the unit's WatchdogSec) and that it is stopping (STOPPING=1).
See sd_notify(3); outside systemd (no NOTIFY_SOCKET) every call does nothing.
"""

import asyncio
import logging
import os
import socket
from collections.abc import Mapping

logger = logging.getLogger(__name__)


class Notifier:
    def __init__(self, env: Mapping[str, str] = os.environ) -> None:
        address = env.get("NOTIFY_SOCKET", "")
        # An "@" names a socket in the abstract namespace: a leading NUL byte.
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self._watchdog = _watchdog_interval(env)

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between WATCHDOG=1 pings, or None when the unit has no watchdog."""
        return self._watchdog

    def notify(self, **fields: str) -> None:
        """Send the fields as `KEY=value` lines, e.g. READY=1 and a STATUS text."""
        if not self._address:
            return
        message = "\n".join(f"{key}={value}" for (key, value) in fields.items()).encode()
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            try:
                sock.sendto(message, self._address)
            except OSError as exc:
                # systemd gone or the socket wrong: the daemon works on, unsupervised.
                logger.warning("Can't notify systemd at %r: %s", self._address, exc)

    async def run_watchdog(self) -> None:
        """Ping the watchdog until cancelled; return at once without a watchdog."""
        if self._watchdog is None:
            return
        while True:
            self.notify(WATCHDOG="1")
            await asyncio.sleep(self._watchdog)


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    # WATCHDOG_PID, when set, names the process that must ping: not a child of ours.
    if not usec.isdigit() or int(usec) == 0 or (pid and pid != str(os.getpid())):
        return None
    # Half the timeout, as sd_watchdog_enabled(3) advises: one late ping is not a restart.
    return int(usec) / 2 / 1_000_000
