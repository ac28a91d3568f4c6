# SPDX-License-Identifier: GPL-3.0-or-later
"""Broken and hostile VNC clients: each is cut off with a line in the log, while a client
connected at the same time keeps its picture and its typing, and nothing raises."""

import socket
import struct
from collections.abc import Iterator

import pytest

from tests.e2e.vnc import (
    DESKTOP_SIZE,
    RAW,
    Rfb,
    VncRun,
    difference,
    log_lines,
    login,
    snapshot,
    vnc_run,
)
from tests.e2e.webui import wait_for

pytestmark = pytest.mark.timeout(60)

# What each client sends after its login, and what the daemon's log then says.
AFTER_LOGIN = {
    # A KeyEvent cut short, then the client half-closes.
    "truncated": (b"\x04\x01\x00", "gone"),
    "no encodings": (struct.pack(">BxH", 2, 0), "SetEncodings: 0 encodings"),
    "5000 encodings": (struct.pack(">BxH", 2, 5000), "SetEncodings: 5000 encodings"),
    "unknown message": (b"\x07", "unknown message type 7"),
    "cut text of 1 GiB": (struct.pack(">B3xI", 6, 1 << 30), "ClientCutText of 1073741824 bytes"),
    "QEMU sub-type 7": (b"\xff\x07" + bytes(10), "QEMU message sub-type 7"),
}


@pytest.fixture(scope="module")
def vnc() -> Iterator[VncRun]:
    with vnc_run("kvmd-vnc-bad-") as run:
        yield run
        assert not [line for line in log_lines(run.kvm) if "Traceback" in line]


@pytest.fixture
def witness(vnc: VncRun) -> Iterator[Rfb]:
    """A well-behaved client, connected all along."""
    rfb = login(vnc.port, RAW, DESKTOP_SIZE)
    rfb.frame()
    yield rfb
    rfb.close()


def check_witness(vnc: VncRun, witness: Rfb, text: str) -> None:
    kvm = vnc.kvm
    assert difference(witness.frame(), snapshot(kvm)) < 6
    witness.type(text + "\n")
    wait_for(f"the witness types {text!r}", lambda: f"\n{text}\n" in "\n" + kvm.screen())


def said(vnc: VncRun, what: str) -> int:
    return sum(what in line for line in log_lines(vnc.kvm))


@pytest.mark.parametrize("case", AFTER_LOGIN)
def test_a_broken_client_is_cut_off_alone(vnc: VncRun, witness: Rfb, case: str) -> None:
    (data, line) = AFTER_LOGIN[case]
    before = said(vnc, line)
    rfb = login(vnc.port)
    try:
        rfb.send(data)
        if case == "truncated":
            rfb.sock.shutdown(socket.SHUT_WR)  # the server reads EOF mid-message
        assert rfb.closed_by_server(), f"{case}: the server kept the connection"
    finally:
        rfb.close()
    wait_for(f"the log says {line!r}", lambda: said(vnc, line) > before)
    check_witness(vnc, witness, f"alive after {case}")


def test_garbage_instead_of_the_version_is_cut_off(vnc: VncRun, witness: Rfb) -> None:
    before = said(vnc, "unknown protocol version")
    rfb = Rfb(vnc.port)
    try:
        assert rfb.recv(12) == b"RFB 003.008\n"
        rfb.send(b"GET / HTTP/1.1\r\n\r\n")
        assert rfb.closed_by_server()
    finally:
        rfb.close()
    wait_for("the log says so", lambda: said(vnc, "unknown protocol version") > before)
    check_witness(vnc, witness, "alive after garbage")
