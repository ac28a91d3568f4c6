# SPDX-License-Identifier: GPL-3.0-or-later
"""MSD: the virtual CD/flash drive the target sees, and the image storage behind it."""

import abc

import msgspec

from kvmd.bus import Topic
from kvmd.errors import BusyError, OperationError
from kvmd.plugins.backend import Backend


class MsdDisabledError(OperationError):
    """MSD is switched off in the config."""

    default_msg = "MSD is disabled"


class MsdIsBusyError(BusyError):
    """Another MSD operation is running."""

    default_msg = "Performing another MSD operation, please try again later"


class MsdImage(msgspec.Struct, frozen=True):
    """An image in the storage."""

    size: int
    complete: bool
    removable: bool
    mod_ts: float


class MsdPart(msgspec.Struct, frozen=True):
    """A storage partition."""

    size: int
    free: int
    writable: bool


class MsdTransfer(msgspec.Struct, frozen=True):
    """An upload or download in progress."""

    name: str
    size: int
    written: int


class MsdStorage(msgspec.Struct, frozen=True):
    """The image storage; `size`/`free` repeat `parts[""]` as PiKVM 4.0 clients expect."""

    size: int
    free: int
    images: dict[str, MsdImage]
    parts: dict[str, MsdPart]
    uploading: MsdTransfer | None = None
    downloading: MsdTransfer | None = None


class MsdDrive(msgspec.Struct, frozen=True):
    """The drive as the target host sees it."""

    image: str | None
    connected: bool
    cdrom: bool
    rw: bool


class MsdState(msgspec.Struct, frozen=True):
    """`GET /api/msd` and the `msd` event."""

    enabled: bool
    online: bool
    busy: bool
    storage: MsdStorage | None
    drive: MsdDrive | None


class MsdBackend(Backend):
    """Stores images and plugs one of them into the target."""

    topic = Topic.MSD

    @abc.abstractmethod
    def state(self) -> MsdState:
        """The current state."""

    @abc.abstractmethod
    async def set_connected(self, connected: bool) -> None:
        """Plug the selected image into the target, or pull it out."""
