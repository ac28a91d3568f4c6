# SPDX-License-Identifier: GPL-3.0-or-later
"""Config of the HID backends: one tagged Struct per backend, selected by `type`."""

from kvmd.config.base import Section


class DisabledHidConfig(Section, frozen=True, tag_field="type", tag="disabled"):
    # The keymap file also names the default in /api/hid/keymaps; its folder lists the others.
    keymap: str = "/usr/share/kvmd/keymaps/en-us"


# Later backends join this union; msgspec then picks one by `type` in a single pass.
HidConfig = DisabledHidConfig
