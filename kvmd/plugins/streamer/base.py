# SPDX-License-Identifier: GPL-3.0-or-later
"""The video streamer (ustreamer) and what the API says about it."""

import abc
import contextlib

import msgspec

from kvmd.bus import Topic
from kvmd.errors import OperationError
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


class StreamerLimits(msgspec.Struct, frozen=True, omit_defaults=True):
    """Ranges of the changeable parameters; a disabled feature's are left out."""

    desired_fps: MinMax
    available_resolutions: list[str] | None = None
    h264_bitrate: MinMax | None = None
    h264_gop: MinMax | None = None


class StreamerParams(msgspec.Struct, frozen=True, omit_defaults=True):
    """The parameters asked for; a disabled feature's parameter is left out."""

    desired_fps: int
    quality: int | None = None
    resolution: str | None = None
    h264_bitrate: int | None = None
    h264_gop: int | None = None


class SavedSnapshot(msgspec.Struct, frozen=True):
    """The snapshot kept by `snapshot?save=1`."""

    online: bool
    width: int
    height: int


class SnapshotState(msgspec.Struct, frozen=True):
    """The saved snapshot, if any."""

    saved: SavedSnapshot | None = None


class StreamerState(msgspec.Struct, frozen=True):
    """`GET /api/streamer` and the `streamer` event; `streamer` is ustreamer's own /state.

    `params` are the values asked for, `applied` the ones the running streamer reports
    (the asked-for ones while it is stopped): the web UI's sliders follow `applied`.
    """

    features: StreamerFeatures
    limits: StreamerLimits
    params: StreamerParams
    applied: StreamerParams
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


class ClientsState(msgspec.Struct, frozen=True):
    """The `clients` event: how many websockets watch the stream."""

    count: int


class StreamerApp(msgspec.Struct, frozen=True):
    """The streamer program as /api/info reports it."""

    app: str = ""
    version: str = ""
    features: dict[str, bool] = msgspec.field(default_factory=dict)


class Snapshot(msgspec.Struct, frozen=True):
    """One JPEG frame and what the streamer said about it."""

    jpeg: bytes
    online: bool
    width: int
    height: int
    headers: dict[str, str]


class StreamerDisabledError(OperationError):
    """No streamer is configured."""

    default_msg = "Streamer is disabled"


class StreamerQualityNotSupported(OperationError):  # noqa: N818 -- PiKVM's name
    """The capture device encodes by itself."""

    default_msg = "This streamer does not support quality settings"


class StreamerResolutionNotSupported(OperationError):  # noqa: N818 -- PiKVM's name
    """The resolution is fixed."""

    default_msg = "This streamer does not support resolution settings"


class StreamerH264NotSupported(OperationError):  # noqa: N818 -- PiKVM's name
    """No H.264 sink is configured."""

    default_msg = "This streamer does not support H264"


class StreamerBackend(Backend):
    """Runs the streamer while somebody watches."""

    topic = Topic.STREAMER

    @abc.abstractmethod
    def state(self) -> StreamerState:
        """The current state."""

    @abc.abstractmethod
    async def describe(self) -> StreamerApp:
        """Name, version and build features of the streamer program."""

    @abc.abstractmethod
    async def set_params(self, params: StreamerParams) -> None:
        """Change parameters; unset ones (None) keep their value. A change restarts the streamer."""

    @abc.abstractmethod
    async def reset(self) -> None:
        """Restart the streamer if it runs."""

    @abc.abstractmethod
    async def snapshot(self, *, allow_offline: bool, save: bool, load: bool) -> Snapshot:
        """A frame, starting the streamer for it if nobody watches; UnavailableError if none."""

    @abc.abstractmethod
    def forget_snapshot(self) -> None:
        """Drop the saved snapshot."""

    @abc.abstractmethod
    def hold(self) -> contextlib.AbstractAsyncContextManager[str]:
        """Keep the streamer running for the block; yields its unix socket path."""
