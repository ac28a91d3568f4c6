# SPDX-License-Identifier: GPL-3.0-or-later
"""PiKVM's settings that this daemon does not use, so that an owner's PiKVM files load.

PiKVM's daemons share one config tree and ignore what they don't know. This daemon
refuses unknown keys (a typo must not pass silently), except the ones PiKVM has: other
daemons' sections, and `kvmd`/`otg` settings of features this daemon lacks or does its
own way. They are dropped before validation and named in a warning at start.
"""

# A path stands for its whole subtree.
IGNORED: frozenset[tuple[str, ...]] = frozenset(
    tuple(path.split("."))
    for path in (
        # Other PiKVM daemons' sections.
        "clients",
        "ipmi",
        "janus",
        # kvmd-media's own socket: /api/media is served by kvmd itself.
        "media.server",
        "nbd",
        "nginx",
        "oled",
        "otgnet",
        "pst",
        "watchdog",
        # kvmd-vnc's frame sources: frames come from the streamer's HTTP stream here.
        "vnc.memsink",
        # PiKVM's logging is a logging.dictConfig; this daemon has `logging.level`.
        "logging.version",
        "logging.disable_existing_loggers",
        "logging.incremental",
        "logging.formatters",
        "logging.filters",
        "logging.handlers",
        "logging.root",
        "logging.loggers",
        # kvmd settings of features this daemon does not have (yet), or has its own way.
        "kvmd.server.access_log_format",
        "kvmd.auth.usc",
        "kvmd.auth.extend",
        "kvmd.info.fan.daemon",
        # Metrics always need credentials with `state` here (SECURITY.md).
        "kvmd.prometheus",
        "kvmd.hid.ignore_keys",
        "kvmd.msd.read_chunk_size",
        "kvmd.msd.write_chunk_size",
        "kvmd.msd.sync_chunk_size",
        "kvmd.ocr.tessdata",
        "kvmd.snapshot",
        "kvmd.gpio.state_poll",
        "kvmd.switch",
        # kvmd-otg's gadget settings this daemon's kvmd-otg does not have.
        "otg.usb_version",
        "otg.remote_wakeup",
        "otg.devices",
        "otg.config",
        "otg.meta",
        "otg.init_delay",
        # The names `otg.devices.*` had before.
        "otg.msd",
        "otg.acm",
        "otg.drives",
    )
)


def rewrite_legacy(merged: dict[str, object]) -> None:
    """Older PiKVM spellings, in place, as PiKVM itself reads them.

    A number for `streamer.desired_fps` and a string for `streamer.resolution` are their
    defaults; `max_fps` and `available_resolutions` moved into them; `kvmd.wol` became
    the GPIO channel `__wol__` (a Wake-on-LAN output).
    """
    kvmd = merged.get("kvmd")
    if not isinstance(kvmd, dict):
        return
    streamer = kvmd.get("streamer")
    if isinstance(streamer, dict):
        _into(streamer, "desired_fps", "default")
        _move(streamer, "max_fps", "desired_fps", "max")
        _into(streamer, "resolution", "default")
        _move(streamer, "available_resolutions", "resolution", "available")
    wol = kvmd.pop("wol", None)
    if isinstance(wol, dict) and wol.get("mac"):
        gpio = kvmd.setdefault("gpio", {})
        if isinstance(gpio, dict):
            driver = {"type": "wol", **{k: v for (k, v) in wol.items() if k in _WOL}}
            gpio.setdefault("drivers", {}).setdefault("__wol__", driver)
            channel = {"driver": "__wol__", "pin": 0, "mode": "output", "switch": False}
            gpio.setdefault("scheme", {}).setdefault("__wol__", channel)


_WOL = ("ip", "port", "mac")


def _into(section: dict[str, object], key: str, inner: str) -> None:
    value = section.get(key)
    if value is not None and not isinstance(value, dict):
        section[key] = {inner: value}


def _move(section: dict[str, object], old: str, key: str, inner: str) -> None:
    if old in section:
        target = section.setdefault(key, {})
        value = section.pop(old)
        if isinstance(target, dict):
            target.setdefault(inner, value)


def drop_ignored(merged: dict[str, object]) -> list[str]:
    """Remove PiKVM's unused settings from the merged tree; the dotted paths removed."""
    dropped = []
    for path in sorted(IGNORED):
        node: object = merged
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and path[-1] in node:
            del node[path[-1]]
            dropped.append(".".join(path))
    return dropped
