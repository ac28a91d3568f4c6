# SPDX-License-Identifier: GPL-3.0-or-later
"""The `health` category: CPU temperature and load, memory, and Raspberry Pi throttling."""

import logging
import re
from pathlib import Path
from typing import NamedTuple

from kvmd.config.schema import InfoHwConfig
from kvmd.info.collect import read_text, run_command
from kvmd.info.state import CpuLoad, Flag, Health, Memory, ParsedFlags, Temp, Throttling

logger = logging.getLogger(__name__)

# `vcgencmd get_throttled` prints e.g. `throttled=0x50005`.
_THROTTLED = re.compile(r"throttled=(0x[0-9a-fA-F]+)")

# Bit numbers of the "now" flags; the same condition "since boot" is 16 bits higher.
# https://www.raspberrypi.com/documentation/computers/os.html#get_throttled
_UNDERVOLTAGE = 0
_FREQ_CAPPED = 1
_THROTTLED_NOW = 2
_PAST_SHIFT = 16


class CpuTimes(NamedTuple):
    busy: int
    total: int


class CpuMeter:
    """CPU load between two readings of /proc/stat, as `top` shows it."""

    def __init__(self, sysroot: Path) -> None:
        self._path = sysroot / "proc/stat"
        self._last: CpuTimes | None = None

    def percent(self) -> int | None:
        """Percent busy since the previous call; None on the first call or on failure."""
        (last, now) = (self._last, read_cpu_times(self._path))
        self._last = now
        if last is None or now is None or now.total <= last.total:
            return None
        return round(100 * (now.busy - last.busy) / (now.total - last.total))


def read_cpu_times(path: Path) -> CpuTimes | None:
    """Jiffies spent busy and in total, from the aggregate `cpu` line of /proc/stat."""
    for line in (read_text(path) or "").splitlines():
        fields = line.split()
        if fields[:1] != ["cpu"]:
            continue
        try:
            # user nice system idle iowait irq softirq steal; guest time is already in user.
            ticks = [int(value) for value in fields[1:9]]
        except ValueError:
            return None
        if len(ticks) < 5:
            return None
        idle = ticks[3] + ticks[4]
        return CpuTimes(busy=sum(ticks) - idle, total=sum(ticks))
    return None


def read_temp(sysroot: Path) -> float | None:
    """SoC temperature in °C; the kernel reports millidegrees."""
    text = read_text(sysroot / "sys/class/thermal/thermal_zone0/temp")
    try:
        return int((text or "").strip()) / 1000
    except ValueError:
        return None


def read_memory(sysroot: Path) -> Memory:
    """Total and available RAM in bytes, and the percent in use."""
    values: dict[str, int] = {}
    for line in (read_text(sysroot / "proc/meminfo") or "").splitlines():
        (key, _, rest) = line.partition(":")
        parts = rest.split()
        if key in ("MemTotal", "MemAvailable") and parts and parts[0].isdigit():
            values[key] = int(parts[0]) * 1024  # the kernel's "kB" is KiB
    total = values.get("MemTotal")
    available = values.get("MemAvailable")
    if not total or available is None:
        return Memory()
    percent = round((total - available) / total * 100, 1)
    return Memory(percent=percent, total=total, available=available)


def parse_throttling(text: str, *, ignore_past: bool) -> Throttling | None:
    """`throttled=0x...` as flags; with `ignore_past` only current conditions count."""
    match = _THROTTLED.search(text)
    if match is None:
        return None
    raw = int(match.group(1), 16)

    def flag(bit: int) -> Flag:
        past = bool(raw & (1 << (bit + _PAST_SHIFT))) and not ignore_past
        return Flag(now=bool(raw & (1 << bit)), past=past)

    return Throttling(
        raw_flags=raw,
        parsed_flags=ParsedFlags(
            undervoltage=flag(_UNDERVOLTAGE),
            freq_capped=flag(_FREQ_CAPPED),
            throttled=flag(_THROTTLED_NOW),
        ),
        ignore_past=ignore_past,
    )


async def read_throttling(config: InfoHwConfig) -> Throttling | None:
    """Ask vcgencmd; None off a Pi or when it fails."""
    stdout = await run_command([*config.vcgencmd_cmd, "get_throttled"])
    if stdout is None:
        return None
    throttling = parse_throttling(stdout.decode(errors="replace"), ignore_past=config.ignore_past)
    if throttling is None:
        logger.warning("Unexpected vcgencmd output: %r", stdout[:100])
    return throttling


async def read_health(sysroot: Path, config: InfoHwConfig, cpu: CpuMeter) -> Health:
    return Health(
        temp=Temp(cpu=read_temp(sysroot)),
        cpu=CpuLoad(percent=cpu.percent()),
        mem=read_memory(sysroot),
        throttling=await read_throttling(config),
    )
