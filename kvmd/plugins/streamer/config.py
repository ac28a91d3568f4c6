# SPDX-License-Identifier: GPL-3.0-or-later
"""Config of the streamer backends: one tagged Struct per backend, selected by `type`."""

from typing import Annotated

from msgspec import Meta, field

from kvmd.config.base import Section


class DisabledStreamerConfig(Section, frozen=True, tag_field="type", tag="disabled"):
    pass


class FpsConfig(Section, frozen=True):
    default: Annotated[int, Meta(ge=0, le=120)] = 30
    min: Annotated[int, Meta(ge=0, le=120)] = 0
    max: Annotated[int, Meta(ge=0, le=120)] = 90

    def __post_init__(self) -> None:
        if not self.min <= self.default <= self.max:
            raise ValueError("needs min <= default <= max")


class ResolutionConfig(Section, frozen=True):
    # Empty default: the device decides and clients can't change it.
    default: str = ""
    available: list[str] = field(default_factory=list)


class H264BitrateConfig(Section, frozen=True):
    # A default of 0 turns H.264 off.
    default: Annotated[int, Meta(ge=0, le=20000)] = 0
    min: Annotated[int, Meta(ge=25, le=20000)] = 25
    max: Annotated[int, Meta(ge=25, le=20000)] = 20000


class H264GopConfig(Section, frozen=True):
    default: Annotated[int, Meta(ge=0, le=60)] = 0
    min: Annotated[int, Meta(ge=0, le=60)] = 0
    max: Annotated[int, Meta(ge=0, le=60)] = 60


# Placeholders the command may use; each is replaced by the current value.
PLACEHOLDERS = (
    "unix",
    "process_name_prefix",
    "quality",
    "desired_fps",
    "resolution",
    "h264_bitrate",
    "h264_gop",
)


def _default_cmd() -> list[str]:
    return [
        "/usr/bin/ustreamer",
        "--device=/dev/kvmd-video",
        "--persistent",
        "--quality={quality}",
        "--desired-fps={desired_fps}",
        "--unix={unix}",
        "--unix-rm",
        "--unix-mode=0660",
        # ustreamer dies with kvmd even after a kill -9 (PR_SET_PDEATHSIG).
        "--exit-on-parent-death",
        "--process-name-prefix={process_name_prefix}",
    ]


class UstreamerConfig(Section, frozen=True, tag_field="type", tag="ustreamer"):
    """ustreamer (or anything speaking its HTTP API on a unix socket), run while watched."""

    unix: str = "/run/kvmd/ustreamer.sock"
    cmd: list[str] = field(default_factory=_default_cmd)
    process_name_prefix: str = "kvmd/streamer"
    forever: bool = False
    shutdown_delay: Annotated[float, Meta(ge=0.0, le=3600.0)] = 10.0
    state_poll: Annotated[float, Meta(ge=0.1, le=60.0)] = 1.0
    timeout: Annotated[float, Meta(ge=0.1, le=60.0)] = 2.0
    snapshot_timeout: Annotated[float, Meta(ge=0.1, le=60.0)] = 5.0
    stop_timeout: Annotated[float, Meta(ge=0.1, le=60.0)] = 3.0
    restart_delay_min: Annotated[float, Meta(ge=0.01, le=60.0)] = 0.5
    restart_delay_max: Annotated[float, Meta(ge=0.01, le=600.0)] = 10.0
    # A run this long was healthy: its crash restarts after restart_delay_min. Only quicker
    # crashes in a row double the delay.
    stable_after: Annotated[float, Meta(ge=0.0, le=600.0)] = 2.0
    # 0 turns the quality feature off (a capture device that encodes by itself).
    quality: Annotated[int, Meta(ge=0, le=100)] = 80
    desired_fps: FpsConfig = field(default_factory=FpsConfig)
    resolution: ResolutionConfig = field(default_factory=ResolutionConfig)
    h264_bitrate: H264BitrateConfig = field(default_factory=H264BitrateConfig)
    h264_gop: H264GopConfig = field(default_factory=H264GopConfig)

    # PiKVM's ways to adjust a command without repeating it: arguments equal to one in
    # `*_remove` are dropped, `*_append` ones added at the end. The commands before a start
    # and after a stop are run to completion; a failure is only logged.
    cmd_remove: list[str] = field(default_factory=list)
    cmd_append: list[str] = field(default_factory=list)
    pre_start_cmd: list[str] = field(default_factory=list)
    pre_start_cmd_remove: list[str] = field(default_factory=list)
    pre_start_cmd_append: list[str] = field(default_factory=list)
    post_stop_cmd: list[str] = field(default_factory=list)
    post_stop_cmd_remove: list[str] = field(default_factory=list)
    post_stop_cmd_append: list[str] = field(default_factory=list)
    # After a restart (new parameters, `reset`), the start waits this long: a capture
    # device needs a moment once it is closed.
    reset_delay: Annotated[float, Meta(ge=0.0, le=60.0)] = 1.0
    # ustreamer's --h264-boost, --slowdown and --v4p (PiKVM's switches for them).
    h264_boost: bool = False
    slowdown: bool = False
    passthrough: bool = False

    def __post_init__(self) -> None:
        values = dict.fromkeys(PLACEHOLDERS, "")
        if not self.cmd:
            raise ValueError("cmd is empty")
        for arg in [*self.full_cmd(), *self.pre_start(), *self.post_stop()]:
            try:
                arg.format_map(values)
            except (KeyError, ValueError, IndexError) as exc:
                raise ValueError(f"bad placeholder in {arg!r}: {exc}") from None

    def full_cmd(self) -> list[str]:
        """The streamer's command with PiKVM's removals, additions and switches."""
        flags = [
            flag
            for (flag, on) in (
                ("--h264-boost", self.h264_boost),
                ("--slowdown", self.slowdown),
                ("--v4p", self.passthrough),
            )
            if on
        ]
        return _build(self.cmd, self.cmd_remove, [*self.cmd_append, *flags])

    def pre_start(self) -> list[str]:
        return _build(self.pre_start_cmd, self.pre_start_cmd_remove, self.pre_start_cmd_append)

    def post_stop(self) -> list[str]:
        return _build(self.post_stop_cmd, self.post_stop_cmd_remove, self.post_stop_cmd_append)


def _build(cmd: list[str], remove: list[str], append: list[str]) -> list[str]:
    if not cmd:
        return []
    return [cmd[0], *(arg for arg in cmd[1:] if arg not in remove), *append]


StreamerConfig = DisabledStreamerConfig | UstreamerConfig
