# SPDX-License-Identifier: GPL-3.0-or-later
"""The drive: LUN 0 of the gadget's mass-storage function in configfs.

Reference: Documentation/usb/gadget-testing.rst (f_mass_storage) and
drivers/usb/gadget/function/storage_common.c in the kernel tree. Writing `file` opens
the backing image (empty: no medium); `ro` and `cdrom` can change only while `file` is
empty; `forced_eject` detaches the medium even when the host has locked it.

In tests and the testenv the gadget is a plain directory: there `forced_eject` is just a
file, so `eject()` also empties `file`, which the kernel has already done on a real one.
"""

import errno
from pathlib import Path

from kvmd.plugins.msd.base import MsdLockedError, MsdPermissionsError

FUNCTION = "mass_storage.usb0"


class Drive:
    def __init__(self, gadget: Path) -> None:
        """The drive of the gadget at `gadget` (usb_gadget/<name> in configfs)."""
        self._link = gadget / "configs" / "c.1" / FUNCTION
        self.lun = gadget / "functions" / FUNCTION / "lun.0"

    def present(self) -> bool:
        """The gadget has the function, linked into its configuration."""
        return self._link.exists() and self.lun.is_dir()

    def file(self) -> str:
        return self._read("file")

    def cdrom(self) -> bool:
        return self._read("cdrom") == "1"

    def ro(self) -> bool:
        return self._read("ro") != "0"

    def insert(self, path: Path, *, cdrom: bool, ro: bool) -> None:
        self._write("ro", str(int(ro)))
        self._write("cdrom", str(int(cdrom)))
        self._write("file", str(path))

    def configure(self, *, cdrom: bool, ro: bool) -> None:
        self._write("ro", str(int(ro)))
        self._write("cdrom", str(int(cdrom)))

    def eject(self) -> None:
        self._write("forced_eject", "1")
        if self.file():
            self._write("file", "")

    def _read(self, name: str) -> str:
        try:
            return (self.lun / name).read_text().strip()
        except FileNotFoundError:
            return ""

    def _write(self, name: str, value: str) -> None:
        try:
            (self.lun / name).write_text(value + "\n" if value else "\n")
        except OSError as exc:
            if exc.errno == errno.EBUSY:
                raise MsdLockedError from None
            if exc.errno in (errno.EACCES, errno.EPERM):
                raise MsdPermissionsError from None
            raise
