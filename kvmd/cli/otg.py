# SPDX-License-Identifier: GPL-3.0-or-later
"""`kvmd-otg start|stop`: create the USB gadget in configfs and bind it, or take it away.

Both are idempotent: starting a gadget that is bound as configured changes nothing, and
stopping one that is not there is not an error. Run once at boot, before kvmd.
"""

import argparse
import sys

from kvmd.cli.common import CliError
from kvmd.config.args import EX_CONFIG, add_config_args, load_from_args
from kvmd.errors import ConfigError
from kvmd.hw.gadget import Gadget, GadgetError

_PROG = "kvmd-otg"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=_PROG, description="Manage kvmd's USB gadget")
    add_config_args(parser)
    parser.add_argument("command", choices=["start", "stop"])
    args = parser.parse_args(argv)
    try:
        gadget = Gadget(load_from_args(args).otg)
    except ConfigError as exc:
        print(f"{_PROG}: config error: {exc}", file=sys.stderr)
        return EX_CONFIG
    try:
        if args.command == "start":
            changed = gadget.start()
            print(f"{_PROG}: {'started' if changed else 'already running'}: {gadget.path}")
        else:
            changed = gadget.stop()
            print(f"{_PROG}: {'stopped' if changed else 'not running'}: {gadget.path}")
    except (GadgetError, CliError) as exc:
        print(f"{_PROG}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{_PROG}: {exc.filename or gadget.path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
