# SPDX-License-Identifier: GPL-3.0-or-later
"""`kvmd --dump-config`: the effective config as YAML, whole or only what differs from defaults."""

import msgspec
import yaml

from kvmd.config.schema import Config


def dump_config(config: Config, *, changed_only: bool = False) -> str:
    data = msgspec.to_builtins(config)
    if changed_only:
        data = _diff(data, msgspec.to_builtins(Config())) or {}
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def _diff(value: object, default: object) -> object:
    if isinstance(value, dict) and isinstance(default, dict):
        out = {}
        for key, sub in value.items():
            if key not in default:
                out[key] = sub
                continue
            changed = _diff(sub, default[key])
            if changed is not None:
                out[key] = changed
        return out or None
    return None if value == default else value
