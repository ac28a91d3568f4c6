# SPDX-License-Identifier: GPL-3.0-or-later
"""Config of the USB gadget `kvmd-otg` builds (the `otg` section)."""

from typing import Annotated

from msgspec import Meta, field

from kvmd.config.base import Section


class OtgHidFunctions(Section, frozen=True):
    keyboard: bool = True
    mouse: bool = True
    # The relative mouse, for BIOSes and hosts that ignore absolute pointers.
    mouse_alt: bool = True
    horizontal_wheel: bool = True


class OtgMsdFunction(Section, frozen=True):
    enabled: bool = True
    # Start as a CD-ROM, read-only: what a boot image wants; kvmd changes it per image.
    cdrom: bool = True
    rw: bool = False


class OtgConfig(Section, frozen=True):
    """The gadget in configfs, bound to the board's USB device controller."""

    configfs: str = "/sys/kernel/config"
    udc_class: str = "/sys/class/udc"
    # Empty: the first (usually only) controller under `udc_class`.
    udc: str = ""
    gadget: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{1,32}$")] = "kvmd"
    vendor_id: Annotated[int, Meta(ge=0, le=0xFFFF)] = 0x1D6B  # Linux Foundation
    product_id: Annotated[int, Meta(ge=0, le=0xFFFF)] = 0x0104  # Multifunction Composite Gadget
    manufacturer: str = "kvmd"
    product: str = "Composite KVM Device"
    serial: str = "CAFEBABE"
    max_power: Annotated[int, Meta(ge=0, le=500)] = 250  # mA
    # kvmd runs as this user and changes the drive's medium: kvmd-otg (root) hands it the
    # LUN's attribute files. Empty: they stay root's (kvmd runs as root, or in tests).
    user: str = ""
    hid: OtgHidFunctions = field(default_factory=OtgHidFunctions)
    msd: OtgMsdFunction = field(default_factory=OtgMsdFunction)
