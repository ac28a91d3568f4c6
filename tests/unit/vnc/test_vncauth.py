# SPDX-License-Identifier: GPL-3.0-or-later
"""VNCAuth: the DES answer and PiKVM's vncpasswd file."""

import os

from kvmd.vnc.vncauth import VncPassword, VncPasswords, encrypt, match, parse_vncpasswd

CHALLENGE = bytes(range(16))
# What vncdotool's own DES (vncdotool.rfb.des_encrypt over reverse_bits of the key)
# answers this challenge with.
ADMIN_ANSWER = bytes.fromhex("bf9f5ba1fe6211a838130c8776399dca")


def test_the_answer_is_des_with_the_bit_reversed_password():
    assert encrypt("admin", CHALLENGE) == ADMIN_ANSWER
    # Only the first 8 bytes count, as every VNC client has it.
    assert encrypt("123456789", CHALLENGE) == encrypt("12345678", CHALLENGE)
    assert encrypt("12345678", CHALLENGE).hex() == "83dd2b4dbd04367f28578fdd5b142740"


def test_pikvm_vncpasswd_format():
    text = "# comment\n\nadmin\r\n  spaced  \nsecret -> viewer\n   # indented comment\n"
    assert parse_vncpasswd(text) == [
        VncPassword("admin"),
        VncPassword("  spaced  "),
        VncPassword("secret", "viewer"),
    ]


def test_match_finds_the_password_of_the_answer():
    passwords = [VncPassword("other"), VncPassword("admin", "admin")]
    assert match(passwords, CHALLENGE, ADMIN_ANSWER) == VncPassword("admin", "admin")
    assert match(passwords, CHALLENGE, bytes(16)) is None
    assert match([], CHALLENGE, ADMIN_ANSWER) is None


def test_the_file_is_read_again_when_it_changes(tmp_path, monkeypatch):
    path = tmp_path / "vncpasswd"
    path.write_text("admin\n")
    clock = [100.0]
    monkeypatch.setattr("kvmd.vnc.vncauth.time.monotonic", lambda: clock[0])
    passwords = VncPasswords(path)
    assert passwords.get() == [VncPassword("admin")]
    path.write_text("changed -> operator\n")
    os.utime(path, ns=(1, 1))
    assert passwords.get() == [VncPassword("admin")]  # within the second: the cached read
    clock[0] += 1.5
    assert passwords.get() == [VncPassword("changed", "operator")]
    path.unlink()
    clock[0] += 1.5
    assert passwords.get() == []
    assert VncPasswords(None).get() == []
