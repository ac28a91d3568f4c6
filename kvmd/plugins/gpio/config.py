# SPDX-License-Identifier: GPL-3.0-or-later
"""Config of the gpio backends: one tagged Struct per backend, selected by `type`."""

from kvmd.config.base import Section


class DisabledGpioConfig(Section, frozen=True, tag_field="type", tag="disabled"):
    pass


# Later backends join this union; msgspec then picks one by `type` in a single pass.
GpioConfig = DisabledGpioConfig
