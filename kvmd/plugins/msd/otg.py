# SPDX-License-Identifier: GPL-3.0-or-later
"""MSD through the USB gadget: images in a storage directory, one of them in the drive.

One operation at a time, as PiKVM: every change, upload and read-back holds the busy
region, and all but disconnect and reset need the drive disconnected. The storage is
watched with inotify, so images copied in by hand appear without a restart.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

from kvmd.bus import Bus
from kvmd.hw.inotify import Inotify
from kvmd.plugins.msd import storage
from kvmd.plugins.msd.base import (
    ImageReader,
    ImageWriter,
    MsdBackend,
    MsdConnectedError,
    MsdDisconnectedError,
    MsdDownload,
    MsdDrive,
    MsdDriveImage,
    MsdImage,
    MsdImageExistsError,
    MsdImageIncompleteError,
    MsdImageNotSelected,
    MsdImageStaticError,
    MsdIsBusyError,
    MsdOfflineError,
    MsdPart,
    MsdState,
    MsdStorage,
    MsdUnknownImageError,
    MsdUpload,
    MsdUploadOffsetError,
    Upload,
)
from kvmd.plugins.msd.config import OtgMsdConfig
from kvmd.plugins.msd.drive import Drive
from kvmd.plugins.msd.storage import FileReader, FileWriter, MsdError

logger = logging.getLogger(__name__)

# A change in the storage is reloaded after this quiet time; without one, every so often
# (the drive's `file` can change under us, and free space does).
_SETTLE = 0.1
_REFRESH = 5.0


class OtgMsd(MsdBackend):
    def __init__(self, config: OtgMsdConfig, bus: Bus) -> None:
        super().__init__(config, bus)
        self._config = config
        self._root = Path(config.storage)
        self._drive = Drive(Path(config.gadget))
        self._online = False
        self._busy = False
        self._images: dict[str, MsdImage] = {}
        self._part = MsdPart(size=0, free=0, writable=False)
        # The image the next connect inserts: a storage name, or a foreign absolute path
        # found in the drive at start.
        self._selected: str | None = None
        self._cdrom = config.initial.cdrom
        self._rw = False
        self._connected = False
        self._uploading: MsdUpload | None = None
        self._downloading: MsdDownload | None = None
        self._last_progress = 0.0
        self._mounted_rw: bool | None = None  # unknown until the first remount
        self._changed = asyncio.Event()

    # ----- state

    def state(self) -> MsdState:
        if not self._online:
            return MsdState(enabled=True, online=False, busy=self._busy, storage=None, drive=None)
        return MsdState(
            enabled=True,
            online=True,
            busy=self._busy,
            storage=MsdStorage(
                size=self._part.size,
                free=self._part.free,
                images=self._images,
                parts={"": self._part},
                uploading=self._uploading,
                downloading=self._downloading,
            ),
            drive=MsdDrive(
                image=self._drive_image(),
                connected=self._connected,
                cdrom=self._cdrom,
                rw=self._rw,
            ),
        )

    def _drive_image(self) -> MsdDriveImage | None:
        name = self._selected
        if name is None:
            return None
        image = self._images.get(name)
        if image is not None:
            return MsdDriveImage(
                name,
                True,
                image.complete,
                image.removable,
                image.writable,
                image.size,
                image.mod_ts,
            )
        # A foreign file someone put in the drive, or an image that vanished.
        try:
            if not Path(name).is_absolute():
                raise FileNotFoundError(name)
            info = Path(name).stat()
        except OSError:
            return MsdDriveImage(name, False, False, False, False, 0, 0.0)
        return MsdDriveImage(name, False, True, False, False, info.st_size, info.st_mtime)

    async def _reload(self) -> None:
        (self._images, self._part, present) = await asyncio.to_thread(self._load)
        online = present and self._part.size > 0
        if online != self._online:
            logger.info("MSD is %s", "online" if online else "offline")
        self._online = online
        self._connected = bool(self._drive.file()) if present else False

    def _load(self) -> tuple[dict[str, MsdImage], MsdPart, bool]:
        try:
            part = storage.part(self._root, writable=True)
            images = storage.scan(self._root)
        except OSError:
            part = MsdPart(size=0, free=0, writable=False)
            images = {}
        return (images, part, self._drive.present())

    # ----- lifecycle

    async def start(self) -> None:
        await self._reload()
        if self._online:
            inserted = self._drive.file()
            if inserted:
                self._selected = self._name_of(inserted)
                self._cdrom = self._drive.cdrom()
                self._rw = not self._drive.ro()
            elif self._config.initial.image in self._images:
                self._selected = self._config.initial.image
            await self._ensure_mode(rw=self._connected and self._rw)
        self._publish()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        with Inotify() as inotify:
            watched: set[Path] = set()
            loop.add_reader(inotify.fd, self._on_inotify, inotify)
            try:
                while True:
                    self._watch(inotify, watched)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), _REFRESH)
                    await asyncio.sleep(_SETTLE)
                    self._changed.clear()
                    if not self._busy:  # an operation reloads when it ends
                        await self._reload()
                        self._publish()
            finally:
                loop.remove_reader(inotify.fd)

    def _watch(self, inotify: Inotify, watched: set[Path]) -> None:
        folders = {self._root} | {(self._root / name).parent for name in self._images}
        for folder in folders - watched:
            with contextlib.suppress(OSError):
                inotify.watch(folder)
                watched.add(folder)
        watched &= folders  # the kernel drops watches of removed directories itself

    def _on_inotify(self, inotify: Inotify) -> None:
        if inotify.read():
            self._changed.set()

    async def stop(self) -> None:
        pass  # uploads end with their requests; the drive keeps its medium across restarts

    # ----- operations

    @contextlib.asynccontextmanager
    async def _operation(self, *, disconnected: bool = True) -> AsyncIterator[None]:
        if self._busy:
            raise MsdIsBusyError
        if not self._online:
            raise MsdOfflineError
        self._connected = bool(self._drive.file())
        if disconnected and self._connected:
            raise MsdConnectedError
        self._busy = True
        self._publish()
        try:
            yield
        finally:
            try:
                await self._reload()
                await self._ensure_mode(rw=self._connected and self._rw)
            finally:
                self._busy = False
                self._publish()

    async def set_params(
        self, *, image: str | None = None, cdrom: bool | None = None, rw: bool | None = None
    ) -> None:
        async with self._operation():
            if image is not None:
                if image and image not in self._images:
                    raise MsdUnknownImageError
                self._selected = image or None
            if cdrom is not None:
                self._cdrom = cdrom
            if rw is not None:
                self._rw = rw
            selected = self._images.get(self._selected or "")
            if self._cdrom or (selected is not None and not selected.writable):
                self._rw = False

    async def set_connected(self, connected: bool) -> None:
        async with self._operation(disconnected=connected):
            if not connected:
                if not self._connected:
                    raise MsdDisconnectedError
                self._drive.eject()
                logger.info("MSD: disconnected")
                return
            if self._selected is None:
                raise MsdImageNotSelected
            image = self._images.get(self._selected)
            if image is None:
                raise MsdUnknownImageError
            if not image.complete:
                raise MsdImageIncompleteError
            if self._rw:
                await self._ensure_mode(rw=True)
            path = storage.image_path(self._root, self._selected).absolute()
            self._drive.insert(path, cdrom=self._cdrom, ro=not self._rw)
            logger.info(
                "MSD: connected %r as %s, %s",
                self._selected,
                "CD-ROM" if self._cdrom else "flash",
                "rw" if self._rw else "ro",
            )

    async def remove(self, name: str) -> None:
        async with self._operation():
            image = self._images.get(name)
            if image is None:
                raise MsdUnknownImageError
            if not image.removable:
                raise MsdImageStaticError
            await self._ensure_mode(rw=True)
            await asyncio.to_thread(storage.remove, self._root, name)
            if self._selected == name:
                self._selected = None
            logger.info("MSD: removed %r", name)

    async def reset(self) -> None:
        async with self._operation(disconnected=False):
            try:
                self._drive.eject()
                self._drive.configure(cdrom=self._config.initial.cdrom, ro=True)
            except Exception:
                logger.exception("MSD: can't reset the drive")
            self._selected = None
            self._cdrom = self._config.initial.cdrom
            self._rw = False
            logger.info("MSD: reset")

    @contextlib.asynccontextmanager
    async def write_image(self, upload: Upload) -> AsyncIterator[ImageWriter]:
        (name, size, offset) = (upload.name, upload.size, upload.offset)
        async with self._operation():
            existing = self._images.get(name)
            if offset is None:
                if existing is not None or await asyncio.to_thread(self._taken, name):
                    raise MsdImageExistsError
            elif existing is None:
                raise MsdUnknownImageError
            elif existing.complete:
                raise MsdImageExistsError
            elif offset > existing.size:
                raise MsdUploadOffsetError(
                    f"The image has {existing.size} bytes: offset {offset} leaves a gap"
                )
            await self._ensure_mode(rw=True)
            writer = FileWriter(
                self._config,
                name,
                size,
                offset=offset,
                sha256=upload.sha256,
                on_progress=self._on_upload_progress,
            )
            start = offset or 0
            await writer.open(need=size if existing is None else start + size - existing.size)
            self._uploading = MsdUpload(name=name, size=writer.size, written=writer.written)
            await self._reload()  # shows the image, incomplete, while it uploads
            self._publish()
            try:
                yield writer
                complete = await writer.finish()
                if not complete and upload.remove_incomplete:
                    await asyncio.to_thread(storage.remove, self._root, name)
            except BaseException:
                await writer.abort(remove_file=upload.remove_incomplete)
                raise
            finally:
                self._uploading = None

    def _taken(self, name: str) -> bool:
        return storage.image_path(self._root, name).exists()

    def _progress_due(self) -> bool:
        now = time.monotonic()
        if now - self._last_progress < self._config.progress_interval:
            return False
        self._last_progress = now
        return True

    def _on_upload_progress(self, written: int) -> None:
        uploading = self._uploading
        if uploading is not None and self._progress_due():
            self._uploading = MsdUpload(uploading.name, uploading.size, written)
            self._publish()

    @contextlib.asynccontextmanager
    async def read_image(self, name: str) -> AsyncIterator[ImageReader]:
        async with self._operation():
            image = self._images.get(name)
            if image is None:
                raise MsdUnknownImageError
            if not image.complete:
                raise MsdImageIncompleteError
            reader = FileReader(
                self._root, name, read_size=self._config.read_size, on_progress=self._on_read
            )
            try:
                await reader.open()
            except FileNotFoundError:
                raise MsdUnknownImageError from None
            self._downloading = MsdDownload(name, reader.size, 0, 0)
            self._publish()
            try:
                yield reader
            finally:
                reader.close()
                self._downloading = None

    def _on_read(self, done: int) -> None:
        downloading = self._downloading
        if downloading is not None and self._progress_due():
            self._downloading = MsdDownload(downloading.name, downloading.size, done, done)
            self._publish()

    # ----- helpers

    def _name_of(self, path: str) -> str:
        """The storage name of a path in the drive, or the path itself if it is foreign."""
        for root in (self._root.absolute(), self._root.resolve()):
            with contextlib.suppress(ValueError):
                return str(Path(path).relative_to(root))
        return path

    async def _ensure_mode(self, *, rw: bool) -> None:
        """Remount the storage rw or ro with `remount_cmd`, if it has one."""
        cmd = self._config.remount_cmd
        if not cmd or self._mounted_rw is rw:
            return
        mode = "rw" if rw else "ro"
        argv = [part.format(mode=mode) for part in cmd]
        process = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        (_, stderr) = await process.communicate()
        if process.returncode != 0:
            self._mounted_rw = None
            detail = stderr.decode(errors="replace").strip()
            logger.error("MSD: remount %s failed (%d): %s", mode, process.returncode, detail)
            raise MsdError(f"Can't remount the MSD storage {mode}")
        self._mounted_rw = rw
