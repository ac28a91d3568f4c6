# SPDX-License-Identifier: GPL-3.0-or-later
import contextlib

from kvmd.plugins.msd.base import (
    ImageReader,
    ImageWriter,
    MsdBackend,
    MsdDisabledError,
    MsdState,
    Upload,
)


class DisabledMsd(MsdBackend):
    def state(self) -> MsdState:
        return MsdState(enabled=False, online=False, busy=False, storage=None, drive=None)

    async def set_params(
        self, *, image: str | None = None, cdrom: bool | None = None, rw: bool | None = None
    ) -> None:
        raise MsdDisabledError

    async def set_connected(self, connected: bool) -> None:
        raise MsdDisabledError

    async def remove(self, name: str) -> None:
        raise MsdDisabledError

    async def reset(self) -> None:
        raise MsdDisabledError

    def write_image(self, upload: Upload) -> contextlib.AbstractAsyncContextManager[ImageWriter]:
        raise MsdDisabledError

    def read_image(self, name: str) -> contextlib.AbstractAsyncContextManager[ImageReader]:
        raise MsdDisabledError
