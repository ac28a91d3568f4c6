# SPDX-License-Identifier: GPL-3.0-or-later
"""The keymaps offered to `/api/hid/print`: the configured file's folder lists them."""

from pathlib import Path

import msgspec


class Keymaps(msgspec.Struct, frozen=True):
    default: str
    available: list[str]


class HidKeymapsState(msgspec.Struct, frozen=True):
    keymaps: Keymaps


def read_keymaps(keymap: Path) -> HidKeymapsState:
    try:
        available = sorted(p.name for p in keymap.parent.iterdir() if p.is_file())
    except OSError:
        available = []
    return HidKeymapsState(keymaps=Keymaps(default=keymap.name, available=available))
