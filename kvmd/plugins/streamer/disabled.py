# SPDX-License-Identifier: GPL-3.0-or-later
from kvmd.plugins.streamer.base import (
    MinMax,
    SnapshotState,
    StreamerApp,
    StreamerBackend,
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
            snapshot=SnapshotState(),
        )

    async def describe(self) -> StreamerApp:
        return StreamerApp()
