# SPDX-License-Identifier: GPL-3.0-or-later
"""Read the YAML files, deep-merge them, then validate once into `Config`."""

import re
from collections.abc import Iterable
from pathlib import Path

import msgspec
import yaml

from kvmd.config.pikvm import drop_ignored, rewrite_legacy
from kvmd.config.schema import Config
from kvmd.errors import ConfigError

KeyPath = tuple[str, ...]


class _Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false, so `no` or `on` stay strings (a keymap, a country)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for (tag, rx) in resolvers if tag != "tag:yaml.org,2002:bool"]
    for (first, resolvers) in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)
# YAML 1.2 octal (`0o660`, natural for file modes); PyYAML's int constructor already reads it.
_Loader.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^0o[0-7]+$"), ["0"])


def read_yaml(path: Path) -> object:
    """Parse one YAML file; an empty file is an empty mapping."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: can't read: {exc.strerror}") from exc
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 -- _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {_one_line(str(exc))}") from exc
    return {} if data is None else data


def config_files(main: Path, override_dir: Path | None, override: Path | None) -> list[Path]:
    """The files in merge order: main, every override.d file by name, then override.yaml."""
    files = [main]
    if override_dir is not None and override_dir.is_dir():
        files.extend(
            sorted(
                (p for p in override_dir.iterdir() if p.is_file() and not p.name.startswith(".")),
                key=lambda p: p.name,
            )
        )
    if override is not None and override.exists():
        files.append(override)
    return files


def load_config(
    main: Path,
    override_dir: Path | None = None,
    override: Path | None = None,
    ignored: list[str] | None = None,
) -> Config:
    """Load and validate the effective config, or raise one-line `ConfigError`."""
    return load_files(config_files(main, override_dir, override), ignored)


def load_files(files: Iterable[Path], ignored: list[str] | None = None) -> Config:
    """Merge and validate; PiKVM settings this daemon doesn't use go to `ignored`."""
    merged: dict[str, object] = {}
    origins: dict[KeyPath, Path] = {}
    for path in files:
        data = read_yaml(path)
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping")
        _merge(merged, data, path, (), origins)
    rewrite_legacy(merged)
    dropped = drop_ignored(merged)
    if ignored is not None:
        ignored.extend(dropped)
    try:
        return msgspec.convert(merged, Config)
    except msgspec.ValidationError as exc:
        raise _explain(exc, origins) from exc


def _merge(
    dest: dict[str, object],
    src: dict[object, object],
    path: Path,
    at: KeyPath,
    origins: dict[KeyPath, Path],
) -> None:
    """Mappings merge recursively; lists and scalars replace what was there."""
    for raw_key, value in src.items():
        key = str(raw_key)
        here = (*at, key)
        origins[here] = path
        old = dest.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            _merge(old, value, path, here, origins)
        elif isinstance(value, dict):
            fresh: dict[str, object] = {}
            _merge(fresh, value, path, here, origins)
            dest[key] = fresh
        else:
            dest[key] = value


_AT = re.compile(r"^(?P<reason>.*?)(?: - at `\$(?P<path>[^`]*)`)?$")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<key>[^`]*)`$")


def _explain(exc: msgspec.ValidationError, origins: dict[KeyPath, Path]) -> ConfigError:
    match = _AT.match(str(exc))
    if match is None:  # the pattern accepts any string; this keeps mypy and ruff content
        return ConfigError(str(exc))
    reason = match.group("reason")
    keys = [k for k in re.split(r"\.|\[(\d+)\]", match.group("path") or "") if k]
    unknown = _UNKNOWN.match(reason)
    if unknown:
        keys.append(unknown.group("key"))
        reason = "unknown key"
    keypath = tuple(keys)
    origin = next(
        (origins[keypath[:n]] for n in range(len(keypath), 0, -1) if keypath[:n] in origins),
        None,
    )
    where = f"{origin}: " if origin else ""
    return ConfigError(f"{where}{'.'.join(keypath) or '(top)'}: {reason}")


def _one_line(text: str) -> str:
    return " ".join(text.split())
