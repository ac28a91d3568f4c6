# SPDX-License-Identifier: GPL-3.0-or-later
"""`kvmd-otg` against a temporary directory standing in for configfs."""

import json
import pwd
import subprocess
import sys
from pathlib import Path

import pytest

from kvmd.hw.gadget import KEYBOARD_DESCRIPTOR, mouse_descriptor

REPO = Path(__file__).resolve().parents[3]


def report_sizes(descriptor: bytes) -> dict[str, int]:
    """Input and output report sizes in bytes, by walking the descriptor's main items."""
    (size, count, pos) = (0, 0, 0)
    bits = {"input": 0, "output": 0}
    while pos < len(descriptor):
        prefix = descriptor[pos]
        length = {0: 0, 1: 1, 2: 2, 3: 4}[prefix & 0x03]
        value = int.from_bytes(descriptor[pos + 1 : pos + 1 + length], "little")
        tag = prefix & 0xFC
        if tag == 0x74:
            size = value
        elif tag == 0x94:
            count = value
        elif tag == 0x80:
            bits["input"] += size * count
        elif tag == 0x90:
            bits["output"] += size * count
        pos += 1 + length
    assert all(b % 8 == 0 for b in bits.values())
    return {name: b // 8 for name, b in bits.items()}


def test_descriptors_describe_the_reports_the_backend_writes():
    assert report_sizes(KEYBOARD_DESCRIPTOR) == {"input": 8, "output": 1}
    assert report_sizes(mouse_descriptor(absolute=True, horizontal_wheel=True))["input"] == 7
    assert report_sizes(mouse_descriptor(absolute=True, horizontal_wheel=False))["input"] == 6
    assert report_sizes(mouse_descriptor(absolute=False, horizontal_wheel=True))["input"] == 5
    assert report_sizes(mouse_descriptor(absolute=False, horizontal_wheel=False))["input"] == 4
    assert KEYBOARD_DESCRIPTOR.count(0xC0) == 1  # collections balanced


@pytest.fixture
def configfs(tmp_path: Path) -> Path:
    (tmp_path / "udc" / "fe980000.usb").mkdir(parents=True)
    (tmp_path / "configfs").mkdir()
    config = {"otg": {"configfs": str(tmp_path / "configfs"), "udc_class": str(tmp_path / "udc")}}
    (tmp_path / "main.yaml").write_text(json.dumps(config))
    return tmp_path / "configfs"


def kvmd_otg(configfs: Path, command: str) -> subprocess.CompletedProcess[str]:
    folder = configfs.parent
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "kvmd.cli.otg",
            *("--main-config", str(folder / "main.yaml")),
            *("--override-dir", str(folder / "none"), "--override-config", str(folder / "no.yaml")),
            command,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def tree(root: Path) -> dict[str, str]:
    out = {}
    for path in sorted(root.rglob("*")):
        name = str(path.relative_to(root))
        if path.is_symlink():
            out[name] = "-> " + str(path.readlink().relative_to(root))  # within the gadget
        elif path.is_file():
            data = path.read_bytes()
            out[name] = data.hex(" ") if name.endswith("report_desc") else data.decode()
    return out


def test_start_builds_the_gadget_idempotently_and_stop_removes_it(configfs):
    done = kvmd_otg(configfs, "start")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("kvmd-otg: started: ")
    gadget = configfs / "usb_gadget" / "kvmd"
    files = tree(gadget)
    assert files["UDC"] == "fe980000.usb\n"
    assert (files["idVendor"], files["idProduct"]) == ("0x1d6b\n", "0x0104\n")
    assert files["strings/0x409/product"] == "Composite KVM Device\n"
    assert files["configs/c.1/MaxPower"] == "250\n"
    for number, function in enumerate(["hid.usb0", "hid.usb1", "hid.usb2"]):
        assert files[f"configs/c.1/{function}"] == f"-> functions/{function}"
        assert files[f"functions/{function}/report_length"] == ["8\n", "7\n", "5\n"][number]
        assert files[f"functions/{function}/protocol"] == ["1\n", "2\n", "2\n"][number]
    assert files["functions/hid.usb0/report_desc"] == KEYBOARD_DESCRIPTOR.hex(" ")
    lun = "functions/mass_storage.usb0/lun.0"
    assert (files[f"{lun}/cdrom"], files[f"{lun}/ro"], files[f"{lun}/file"]) == ("1\n", "1\n", "")
    assert files["configs/c.1/mass_storage.usb0"] == "-> functions/mass_storage.usb0"

    again = kvmd_otg(configfs, "start")
    assert (again.returncode, again.stdout.split(":")[1]) == (0, " already running")
    assert tree(gadget) == files

    (gadget / "UDC").write_text("\n")  # unbound by someone: start binds it afresh
    assert kvmd_otg(configfs, "start").stdout.startswith("kvmd-otg: started")
    assert tree(gadget) == files

    stopped = kvmd_otg(configfs, "stop")
    assert (stopped.returncode, stopped.stdout.split(":")[1]) == (0, " stopped")
    assert list((configfs / "usb_gadget").iterdir()) == []
    assert kvmd_otg(configfs, "stop").stdout.split(":")[1] == " not running"


def test_no_device_controller_is_one_line_error(configfs):
    (configfs.parent / "udc" / "fe980000.usb").rmdir()
    done = kvmd_otg(configfs, "start")
    assert done.returncode == 1
    assert done.stderr == f"kvmd-otg: no USB device controller in {configfs.parent / 'udc'}\n"


def test_bad_config_exits_78(configfs):
    (configfs.parent / "main.yaml").write_text("otg: {gadget: 'a/b'}\n")
    done = kvmd_otg(configfs, "start")
    assert done.returncode == 78
    assert "otg.gadget" in done.stderr


def test_the_drive_is_handed_to_kvmds_user(configfs):
    main = configfs.parent / "main.yaml"
    config = json.loads(main.read_text())
    config["otg"]["user"] = "nobody"
    main.write_text(json.dumps(config))
    assert kvmd_otg(configfs, "start").returncode == 0
    lun = configfs / "usb_gadget" / "kvmd" / "functions" / "mass_storage.usb0" / "lun.0"
    nobody = pwd.getpwnam("nobody")
    owners = {p.name: (p.stat().st_uid, p.stat().st_gid) for p in sorted(lun.iterdir())}
    mine = (nobody.pw_uid, nobody.pw_gid)
    assert owners == {
        "cdrom": mine,
        "file": mine,
        "nofua": (0, 0),
        "removable": (0, 0),
        "ro": mine,
    }
    assert kvmd_otg(configfs, "stop").returncode == 0

    config["otg"]["user"] = "no-such-user"
    main.write_text(json.dumps(config))
    done = kvmd_otg(configfs, "start")
    assert (done.returncode, done.stderr) == (
        1,
        "kvmd-otg: no user 'no-such-user' to hand the drive to\n",
    )
