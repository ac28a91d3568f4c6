# SPDX-License-Identifier: GPL-3.0-or-later
"""The video streamer (ustreamer) and what the API says about it."""

import abc

import msgspec

from kvmd.bus import Topic
from kvmd.plugins.backend import Backend


class StreamerFeatures(msgspec.Struct, frozen=True):
    """Which parameters the capture device lets a client change."""

    quality: bool = False
    resolution: bool = False
    h264: bool = False


class MinMax(msgspec.Struct, frozen=True):
    """An inclusive range."""

    min: int
    max: int


class StreamerLimits(msgspec.Struct, frozen=True):
    """Ranges of the changeable parameters."""

    desired_fps: MinMax


class StreamerParams(msgspec.Struct, frozen=True, omit_defaults=True):
    """The parameters asked for; a disabled feature's parameter is left out."""

    desired_fps: int
    quality: int | None = None


class SavedSnapshot(msgspec.Struct, frozen=True):
    """The snapshot kept by `snapshot?save=1`."""

    online: bool
    width: int
    height: int


class SnapshotState(msgspec.Struct, frozen=True):
    """The saved snapshot, if any."""

    saved: SavedSnapshot | None = None


class StreamerState(msgspec.Struct, frozen=True):
    """`GET /api/streamer` and the `streamer` event; `streamer` is ustreamer's own /state."""

    features: StreamerFeatures
    limits: StreamerLimits
    params: StreamerParams
    snapshot: SnapshotState
    streamer: msgspec.Raw | None = None


class OcrLangs(msgspec.Struct, frozen=True):
    """Tesseract languages."""

    default: list[str] = msgspec.field(default_factory=list)
    available: list[str] = msgspec.field(default_factory=list)


class OcrState(msgspec.Struct, frozen=True):
    """The `ocr` event; `GET /api/streamer/ocr` wraps it as `{"ocr": ...}`."""

    enabled: bool = False
    langs: OcrLangs = msgspec.field(default_factory=OcrLangs)


class StreamerApp(msgspec.Struct, frozen=True):
    """The streamer program as /api/info reports it."""

    app: str = ""
    version: str = ""
    features: dict[str, bool] = msgspec.field(default_factory=dict)


class StreamerBackend(Backend):
    """Runs the streamer while somebody watches."""

    topic = Topic.STREAMER

    @abc.abstractmethod
    def state(self) -> StreamerState:
        """The current state."""

    @abc.abstractmethod
    async def describe(self) -> StreamerApp:
        """Name, version and build features of the streamer program."""
