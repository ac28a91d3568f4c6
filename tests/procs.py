# SPDX-License-Identifier: GPL-3.0-or-later
"""Looking at real processes from tests: alive or not, and found by their command line."""

import os
import shutil
from pathlib import Path

import pytest


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is dead for our purpose. It may also be reaped
    # between the two looks.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def pids_with(*markers: str) -> list[int]:
    """Processes whose command line contains every marker (a unique socket path, say)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes()
        except OSError:
            continue
        if all(marker.encode() in text for marker in markers):
            found.append(int(cmdline.parent.name))
    return found


def ustreamer_cmd(tmp_path: Path) -> list[str]:
    """The real ustreamer on a capture device that does not exist (it serves NO SIGNAL)."""
    ustreamer = shutil.which("ustreamer")
    if ustreamer is None:
        pytest.fail("ustreamer is missing: `make test` installs it with apt-get")
    return [
        ustreamer,
        f"--device={tmp_path}/no-video",
        "--persistent",
        "--quality={quality}",
        "--desired-fps={desired_fps}",
        "--unix={unix}",
        "--unix-rm",
        "--exit-on-parent-death",
        "--process-name-prefix={process_name_prefix}",
    ]
