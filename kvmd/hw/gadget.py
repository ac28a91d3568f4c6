# SPDX-License-Identifier: GPL-3.0-or-later
"""The USB gadget in configfs: keyboard, mice and mass storage on one composite device.

Reference: Documentation/usb/gadget_configfs.rst and gadget-testing.rst (f_hid,
f_mass_storage) in the kernel tree. `root` is configfs itself in production and a plain
directory in tests: there, the attribute files the kernel would create are simply
written, and removal falls back to deleting them.
"""

import contextlib
import errno
import logging
import os
import pwd
import shutil
from pathlib import Path

from kvmd.hw.gadget_config import OtgConfig

logger = logging.getLogger(__name__)

# HID report descriptors (HID 1.11 and the HID Usage Tables), matching the reports the
# OTG backend writes (kvmd/plugins/hid/reports.py).
KEYBOARD_DESCRIPTOR = bytes.fromhex(
    "05 01 09 06 a1 01"  # Generic Desktop, Keyboard, Application collection
    "05 07 19 e0 29 e7 15 00 25 01 75 01 95 08 81 02"  # 8 modifier bits
    "95 01 75 08 81 01"  # reserved byte
    "95 05 75 01 05 08 19 01 29 05 91 02"  # 5 LEDs (output report)
    "95 01 75 03 91 01"  # LED padding
    "95 06 75 08 15 00 26 ff 00 05 07 19 00 2a ff 00 81 00"  # 6 key slots
    "c0"
)
_BUTTONS = (
    "05 09 19 01 29 05 15 00 25 01 95 05 75 01 81 02"  # 5 buttons
    "95 01 75 03 81 01"  # padding
)
_WHEEL = "09 38 15 81 25 7f 75 08 95 01 81 06"  # vertical wheel, relative
_HWHEEL = "05 0c 0a 38 02 15 81 25 7f 75 08 95 01 81 06"  # Consumer AC Pan


def mouse_descriptor(*, absolute: bool, horizontal_wheel: bool) -> bytes:
    if absolute:
        axes = "05 01 09 30 09 31 16 00 00 26 ff 7f 75 10 95 02 81 02"  # X, Y: 0..32767
    else:
        axes = "05 01 09 30 09 31 15 81 25 7f 75 08 95 02 81 06"  # dX, dY: -127..127
    wheel = "05 01 " + _WHEEL + (_HWHEEL if horizontal_wheel else "")
    return bytes.fromhex("05 01 09 02 a1 01 09 01 a1 00" + _BUTTONS + axes + wheel + "c0 c0")


class GadgetError(Exception):
    pass


class Gadget:
    def __init__(self, config: OtgConfig) -> None:
        self._config = config
        self.path = Path(config.configfs) / "usb_gadget" / config.gadget

    def udc(self) -> str:
        if self._config.udc:
            return self._config.udc
        try:
            found = sorted(p.name for p in Path(self._config.udc_class).iterdir())
        except FileNotFoundError:
            found = []
        if not found:
            raise GadgetError(f"no USB device controller in {self._config.udc_class}")
        return found[0]

    def bound_to(self) -> str:
        try:
            return (self.path / "UDC").read_text().strip()
        except FileNotFoundError:
            return ""

    def start(self) -> bool:
        """Create and bind the gadget; False if it was already bound as configured."""
        udc = self.udc()
        if self.bound_to() == udc:
            return False
        if self.path.exists():
            self.stop()
        config = self._config
        self._write("", idVendor=f"{config.vendor_id:#06x}", idProduct=f"{config.product_id:#06x}")
        self._write("", bcdDevice="0x0100", bcdUSB="0x0200")
        self._write(
            "strings/0x409",
            manufacturer=config.manufacturer,
            product=config.product,
            serialnumber=config.serial,
        )
        self._write("configs/c.1", MaxPower=str(config.max_power), bmAttributes="0x80")
        self._write("configs/c.1/strings/0x409", configuration="Config 1: HID + mass storage")
        hid = config.hid
        number = 0
        for enabled, protocol, subclass, length, descriptor in [
            (hid.keyboard, 1, 1, 8, KEYBOARD_DESCRIPTOR),
            (hid.mouse, 2, 0, 7 if hid.horizontal_wheel else 6,
             mouse_descriptor(absolute=True, horizontal_wheel=hid.horizontal_wheel)),
            (hid.mouse_alt, 2, 1, 5 if hid.horizontal_wheel else 4,
             mouse_descriptor(absolute=False, horizontal_wheel=hid.horizontal_wheel)),
        ]:  # fmt: skip
            if enabled:
                function = f"functions/hid.usb{number}"
                self._write(function, protocol=str(protocol), subclass=str(subclass))
                self._write(function, report_length=str(length))
                (self.path / function / "report_desc").write_bytes(descriptor)
                self._link(function)
                number += 1  # /dev/hidgN numbers follow creation order
        if config.msd.enabled:
            function = "functions/mass_storage.usb0"
            self._write(function, stall="0")
            self._write(
                f"{function}/lun.0",
                cdrom=str(int(config.msd.cdrom)),
                ro=str(int(not config.msd.rw)),
                removable="1",
                nofua="1",
                file="",
            )
            self._give(f"{function}/lun.0", "file", "cdrom", "ro", "forced_eject")
            self._link(function)
        (self.path / "UDC").write_text(udc + "\n")
        logger.info("Gadget %s bound to %s", config.gadget, udc)
        return True

    def stop(self) -> bool:
        """Unbind and remove the gadget; False if there was none."""
        if not self.path.exists():
            return False
        if self.bound_to():
            (self.path / "UDC").write_text("\n")
        config_dir = self.path / "configs" / "c.1"
        if config_dir.exists():
            for link in config_dir.iterdir():
                if link.is_symlink():
                    link.unlink()
            _rmdir(config_dir / "strings" / "0x409")
            _rmdir(config_dir)
        functions = self.path / "functions"
        if functions.exists():
            for function in functions.iterdir():
                _rmdir(function)
        _rmdir(self.path / "strings" / "0x409")
        _rmdir(self.path)
        logger.info("Gadget %s removed", config_dir.parent.parent.name)
        return True

    def _write(self, folder: str, **attributes: str) -> None:
        path = self.path / folder
        path.mkdir(parents=True, exist_ok=True)
        for name, value in attributes.items():
            (path / name).write_text(value + "\n" if value else "")

    def _give(self, folder: str, *names: str) -> None:
        """Hand attribute files to `user` (configfs keeps an owner set on them)."""
        if not self._config.user:
            return
        try:
            user = pwd.getpwnam(self._config.user)
        except KeyError:
            raise GadgetError(f"no user {self._config.user!r} to hand the drive to") from None
        for name in names:
            path = self.path / folder / name
            if path.exists():
                os.chown(path, user.pw_uid, user.pw_gid)

    def _link(self, function: str) -> None:
        link = self.path / "configs" / "c.1" / Path(function).name
        if not link.is_symlink():
            link.symlink_to((self.path / function).absolute())


def _rmdir(path: Path) -> None:
    # configfs removes a group's attributes with it; a plain directory needs them deleted.
    try:
        path.rmdir()
    except FileNotFoundError:
        pass
    except OSError as exc:
        if exc.errno != errno.ENOTEMPTY:
            raise
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(path)
