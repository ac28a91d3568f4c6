# SPDX-License-Identifier: GPL-3.0-or-later
"""Command-line options that locate the config files, shared by kvmd and its tools."""

import argparse
from pathlib import Path

from kvmd.config.load import load_config
from kvmd.config.schema import Config

EX_CONFIG = 78  # sysexits.h: configuration error


def add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--main-config",
        type=Path,
        default=Path("/etc/kvmd/main.yaml"),
        metavar="FILE",
        help="the platform's main config (default: %(default)s)",
    )
    parser.add_argument(
        "--override-dir",
        type=Path,
        default=Path("/etc/kvmd/override.d"),
        metavar="DIR",
        help="every file here is merged in name order (default: %(default)s)",
    )
    parser.add_argument(
        "--override-config",
        type=Path,
        default=Path("/etc/kvmd/override.yaml"),
        metavar="FILE",
        help="merged last (default: %(default)s)",
    )


def load_from_args(args: argparse.Namespace, ignored: list[str] | None = None) -> Config:
    """Load the config named by `add_config_args` options; raises `ConfigError`."""
    return load_config(args.main_config, args.override_dir, args.override_config, ignored)
