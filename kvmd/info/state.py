# SPDX-License-Identifier: GPL-3.0-or-later
"""What /api/info and the `info` events report, and PiKVM's two shapes of it.

The current shape (`legacy=0`) has `health` as a category and `platform` inside
`system`. The legacy shape (the default over HTTP, and PiKVM 4.0's websocket) has
`hw = {health: {temp, throttling}, platform}` instead (4.0 had only type, base and
serial in `platform`).
"""

import msgspec

# Free-form YAML (meta.yaml, extras manifests): whatever the file holds.
Json = dict[str, "Json"] | list["Json"] | str | int | float | bool | None


class AuthInfo(msgspec.Struct, frozen=True):
    enabled: bool


class FanInfo(msgspec.Struct, frozen=True):
    monitored: bool = False
    state: msgspec.Raw | None = None


class Platform(msgspec.Struct, frozen=True):
    type: str = "rpi"
    base: str | None = None
    serial: str | None = None
    model: str | None = None
    video: str | None = None
    board: str | None = None


class Kernel(msgspec.Struct, frozen=True):
    system: str
    release: str
    version: str
    machine: str


class KvmdVersion(msgspec.Struct, frozen=True):
    version: str


class StreamerVersion(msgspec.Struct, frozen=True):
    app: str
    version: str
    features: dict[str, bool]


class SystemInfo(msgspec.Struct, frozen=True):
    kvmd: KvmdVersion
    streamer: StreamerVersion
    kernel: Kernel
    platform: Platform


class Temp(msgspec.Struct, frozen=True):
    cpu: float | None = None


class CpuLoad(msgspec.Struct, frozen=True):
    percent: int | None = None


class Memory(msgspec.Struct, frozen=True):
    percent: float | None = None
    total: int | None = None
    available: int | None = None


class Flag(msgspec.Struct, frozen=True):
    now: bool
    past: bool


class ParsedFlags(msgspec.Struct, frozen=True):
    undervoltage: Flag
    freq_capped: Flag
    throttled: Flag


class Throttling(msgspec.Struct, frozen=True):
    raw_flags: int
    parsed_flags: ParsedFlags
    ignore_past: bool


class Health(msgspec.Struct, frozen=True):
    temp: Temp = msgspec.field(default_factory=Temp)
    cpu: CpuLoad = msgspec.field(default_factory=CpuLoad)
    mem: Memory = msgspec.field(default_factory=Memory)
    throttling: Throttling | None = None


class Node(msgspec.Struct, frozen=True):
    host: str


class InfoState(msgspec.Struct, frozen=True):
    """Every category, as published on the bus (topic `info`)."""

    auth: AuthInfo
    extras: Json
    fan: FanInfo
    health: Health
    meta: Json
    node: Node
    system: SystemInfo


# Legacy shapes (PiKVM 4.0): what `hw` held, and `system` without `platform`.


class LegacyHealth(msgspec.Struct, frozen=True):
    temp: Temp
    throttling: Throttling | None


class LegacyHw(msgspec.Struct, frozen=True):
    health: LegacyHealth
    # PiKVM 4.0 had type, base and serial here; later versions have the whole platform,
    # and client libraries name the board from its `model`.
    platform: Platform


class LegacySystemInfo(msgspec.Struct, frozen=True):
    kvmd: KvmdVersion
    streamer: StreamerVersion
    kernel: Kernel


def legacy_hw(info: InfoState) -> LegacyHw:
    return LegacyHw(
        health=LegacyHealth(temp=info.health.temp, throttling=info.health.throttling),
        platform=info.system.platform,
    )


def legacy_system(info: InfoState) -> LegacySystemInfo:
    system = info.system
    return LegacySystemInfo(kvmd=system.kvmd, streamer=system.streamer, kernel=system.kernel)
