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
        "media",
        "nbd",
        "nginx",
        "oled",
        "otgnet",
        "pst",
        "vnc",
        "watchdog",
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
        "kvmd.auth.internal.force_users",
        "kvmd.auth.external",
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
    )
)


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
