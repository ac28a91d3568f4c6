# SPDX-License-Identifier: GPL-3.0-or-later
"""MSD: the virtual CD/flash drive the target sees, and the image storage behind it."""

import abc
import contextlib
from collections.abc import AsyncIterator

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


class MsdOfflineError(OperationError):
    """The storage or the gadget's drive is not there."""

    default_msg = "MSD is not found"


class MsdConnectedError(OperationError):
    """The operation needs the drive pulled out of the target first."""

    default_msg = "MSD is connected to Server, but shouldn't for this operation"


class MsdDisconnectedError(OperationError):
    """Disconnecting a drive that is not connected."""

    default_msg = "MSD is disconnected from Server, but should be for this operation"


class MsdImageNotSelected(OperationError):  # noqa: N818 -- PiKVM's name
    """Connecting with no image selected."""

    default_msg = "The image is not selected"


class MsdUnknownImageError(OperationError):
    """No such image in the storage."""

    default_msg = "The image is not found in the storage"


class MsdImageExistsError(OperationError):
    """Uploading under a name that is taken."""

    default_msg = "This image is already exists"  # sic, PiKVM's message


class MsdImageStaticError(OperationError):
    """The image lives where kvmd may not remove it."""

    default_msg = "This image can't be removed"


class MsdRemoteDisabledError(OperationError):
    """set_params with a URL: remote images are not bound directly."""

    default_msg = "Remote images binding is disabled"


class MsdLockedError(OperationError):
    """The kernel refused a drive change (EBUSY)."""

    default_msg = "MSD is locked on IO operation"


class MsdPermissionsError(OperationError):
    """The kernel refused to open the image for the drive."""

    default_msg = "Can't access the image: permission denied"


# Beyond PiKVM: errors of the checks PiKVM does not make.


class MsdImageIncompleteError(OperationError):
    """Connecting or reading an image whose upload never finished."""

    default_msg = "The image is incomplete: resume its upload with offset= or remove it"


class MsdStorageFullError(OperationError):
    """Not enough free space for the upload."""

    default_msg = "Not enough free space in the storage"


class MsdChecksumError(OperationError):
    """The uploaded bytes do not have the SHA-256 the client announced."""

    default_msg = "The image does not match its SHA-256; it was removed"


class MsdUploadOffsetError(OperationError):
    """A resumed upload that does not continue where the image ends."""

    default_msg = "The offset does not continue the incomplete image"


class MsdUploadInterruptedError(OperationError):
    """The request body ended before its Content-Length (the client went away)."""

    default_msg = "The upload was interrupted; the image is incomplete"


class MsdDownloadError(OperationError):
    """`write_remote` could not fetch the URL."""

    default_msg = "Can't download the image"


class MsdImage(msgspec.Struct, frozen=True):
    """An image in the storage."""

    size: int
    complete: bool
    removable: bool
    writable: bool
    mod_ts: float


class MsdPart(msgspec.Struct, frozen=True):
    """A storage partition."""

    size: int
    free: int
    writable: bool


class MsdUpload(msgspec.Struct, frozen=True):
    """An upload in progress."""

    name: str
    size: int
    written: int


class MsdDownload(msgspec.Struct, frozen=True):
    """A read-back in progress: PiKVM names the progress `readed`; `written` is API.md's."""

    name: str
    size: int
    readed: int
    written: int


class MsdStorage(msgspec.Struct, frozen=True):
    """The image storage; `size`/`free` repeat `parts[""]` as PiKVM 4.0 clients expect."""

    size: int
    free: int
    images: dict[str, MsdImage]
    parts: dict[str, MsdPart]
    uploading: MsdUpload | None = None
    downloading: MsdDownload | None = None


class MsdDriveImage(msgspec.Struct, frozen=True):
    """The image the drive holds or will hold; `in_storage` false for a foreign path."""

    name: str
    in_storage: bool
    complete: bool
    removable: bool
    writable: bool
    size: int
    mod_ts: float


class MsdDrive(msgspec.Struct, frozen=True):
    """The drive as the target host sees it."""

    image: MsdDriveImage | None
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


class Upload(msgspec.Struct, frozen=True, kw_only=True):
    """What a client asks to upload: `size` bytes from `offset` (None: a new image)."""

    name: str
    size: int
    offset: int | None = None
    sha256: str | None = None  # lowercase hex
    remove_incomplete: bool = False


class ImageWriter(abc.ABC):
    """An upload in progress: bytes in, and the image when they are all there."""

    name: str
    size: int
    written: int

    @abc.abstractmethod
    async def write(self, data: bytes) -> None:
        """Append `data`; waits while the disk is behind."""


class ImageReader(abc.ABC):
    """A read-back in progress."""

    name: str
    size: int

    @abc.abstractmethod
    def chunks(self) -> AsyncIterator[bytes]:
        """The image's bytes, in order."""


class MsdBackend(Backend):
    """Stores images and plugs one of them into the target."""

    topic = Topic.MSD

    @abc.abstractmethod
    def state(self) -> MsdState:
        """The current state."""

    @abc.abstractmethod
    async def set_params(
        self, *, image: str | None = None, cdrom: bool | None = None, rw: bool | None = None
    ) -> None:
        """Select an image ("" unselects) and the drive's kind; only while disconnected."""

    @abc.abstractmethod
    async def set_connected(self, connected: bool) -> None:
        """Plug the selected image into the target, or pull it out."""

    @abc.abstractmethod
    async def remove(self, name: str) -> None:
        """Delete an image from the storage."""

    @abc.abstractmethod
    async def reset(self) -> None:
        """Eject whatever the drive holds and return it to its defaults."""

    @abc.abstractmethod
    def write_image(self, upload: Upload) -> contextlib.AbstractAsyncContextManager[ImageWriter]:
        """Take `upload.size` bytes as `upload.name` (or continue an incomplete image).

        The image is complete only when the block exits normally with every byte written
        and synced; otherwise it stays incomplete (or is removed with `remove_incomplete`).
        """

    @abc.abstractmethod
    def read_image(self, name: str) -> contextlib.AbstractAsyncContextManager[ImageReader]:
        """Read a complete image back."""
