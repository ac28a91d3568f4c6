# SPDX-License-Identifier: GPL-3.0-or-later
"""A gadget with a mass-storage drive in a plain directory, and an image storage beside it."""

import hashlib
from pathlib import Path
from typing import Any

from kvmd.hw.gadget import Gadget
from kvmd.hw.gadget_config import OtgConfig


class MsdPaths:
    def __init__(self, tmp_path: Path) -> None:
        self.configfs = tmp_path / "configfs"
        self.storage = tmp_path / "msd"
        self.storage.mkdir()
        # The real kvmd-otg code builds it; only the kernel behind the files is missing.
        gadget = Gadget(OtgConfig(configfs=str(self.configfs), udc="fake-udc.0"))
        gadget.start()
        self.gadget = gadget.path
        self.lun = gadget.path / "functions" / "mass_storage.usb0" / "lun.0"

    def config(self, **extra: Any) -> dict[str, Any]:
        return {
            "type": "otg",
            "gadget": str(self.gadget),
            "storage": str(self.storage),
            "progress_interval": 0.1,
            **extra,
        }

    def lun_files(self) -> dict[str, str]:
        return {
            name: (self.lun / name).read_text()
            for name in ("file", "cdrom", "ro", "forced_eject")
            if (self.lun / name).exists()
        }


def pattern(size: int, seed: int = 0) -> bytes:
    """`size` bytes that differ at every offset, so a shifted or repeated block shows."""
    block = hashlib.sha256(seed.to_bytes(8, "big")).digest() * 2048  # 64 KiB
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += counter.to_bytes(8, "big") + block[8:]
        counter += 1
    return bytes(out[:size])


def listing(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())
