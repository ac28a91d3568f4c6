# SPDX-License-Identifier: GPL-3.0-or-later
"""The image storage: a directory of image files, and the uploads and reads of them.

Crash safety rests on one rule: an image is complete only when it has no marker file
(`.__<file>.incomplete` beside it, as PiKVM names it). The marker is created and synced
before the first byte of an upload and removed only after the last byte is synced, so a
kill, a crash or a power cut at any moment leaves either a complete image or one marked
incomplete, never a short image that looks whole. An incomplete image keeps the bytes it
got; an upload with `offset=` continues it.

Blocking file work runs in the default executor; the event loop only hands buffers over.
"""

import asyncio
import concurrent.futures
import contextlib
import errno
import hashlib
import logging
import os
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from kvmd.errors import HardwareError, ValidatorError
from kvmd.plugins.msd.base import (
    ImageReader,
    ImageWriter,
    MsdChecksumError,
    MsdImage,
    MsdImageExistsError,
    MsdPart,
    MsdStorageFullError,
)
from kvmd.plugins.msd.config import OtgMsdConfig
from kvmd.plugins.msd.names import MARKER_PREFIX, MARKER_SUFFIX, marker_name

logger = logging.getLogger(__name__)

T = TypeVar("T")

_FILE_MODE = 0o644
# Periodic syncs of uploads, off the writing thread (one upload runs at a time).
_SYNCER = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="msd-sync")
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class MsdError(HardwareError):
    """The storage failed in a way no request can fix (an I/O error, a failed remount)."""

    default_msg = "MSD storage error"


def scan(root: Path) -> dict[str, MsdImage]:
    """Every image under `root`, by name; hidden entries, lost+found and symlinks skipped."""
    images: dict[str, MsdImage] = {}
    _scan_dir(root, "", images)
    return dict(sorted(images.items()))


def _scan_dir(folder: Path, prefix: str, images: dict[str, MsdImage]) -> None:
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    markers = {
        entry.name[len(MARKER_PREFIX) : -len(MARKER_SUFFIX)]
        for entry in entries
        if entry.name.startswith(MARKER_PREFIX) and entry.name.endswith(MARKER_SUFFIX)
    }
    for entry in entries:
        if entry.name.startswith(".") or entry.name == "lost+found" or entry.is_symlink():
            continue
        name = prefix + entry.name
        try:
            if entry.is_dir(follow_symlinks=False):
                _scan_dir(Path(entry.path), name + "/", images)
                continue
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue  # vanished while we looked
        if stat.S_ISREG(info.st_mode):
            images[name] = MsdImage(
                size=info.st_size,
                complete=entry.name not in markers,
                removable=True,
                writable=not name.lower().endswith(".iso"),
                mod_ts=info.st_mtime,
            )


def part(root: Path, *, writable: bool) -> MsdPart:
    st = os.statvfs(root)
    return MsdPart(
        size=st.f_blocks * st.f_frsize, free=st.f_bavail * st.f_frsize, writable=writable
    )


def image_path(root: Path, name: str) -> Path:
    """The path of `name` (already validated) under `root`.

    Any parent that exists must be a real directory: a symlink planted in the storage
    must not lead a write out of it.
    """
    path = root
    for part_name in name.split("/")[:-1]:
        path = path / part_name
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            continue  # created on upload
        if not stat.S_ISDIR(mode):
            raise ValidatorError(
                f"The argument {name!r} is not a valid image: {path.name!r} is not a directory"
            )
    return root / name


def remove(root: Path, name: str) -> None:
    path = image_path(root, name)
    path.unlink(missing_ok=True)
    (path.parent / marker_name(path.name)).unlink(missing_ok=True)
    _sync_dir(path.parent)


def _sync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


