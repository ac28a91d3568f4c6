# SPDX-License-Identifier: GPL-3.0-or-later
from kvmd.plugins.msd.base import MsdBackend, MsdDisabledError, MsdState


class DisabledMsd(MsdBackend):
    def state(self) -> MsdState:
        return MsdState(enabled=False, online=False, busy=False, storage=None, drive=None)

    async def set_connected(self, connected: bool) -> None:
        raise MsdDisabledError
