# SPDX-License-Identifier: GPL-3.0-or-later
"""Where /api/info's facts come from: small files, YAML, a few commands and kvmd-fan.

Every collector answers `None` (or an empty value) for a missing or garbled source and
never raises, because a PiKVM client treats `null` as "not available here" while an
error would hide every other category. /proc and /sys are read under an injected
`sysroot`, so that a fake tree (testenv/fakes) stands in for them off a Pi.
"""

import asyncio
import contextlib
import logging
import os
import re
import socket
from pathlib import Path

import aiohttp
import msgspec
import yaml

from kvmd.config.schema import InfoFanConfig
from kvmd.info.state import FanInfo, Json, Kernel, Node, Platform

logger = logging.getLogger(__name__)

# systemctl answers in milliseconds; vcgencmd talks to the VideoCore mailbox, which can
# stall for a while when the firmware is busy. Neither may hold up /api/info for long.
COMMAND_TIMEOUT = 5.0

_PLATFORM_KEYS = {"PIKVM_MODEL": "model", "PIKVM_VIDEO": "video", "PIKVM_BOARD": "board"}


class UptimeParts(msgspec.Struct, frozen=True):
    days: int
    hours: int
    minutes: int
    seconds: int


class Uptime(msgspec.Struct, frozen=True):
    total: int
    parts: UptimeParts


class _FanReply(msgspec.Struct):
    # kvmd-fan answers with the usual envelope; only `result` is passed on, verbatim.
    result: msgspec.Raw


