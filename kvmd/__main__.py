# SPDX-License-Identifier: GPL-3.0-or-later
"""`kvmd`: parse the command line, load the config, run the daemon."""

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from kvmd import __version__, app
from kvmd.auth.files import exposed_secrets
from kvmd.config.args import EX_CONFIG, add_config_args, load_from_args
from kvmd.config.dump import dump_config
from kvmd.config.schema import Config
from kvmd.errors import ConfigError
from kvmd.logs import LogRing, setup_logging
from kvmd.plugins.hid.layouts import Layout, LayoutError


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kvmd", description="IP-KVM daemon (PiKVM API)")
    parser.add_argument("--version", action="version", version=__version__)
    add_config_args(parser)
    dump = parser.add_mutually_exclusive_group()
    dump.add_argument("-m", "--dump-config", action="store_true", help="print the effective config")
    dump.add_argument(
        "-M", "--dump-config-changed", action="store_true", help="print what differs from defaults"
    )
    args = parser.parse_args(argv)
    ignored: list[str] = []
    try:
        config = load_from_args(args, ignored)
        _check(config)
    except ConfigError as exc:
        print(f"kvmd: config error: {exc}", file=sys.stderr)
        return EX_CONFIG
    if args.dump_config or args.dump_config_changed:
        print(dump_config(config, changed_only=args.dump_config_changed), end="")
        return 0
    ring = LogRing(config.kvmd.log_reader.buffer_lines)
    setup_logging(config.logging.level, ring)
    if ignored:
        logging.getLogger("kvmd.config").warning(
            "PiKVM settings this daemon does not use, ignored: %s", ", ".join(ignored)
        )
    try:
        asyncio.run(app.main(config, ring))
    except Exception:  # a failed loop arrives as an ExceptionGroup from the TaskGroup
        logging.getLogger("kvmd").exception("Fatal error, exiting")
        return 1
    return 0


def _check(config: Config) -> None:
    server = config.kvmd.server
    if not server.unix and not server.port:
        raise ConfigError("kvmd.server: neither unix nor port is set, nothing to listen on")
    auth = config.kvmd.auth
    # Checked only here, at start: the daemon refuses to run on secrets anyone could read.
    secrets = [auth.internal.file, auth.totp.secret.file, auth.files.keys]
    findings = exposed_secrets([Path(raw) for raw in secrets if raw])
    # Roles are no secret, but whoever may change them may make themselves admin.
    grants = [auth.files.users, auth.files.roles, auth.files.directory]
    findings += exposed_secrets([Path(raw) for raw in grants if raw], bits=0o002)
    if findings:
        raise ConfigError("; ".join(findings))
    _check_keymap(Path(config.kvmd.hid.keymap))


def _check_keymap(path: Path) -> None:
    # A broken layout would fail every print later; a missing one is only a missing
    # layout (/api/hid/print names it then), as on PiKVM.
    if not path.is_file():
        return
    try:
        Layout.load(path)
    except LayoutError as exc:
        # A line's error names the file by its name: give the whole path.
        text = str(exc)
        where = f"{path.parent}/{text}" if text.startswith(f"{path.name}:") else text
        raise ConfigError(f"kvmd.hid.keymap: {where}") from None


def run() -> None:
    sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":
    run()
