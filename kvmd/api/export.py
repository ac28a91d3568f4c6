# SPDX-License-Identifier: GPL-3.0-or-later
"""/api/export/prometheus/metrics: the device's state as Prometheus gauges.

Names and order are PiKVM's (`pikvm_atx_*`, `pikvm_gpio_*`, `pikvm_hw_*`, `pikvm_fan_*`):
each metric is a `# TYPE` line and a value line, with a blank line between metrics. What
PiKVM lacks (the HDD LED, busy, HID/MSD/streamer online) follows at the end. Unlike
PiKVM, `pikvm_gpio_*_online_*` is the channel's real online flag, not a copy of its state.
Prometheus scrapes with Basic auth; `auth.unauth_paths` can open the route for a scraper
without credentials.
"""

import re
from collections.abc import Iterator

import msgspec
from aiohttp import web

from kvmd.auth.principal import Permission
from kvmd.server.auth import requires
from kvmd.server.keys import ATX, GPIO, HID, INFO, MSD, STREAMER

routes = web.RouteTableDef()

_NOT_WORD = re.compile(r"\W")


def _value(value: object) -> str | None:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int | float):
        return repr(value)
    return None


def _flatten(prefix: str, data: object) -> Iterator[tuple[str, str]]:
    """Leaves of a JSON-like tree as (name, value), keys sorted; nulls and text skipped."""
    if isinstance(data, dict):
        for key in sorted(data):
            # PiKVM drops the `parsed_flags` level: throttling_undervoltage_now.
            name = prefix if key == "parsed_flags" else f"{prefix}_{key}"
            yield from _flatten(name, data[key])
    elif (value := _value(data)) is not None:
        yield (prefix, value)


def metrics(request: web.Request) -> Iterator[tuple[str, str]]:
    atx = request.app[ATX].state()
    yield ("pikvm_atx_enabled", _value(atx.enabled) or "0")
    yield ("pikvm_atx_power", _value(atx.leds.power) or "0")
    channels = request.app[GPIO].state().state
    for mode, states in (("input", channels.inputs), ("output", channels.outputs)):
        for channel, state in states.items():
            if channel.startswith("__"):
                continue  # PiKVM's special channels stay out of exports
            name = _NOT_WORD.sub("_", channel)
            yield (f"pikvm_gpio_{mode}_online_{name}", str(int(state.online)))
            yield (f"pikvm_gpio_{mode}_state_{name}", str(int(state.state)))
    info = request.app[INFO].state()
    yield from _flatten("pikvm_hw", msgspec.to_builtins(info.health))
    yield ("pikvm_fan_monitored", str(int(info.fan.monitored)))
    if info.fan.state is not None:
        yield from _flatten("pikvm_fan_state", msgspec.json.decode(info.fan.state))
    yield ("pikvm_atx_hdd", str(int(atx.leds.hdd)))
    yield ("pikvm_atx_busy", str(int(atx.busy)))
    yield ("pikvm_hid_online", str(int(request.app[HID].state().online)))
    yield ("pikvm_msd_online", str(int(request.app[MSD].state().online)))
    yield ("pikvm_streamer_online", str(int(_streamer_online(request))))


def _streamer_online(request: web.Request) -> bool:
    raw = request.app[STREAMER].state().streamer
    if raw is None:
        return False
    state = msgspec.json.decode(raw)
    source = state.get("source") if isinstance(state, dict) else None
    return bool(isinstance(source, dict) and source.get("online"))


@routes.get("/export/prometheus/metrics")
@requires(Permission.STATE)
async def prometheus_metrics(request: web.Request) -> web.Response:
    blocks = [f"# TYPE {name} gauge\n{name} {value}" for name, value in metrics(request)]
    text = "\n\n".join(blocks) + "\n"
    return web.Response(text=text, content_type="text/plain", charset="utf-8")
