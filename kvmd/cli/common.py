# SPDX-License-Identifier: GPL-3.0-or-later
"""What kvmd's small tools share: where their file is, and how a failure is reported."""

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from kvmd.config.args import EX_CONFIG, add_config_args, load_from_args
from kvmd.config.schema import Config
from kvmd.errors import ConfigError


class CliError(Exception):
    """A user mistake or a refused operation: printed as one line, exit status 1."""


def make_parser(prog: str, description: str, what: str, key: str) -> argparse.ArgumentParser:
    """A parser with the config options and `--file` for the tool's one file."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    add_config_args(parser)
    parser.add_argument(
        "--file", type=Path, metavar="PATH", help=f"the {what} (default: {key} from the config)"
    )
    return parser


def file_from_args(args: argparse.Namespace, key: str, pick: Callable[[Config], str]) -> Path:
    """`--file` if given (no config needed, useful before /etc/kvmd exists), else the config's."""
    if args.file is not None:
        return Path(args.file)
    configured = pick(load_from_args(args))
    if not configured:
        raise ConfigError(f"{key} is empty; pass --file")
    return Path(configured)


def run_tool(
    prog: str,
    args: argparse.Namespace,
    locate: Callable[[argparse.Namespace], Path],
    dispatch: Callable[[argparse.Namespace, Path], None],
) -> int:
    """Run one command; every failure is one line on stderr, never a traceback."""
    try:
        path = locate(args)
    except ConfigError as exc:
        print(f"{prog}: config error: {exc}", file=sys.stderr)
        return EX_CONFIG
    try:
        dispatch(args, path)
    except CliError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{prog}: {exc.filename or path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, EOFError):
        # Ctrl-C or Ctrl-D at a prompt: nothing was written.
        print(f"\n{prog}: cancelled", file=sys.stderr)
        return 1
    return 0
