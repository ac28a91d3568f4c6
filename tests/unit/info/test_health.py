# SPDX-License-Identifier: GPL-3.0-or-later
from pathlib import Path

import pytest

from kvmd.config.schema import InfoHwConfig
from kvmd.info.health import (
    CpuMeter,
    parse_throttling,
    read_health,
    read_memory,
    read_temp,
    read_throttling,
)
from kvmd.info.state import CpuLoad, Flag, Health, Memory, ParsedFlags, Temp, Throttling


def write(path: Path, text: str, *, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def vcgencmd(tmp_path: Path, output: str, *, status: int = 0) -> list[str]:
    """A stand-in vcgencmd that answers only `get_throttled`, like the real one."""
    script = write(
        tmp_path / "vcgencmd",
        f'#!/bin/sh\n[ "$1" = get_throttled ] || exit 2\nprintf "{output}"\nexit {status}\n',
        mode=0o755,
    )
    return [str(script)]


TEMP = "sys/class/thermal/thermal_zone0/temp"


@pytest.mark.parametrize(("content", "cpu"), [("36511\n", 36.511), ("-5000", -5.0), ("0", 0.0)])
def test_temp_is_millidegrees(tmp_path: Path, content: str, cpu: float) -> None:
    write(tmp_path / TEMP, content)
    assert read_temp(tmp_path) == cpu


@pytest.mark.parametrize("content", [None, "", "hot\n", "36.5"])
def test_bad_or_missing_temp_is_none(tmp_path: Path, content: str | None) -> None:
    if content is not None:
        write(tmp_path / TEMP, content)
    assert read_temp(tmp_path) is None


def test_memory_from_meminfo(tmp_path: Path) -> None:
    write(
        tmp_path / "proc/meminfo",
        "MemTotal:        4000000 kB\nMemFree:          500000 kB\nMemAvailable:    1000000 kB\n",
    )
    assert read_memory(tmp_path) == Memory(
        percent=75.0, total=4_096_000_000, available=1_024_000_000
    )


def test_memory_percent_has_one_decimal(tmp_path: Path) -> None:
    write(tmp_path / "proc/meminfo", "MemTotal: 3 kB\nMemAvailable: 2 kB\n")
    assert read_memory(tmp_path).percent == 33.3


@pytest.mark.parametrize(
    "content", [None, "", "MemTotal: 0 kB\nMemAvailable: 0 kB\n", "MemFree: 5 kB\n"]
)
def test_bad_or_missing_memory_is_none(tmp_path: Path, content: str | None) -> None:
    if content is not None:
        write(tmp_path / "proc/meminfo", content)
    assert read_memory(tmp_path) == Memory(percent=None, total=None, available=None)


def stat(user: int, system: int, idle: int, iowait: int) -> str:
    return (
        f"cpu  {user} 0 {system} {idle} {iowait} 0 0 0 0 0\n"
        f"cpu0 {user} 0 {system} {idle} {iowait} 0 0 0 0 0\n"
        "ctxt 12345\n"
    )


def test_cpu_percent_is_busy_share_since_the_previous_reading(tmp_path: Path) -> None:
    path = write(tmp_path / "proc/stat", stat(100, 50, 800, 50))
    meter = CpuMeter(tmp_path)
    assert meter.percent() is None  # nothing to compare with yet
    # +20 user, +10 system, +60 idle, +10 iowait: 30 of 100 jiffies busy.
    write(path, stat(120, 60, 860, 60))
    assert meter.percent() == 30
    # No time passed (a static fake file): no answer rather than a division by zero.
    assert meter.percent() is None
    write(path, stat(220, 60, 860, 60))
    assert meter.percent() == 100


@pytest.mark.parametrize("content", [None, "", "cpu  a b c d e\n", "cpu 1 2\n", "intr 1 2 3\n"])
def test_bad_or_missing_stat_is_none(tmp_path: Path, content: str | None) -> None:
    if content is not None:
        write(tmp_path / "proc/stat", content)
    meter = CpuMeter(tmp_path)
    assert meter.percent() is None
    assert meter.percent() is None


def test_throttling_bits() -> None:
    assert parse_throttling("throttled=0x50005\n", ignore_past=False) == Throttling(
        raw_flags=0x50005,
        parsed_flags=ParsedFlags(
            undervoltage=Flag(now=True, past=True),
            freq_capped=Flag(now=False, past=False),
            throttled=Flag(now=True, past=True),
        ),
        ignore_past=False,
    )


def test_throttling_past_only() -> None:
    throttling = parse_throttling("throttled=0x20000", ignore_past=False)
    assert throttling is not None
    assert throttling.parsed_flags == ParsedFlags(
        undervoltage=Flag(now=False, past=False),
        freq_capped=Flag(now=False, past=True),
        throttled=Flag(now=False, past=False),
    )


def test_throttling_ignore_past_masks_past_bits() -> None:
    assert parse_throttling("throttled=0x50005", ignore_past=True) == Throttling(
        raw_flags=0x50005,
        parsed_flags=ParsedFlags(
            undervoltage=Flag(now=True, past=False),
            freq_capped=Flag(now=False, past=False),
            throttled=Flag(now=True, past=False),
        ),
        ignore_past=True,
    )


@pytest.mark.parametrize("text", ["", "throttled=", "throttled=0xZZ", "error=1 error_msg=x"])
def test_throttling_garbage_is_none(text: str) -> None:
    assert parse_throttling(text, ignore_past=False) is None


async def test_throttling_from_a_real_command(tmp_path: Path) -> None:
    cmd = vcgencmd(tmp_path, "throttled=0x50005\\n")
    throttling = await read_throttling(InfoHwConfig(vcgencmd_cmd=cmd))
    assert throttling == parse_throttling("throttled=0x50005", ignore_past=False)
    masked = await read_throttling(InfoHwConfig(vcgencmd_cmd=cmd, ignore_past=True))
    assert masked is not None
    assert masked.parsed_flags.undervoltage == Flag(now=True, past=False)


async def test_throttling_command_with_arguments(tmp_path: Path) -> None:
    # vcgencmd_cmd is argv, e.g. through sudo or an interpreter.
    (script,) = vcgencmd(tmp_path, "throttled=0x4\\n")
    throttling = await read_throttling(InfoHwConfig(vcgencmd_cmd=["/bin/sh", script]))
    assert throttling is not None
    assert throttling.parsed_flags.throttled == Flag(now=True, past=False)


@pytest.mark.parametrize(("output", "status"), [("throttled=0x0\\n", 1), ("garbage\\n", 0)])
async def test_failing_or_garbled_command_is_none(tmp_path: Path, output: str, status: int) -> None:
    cmd = vcgencmd(tmp_path, output, status=status)
    assert await read_throttling(InfoHwConfig(vcgencmd_cmd=cmd)) is None


async def test_missing_command_is_none(tmp_path: Path) -> None:
    config = InfoHwConfig(vcgencmd_cmd=[str(tmp_path / "vcgencmd")])
    assert await read_throttling(config) is None
    assert await read_throttling(InfoHwConfig(vcgencmd_cmd=[])) is None


async def test_health_of_a_fake_board(tmp_path: Path) -> None:
    write(tmp_path / TEMP, "48312\n")
    write(tmp_path / "proc/meminfo", "MemTotal: 1000 kB\nMemAvailable: 250 kB\n")
    write(tmp_path / "proc/stat", stat(1, 1, 1, 1))
    cmd = vcgencmd(tmp_path, "throttled=0x0\\n")
    health = await read_health(tmp_path, InfoHwConfig(vcgencmd_cmd=cmd), CpuMeter(tmp_path))
    assert health == Health(
        temp=Temp(cpu=48.312),
        cpu=CpuLoad(percent=None),
        mem=Memory(percent=75.0, total=1_024_000, available=256_000),
        throttling=parse_throttling("throttled=0x0", ignore_past=False),
    )


async def test_health_of_an_empty_sysroot_is_all_none(tmp_path: Path) -> None:
    config = InfoHwConfig(vcgencmd_cmd=[str(tmp_path / "none")])
    assert await read_health(tmp_path, config, CpuMeter(tmp_path)) == Health(
        temp=Temp(cpu=None), cpu=CpuLoad(percent=None), mem=Memory(), throttling=None
    )