async def _settle(future: Awaitable[T]) -> T:
    """Await work running in a thread to its end, even through cancellation.

    A thread cannot be interrupted and its file must not be closed under it, so a
    cancellation waits for the work and is re-raised after it.
    """
    task = asyncio.ensure_future(future)
    cancelled = False
    while not task.done():
        try:
            await asyncio.wait([task])
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return task.result()


def _in_thread(func: Callable[..., T], *args: object) -> "asyncio.Future[T]":
    return asyncio.get_running_loop().run_in_executor(None, func, *args)


class FileWriter(ImageWriter):
    """Streams one upload to disk.

    At most two buffers of `write_size` are held (one filling, one being written), and
    the file is synced every `sync_size` bytes.
    """

    def __init__(
        self,
        config: OtgMsdConfig,
        name: str,
        size: int,
        *,
        offset: int | None,
        sha256: str | None,
        on_progress: Callable[[int], None],
    ) -> None:
        """Prepare to write bytes `offset` .. `offset + size` of `name`.

        `offset` None makes a new image; a number continues an incomplete one, even 0 (an
        upload cut before its first byte left an empty image with its marker).
        """
        self.name = name
        self._new = offset is None
        offset = offset or 0
        self.size = offset + size
        self.written = offset
        root = Path(config.storage)
        self._root = root
        self._path = image_path(root, name)
        self._marker = self._path.parent / marker_name(self._path.name)
        self._offset = offset
        self._sha256 = sha256
        self._hash = hashlib.sha256() if sha256 else None
        self._write_size = config.write_size
        self._sync_size = config.sync_size
        self._on_progress = on_progress
        self._fd = -1
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._unsynced = 0
        self._syncing: concurrent.futures.Future[None] | None = None
        self._inflight: asyncio.Future[None] | None = None

    async def open(self, *, need: int) -> None:
        await _settle(_in_thread(self._open, need))

    def _open(self, need: int) -> None:
        new = self._new
        free = part(self._root, writable=True).free
        if free < need:
            raise MsdStorageFullError(
                f"Not enough free space in the storage: {need} bytes needed, {free} free"
            )
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            # The marker first, synced: from here on a crash leaves an incomplete image.
            os.close(os.open(self._marker, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, _FILE_MODE))
            _sync_dir(self._path.parent)
            flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
            self._fd = os.open(self._path, flags | (os.O_EXCL if new else 0), _FILE_MODE)
            os.ftruncate(self._fd, self._offset)
            os.lseek(self._fd, self._offset, os.SEEK_SET)
            if self._offset:
                self._hash_prefix()
        except (IsADirectoryError, FileExistsError):
            self._close_failed(new)
            raise MsdImageExistsError from None
        except OSError as exc:
            self._close_failed(new)
            raise _storage_error(exc) from None
        logger.info("MSD: writing %r from byte %d of %d", self.name, self._offset, self.size)

    def _close_failed(self, new: bool) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if new and not self._path.exists():
            self._marker.unlink(missing_ok=True)

    def _hash_prefix(self) -> None:
        if self._hash is None:
            return
        with open(self._path, "rb", buffering=0) as file:  # noqa: PTH123 -- a raw read
            left = self._offset
            while left:
                data = file.read(min(left, self._write_size))
                if not data:
                    break
                self._hash.update(data)
                left -= len(data)

    async def write(self, data: bytes) -> None:
        if self.written + len(data) > self.size:
            raise ValidatorError(f"More data than the declared {self.size} bytes")
        self._buffer.append(data)
        self._buffered += len(data)
        self.written += len(data)
        if self._buffered >= self._write_size:
            await self._flush()
        self._on_progress(self.written)

    async def _flush(self) -> None:
        if self._inflight is not None:
            inflight, self._inflight = self._inflight, None
            await _settle(inflight)  # the disk is behind: this is where a fast client waits
        if self._buffer:
            chunks, self._buffer, self._buffered = self._buffer, [], 0
            self._inflight = _in_thread(self._write_chunks, chunks)

    async def _drain(self) -> None:
        """Write out what is buffered; on return no write is running, even after an error."""
        await self._flush()  # if the write before fails, nothing new was started
        if self._inflight is not None:
            inflight, self._inflight = self._inflight, None
            await _settle(inflight)

    def _write_chunks(self, chunks: list[bytes]) -> None:
        try:
            total = sum(map(len, chunks))
            done = os.writev(self._fd, chunks)
            if done < total:  # short only on a full disk or a signal; finish byte-wise
                rest = memoryview(b"".join(chunks))[done:]
                while rest:
                    rest = rest[os.write(self._fd, rest) :]
            if self._hash is not None:
                for chunk in chunks:
                    self._hash.update(chunk)
            self._unsynced += total
            if self._unsynced >= self._sync_size:
                # The sync runs beside the next writes; the one before it must be over, so
                # at most two `sync_size` windows are ever unsynced.
                if self._syncing is not None:
                    self._syncing.result()
                self._syncing = _SYNCER.submit(os.fdatasync, self._fd)
                self._unsynced = 0
        except OSError as exc:
            raise _storage_error(exc) from None

    async def finish(self) -> bool:
        """Sync everything; the image is complete (True) only if every byte came."""
        await self._drain()
        return await _settle(_in_thread(self._finish))

    def _finish(self) -> bool:
        try:
            self._wait_sync()
            os.fsync(self._fd)
        except OSError as exc:
            raise _storage_error(exc) from None
        finally:
            os.close(self._fd)
            self._fd = -1
        if self.written < self.size:
            logger.warning("MSD: %r got %d of %d bytes", self.name, self.written, self.size)
            return False
        if self._hash is not None and self._hash.hexdigest() != self._sha256:
            got = self._hash.hexdigest()
            remove(self._root, self.name)
            raise MsdChecksumError(
                f"The image has SHA-256 {got}, not {self._sha256}; it was removed"
            )
        self._marker.unlink()
        _sync_dir(self._path.parent)
        logger.info("MSD: %r is complete, %d bytes", self.name, self.size)
        return True

    async def abort(self, *, remove_file: bool) -> None:
        """End an upload that failed or was cut off: the image stays marked incomplete."""
        # What did arrive is kept: a resumed upload need not send it again.
        with contextlib.suppress(Exception):
            await self._drain()
        await _settle(_in_thread(self._abort, remove_file))

    def _wait_sync(self) -> None:
        syncing, self._syncing = self._syncing, None
        if syncing is not None:
            syncing.result()

    def _abort(self, remove_file: bool) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                self._wait_sync()
            with contextlib.suppress(OSError):
                os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1
        if remove_file:
            remove(self._root, self.name)
            logger.info("MSD: removed the incomplete %r", self.name)
        else:
            logger.info("MSD: %r stays incomplete at %d bytes", self.name, self.written)


class FileReader(ImageReader):
    def __init__(
        self, root: Path, name: str, *, read_size: int, on_progress: Callable[[int], None]
    ) -> None:
        """Prepare to read `name` in chunks of `read_size`."""
        self.name = name
        self.size = 0
        self._path = image_path(root, name)
        self._read_size = read_size
        self._on_progress = on_progress
        self._fd = -1

    async def open(self) -> None:
        await _settle(_in_thread(self._open))

    def _open(self) -> None:
        self._fd = os.open(self._path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        self.size = os.fstat(self._fd).st_size

    async def chunks(self) -> AsyncIterator[bytes]:
        done = 0
        while done < self.size:
            data = await _settle(_in_thread(os.pread, self._fd, self._read_size, done))
            if not data:
                break  # truncated under us; the client sees a short body
            done += len(data)
            self._on_progress(done)
            yield data

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _storage_error(exc: OSError) -> Exception:
    if exc.errno in _NO_SPACE:
        return MsdStorageFullError()
    logger.error("MSD storage: %s", exc)
    return MsdError(f"MSD storage error: {exc.strerror or exc}")
