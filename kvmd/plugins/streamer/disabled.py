# SPDX-License-Identifier: GPL-3.0-or-later
import contextlib

from kvmd.plugins.streamer.base import (
    MinMax,
    Snapshot,
    SnapshotState,
    StreamerApp,
    StreamerBackend,
    StreamerDisabledError,
    StreamerFeatures,
    StreamerLimits,
    StreamerParams,
    StreamerState,
)


class DisabledStreamer(StreamerBackend):
    def state(self) -> StreamerState:
        return StreamerState(
            features=StreamerFeatures(),
            limits=StreamerLimits(desired_fps=MinMax(min=0, max=0)),
            params=StreamerParams(desired_fps=0),
            applied=StreamerParams(desired_fps=0),
            snapshot=SnapshotState(),
        )

    async def describe(self) -> StreamerApp:
        return StreamerApp()

    async def set_params(self, params: StreamerParams) -> None:
        raise StreamerDisabledError

    async def reset(self) -> None:
        raise StreamerDisabledError

    async def snapshot(self, *, allow_offline: bool, save: bool, load: bool) -> Snapshot:
        raise StreamerDisabledError

    def forget_snapshot(self) -> None:
        raise StreamerDisabledError

    def hold(self) -> contextlib.AbstractAsyncContextManager[str]:
        raise StreamerDisabledError
