# SPDX-License-Identifier: GPL-3.0-or-later
"""Config of the msd backends: one tagged Struct per backend, selected by `type`."""

from typing import Annotated

from msgspec import Meta, field

from kvmd.config.base import Section

MiB = 1024 * 1024


class DisabledMsdConfig(Section, frozen=True, tag_field="type", tag="disabled"):
    pass


class OtgMsdInitialConfig(Section, frozen=True):
    """What the drive holds when kvmd starts and finds it empty."""

    image: str = ""
    cdrom: bool = True


class OtgMsdConfig(Section, frozen=True, tag_field="type", tag="otg"):
    """The mass-storage function of the USB gadget, and the image storage behind it."""

    # The gadget kvmd-otg created (`otg.configfs`/usb_gadget/`otg.gadget`); its
    # functions/mass_storage.usb0/lun.0 is the drive.
    gadget: str = "/sys/kernel/config/usb_gadget/kvmd"
    storage: str = "/var/lib/kvmd/msd"
    # Run with {mode} = rw before a change to the storage and ro after it, for storage
    # on a partition kept read-only (PiKVM OS); empty: the storage is always writable.
    remount_cmd: list[str] = field(default_factory=list)
    initial: OtgMsdInitialConfig = field(default_factory=OtgMsdInitialConfig)
    # Uploads reach the disk in writes of this size and are fsynced every `sync_size`
    # bytes: that bounds both the memory an upload holds and what a power cut can lose.
    write_size: Annotated[int, Meta(ge=64 * 1024, le=64 * MiB)] = 1 * MiB
    sync_size: Annotated[int, Meta(ge=1 * MiB, le=1024 * MiB)] = 4 * MiB
    read_size: Annotated[int, Meta(ge=4096, le=64 * MiB)] = 256 * 1024
    # How often the `uploading`/`downloading` progress is published.
    progress_interval: Annotated[float, Meta(ge=0.1, le=60.0)] = 1.0


# msgspec picks one by `type` in a single pass.
MsdConfig = DisabledMsdConfig | OtgMsdConfig
