# SPDX-License-Identifier: GPL-3.0-or-later
"""ATX: the target's power and reset buttons and its power/HDD LEDs."""

import abc
import enum

import msgspec

from kvmd.bus import Topic
from kvmd.errors import BusyError, OperationError
from kvmd.plugins.backend import Backend


class AtxDisabledError(OperationError):
    """ATX is switched off in the config."""

    default_msg = "ATX is disabled"


class AtxIsBusyError(BusyError):
    """Another press of the same button is still running."""

    default_msg = "Performing another ATX operation, please try again later"


class PowerAction(enum.StrEnum):
    """What `POST /api/atx/power` may ask for."""

    ON = "on"
    OFF = "off"
    OFF_HARD = "off_hard"
    RESET_HARD = "reset_hard"


class Button(enum.StrEnum):
    """What `POST /api/atx/click` may press."""

    POWER = "power"
    POWER_LONG = "power_long"
    RESET = "reset"


class AtxLeds(msgspec.Struct, frozen=True):
    """The target's front-panel LEDs."""

    power: bool = False
    hdd: bool = False


class AtxActs(msgspec.Struct, frozen=True):
    """Which button is busy; `busy` is their OR (PiKVM 4.0 had only `busy`)."""

    power: bool = False
    reset: bool = False


class AtxState(msgspec.Struct, frozen=True):
    """`GET /api/atx` and the `atx` event."""

    enabled: bool
    busy: bool
    acts: AtxActs
    leds: AtxLeds


class AtxBackend(Backend):
    """Presses the buttons; power actions look at the power LED first."""

    topic = Topic.ATX

    @abc.abstractmethod
    def state(self) -> AtxState:
        """The current state."""

    @abc.abstractmethod
    async def power(self, action: PowerAction, *, wait: bool) -> None:
        """Turn the target on or off; a no-op when the power LED already says so."""

    @abc.abstractmethod
    async def click(self, button: Button, *, wait: bool) -> None:
        """Press a button for its configured time."""

    @abc.abstractmethod
    async def restart(self, *, wait: bool) -> None:
        """Restart gracefully: a short power press, and once the power LED is out, another.

        Not one of PiKVM's power actions: Redfish's GracefulRestart. A target that is off
        is only turned on; one that doesn't shut down in time is left on.
        """