async def run_command(argv: list[str]) -> bytes | None:
    """Run `argv` (no shell); its stdout if it exits 0 within COMMAND_TIMEOUT, else None."""
    if not argv:
        return None
    try:
        proc = await asyncio.create_subprocess_exec(
            argv[0],
            *argv[1:],
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except OSError as exc:
        logger.debug("Can't run %s: %s", argv, exc)
        return None
    try:
        async with asyncio.timeout(COMMAND_TIMEOUT):
            (stdout, _) = await proc.communicate()
    except TimeoutError:
        logger.warning("%s did not finish in %.1f s", argv, COMMAND_TIMEOUT)
        return None
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    return stdout if proc.returncode == 0 else None


def read_text(path: Path) -> str | None:
    """The whole of a small file, or None when it can't be read."""
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def _read_device_tree(path: Path) -> str | None:
    # Device-tree strings end with a NUL terminator.
    text = read_text(path)
    if text is None:
        return None
    return text.strip("\x00 \t\r\n") or None


def read_platform(sysroot: Path, platform_file: Path) -> Platform:
    """The board: device-tree model and serial, and PiKVM's platform file."""
    serial = _read_device_tree(sysroot / "proc/device-tree/serial-number")
    return Platform(
        type="rpi",
        base=_read_device_tree(sysroot / "proc/device-tree/model"),
        serial=(serial.upper() if serial else None),
        **_read_platform_file(platform_file),
    )


def _read_platform_file(path: Path) -> dict[str, str | None]:
    fields: dict[str, str | None] = dict.fromkeys(_PLATFORM_KEYS.values())
    text = read_text(path)
    if text is None:
        return fields
    for line in text.splitlines():
        (key, sep, value) = line.partition("=")
        if sep and key.strip() in _PLATFORM_KEYS:
            fields[_PLATFORM_KEYS[key.strip()]] = value.strip()
    return fields


def read_kernel() -> Kernel:
    uname = os.uname()
    return Kernel(
        system=uname.sysname,
        release=uname.release,
        version=uname.version,
        machine=uname.machine,
    )


def read_node() -> Node:
    return Node(host=socket.gethostname())


def read_uptime(sysroot: Path) -> Uptime:
    """Seconds since boot from /proc/uptime; zero when it can't be read.

    Zero rather than None because PiKVM's `uptime` category has no null form.
    """
    text = read_text(sysroot / "proc/uptime") or ""
    try:
        total = int(float(text.split()[0]))
    except (IndexError, ValueError):
        total = 0
    (minutes, seconds) = divmod(total, 60)
    (hours, minutes) = divmod(minutes, 60)
    (days, hours) = divmod(hours, 24)
    return Uptime(
        total=total,
        parts=UptimeParts(days=days, hours=hours, minutes=minutes, seconds=seconds),
    )


def read_meta(path: Path) -> Json:
    """meta.yaml with `server.host: "@auto"` resolved; None if it isn't a YAML mapping."""
    host = socket.gethostname()
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {"server": {"host": host}, "kvm": {}}
    except OSError as exc:
        logger.warning("Can't read meta %s: %s", path, exc)
        return None
    try:
        data: object = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        logger.warning("Can't parse meta %s: %s", path, exc)
        return None
    if not isinstance(data, dict):
        logger.warning("Meta %s is not a mapping", path)
        return None
    server = data.get("server")
    if isinstance(server, dict) and server.get("host") == "@auto":
        server["host"] = host
    return data


def extra_key(name: str) -> str:
    """The key of an extra in /api/info: `janus-static` -> `janus_static`, `a--b` -> `a_b`."""
    return re.sub(r"[^A-Za-z0-9_]+", "_", name)


async def read_extras(path: Path, *, systemctl: str = "systemctl") -> Json:
    """Installed extras by key: each manifest plus whether its daemon runs.

    None when the folder can't be read. A broken manifest leaves out only its own extra,
    as PiKVM does: its web UI reads `extras.webterm` and fails on a null category.
    """
    try:
        manifests = _read_manifests(path)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        logger.warning("Can't read extras from %s: %s", path, exc)
        return None
    await asyncio.gather(*(_add_daemon_state(m, systemctl) for m in manifests.values()))
    return dict(manifests)


def _read_manifests(path: Path) -> dict[str, dict[str, Json]]:
    manifests = {}
    for folder in sorted(path.iterdir()):
        manifest = folder / "manifest.yaml"
        if folder.name.startswith(".") or not manifest.is_file():
            continue
        try:
            manifests[extra_key(folder.name)] = _read_manifest(manifest)
        except (OSError, yaml.YAMLError, TypeError, UnicodeDecodeError) as exc:
            logger.warning("Can't read the extra %s: %s", folder.name, exc)
    return manifests


def _read_manifest(path: Path) -> dict[str, Json]:
    data: object = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise TypeError(f"{path} is not a mapping")
    if isinstance(data.get("port"), str):
        # PiKVM names another daemon's config key here (`vnc/server/port`); this daemon
        # doesn't load those configs, and PiKVM itself reports 0 when it can't resolve one.
        data["port"] = 0
    return data


async def _add_daemon_state(manifest: dict[str, Json], systemctl: str) -> None:
    daemon = manifest.get("daemon")
    if not isinstance(daemon, str):
        return
    (enabled, started) = await asyncio.gather(
        run_command([systemctl, "is-enabled", daemon]),
        run_command([systemctl, "is-active", daemon]),
    )
    manifest["enabled"] = enabled is not None
    manifest["started"] = started is not None


async def read_fan(config: InfoFanConfig) -> FanInfo:
    """kvmd-fan's own /state when it is configured; state None when it doesn't answer."""
    if not config.unix:
        return FanInfo(monitored=False, state=None)
    try:
        async with (
            aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(path=config.unix),
                timeout=aiohttp.ClientTimeout(total=config.timeout),
            ) as session,
            session.get("http://localhost/state") as response,
        ):
            response.raise_for_status()
            body = await response.read()
        state = msgspec.json.decode(body, type=_FanReply).result
    except (aiohttp.ClientError, TimeoutError, msgspec.DecodeError) as exc:
        logger.warning("Can't get kvmd-fan state from %s: %r", config.unix, exc)
        return FanInfo(monitored=True, state=None)
    return FanInfo(monitored=True, state=state)
