# SPDX-License-Identifier: GPL-3.0-or-later
"""`kvmd-totp` run as a real process against a secret file in tmp_path."""

import base64
import os
import socket
import subprocess
import sys
from pathlib import Path

import pyotp
import pytest
import qrcode

from kvmd.auth.totp import read_secret, verify_code

REPO = Path(__file__).resolve().parents[3]
# What print_ascii(invert=True) draws for (top module, bottom module), 1 meaning dark.
HALF_BLOCKS = {"█": (0, 0), "▄": (1, 0), "▀": (0, 1), "\xa0": (1, 1)}


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "totp.secret"
    (tmp_path / "main.yaml").write_text(
        f"kvmd: {{auth: {{totp: {{secret: {{file: '{path}'}}}}}}}}\n"
    )
    return path


def kvmd_totp(
    tmp_path: Path, *args: str, encoding: str = "utf-8"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "kvmd.cli.totp",
            "--main-config",
            str(tmp_path / "main.yaml"),
            "--override-dir",
            str(tmp_path / "missing.d"),
            "--override-config",
            str(tmp_path / "missing.yaml"),
            *args,
        ],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env={**os.environ, "PYTHONIOENCODING": encoding},
        cwd=REPO,
        timeout=8,
        check=False,
    )


def uri_of(stdout: str) -> str:
    (uri,) = [line for line in stdout.splitlines() if line.startswith("otpauth://")]
    return uri


def qr_rows(stdout: str) -> list[list[int]]:
    """Turn the half-block drawing back into QR modules (two rows per text line)."""
    rows: list[list[int]] = []
    for line in stdout.split("\n"):
        if line and set(line) <= HALF_BLOCKS.keys():
            pairs = [HALF_BLOCKS[char] for char in line]
            rows += [[top for top, _ in pairs], [bottom for _, bottom in pairs]]
    return rows


def expected_qr(uri: str) -> list[list[int]]:
    qr = qrcode.QRCode(border=1)
    qr.add_data(uri)
    return [[int(module) for module in row] for row in qr.get_matrix()]


def test_init_writes_a_private_base32_secret_and_shows_it(
    tmp_path: Path, secret_file: Path
) -> None:
    result = kvmd_totp(tmp_path, "init", "--name", "admin", "--issuer", "my kvm")
    assert (result.returncode, result.stderr) == (0, "")
    secret = read_secret(secret_file)
    assert len(secret) == 32
    assert base64.b32decode(secret)  # valid base32, 20 random bytes
    assert secret_file.stat().st_mode & 0o777 == 0o600
    assert verify_code(secret, pyotp.TOTP(secret).now())
    uri = uri_of(result.stdout)
    assert uri.startswith("otpauth://totp/")
    assert f"secret={secret}" in uri
    assert uri == pyotp.TOTP(secret).provisioning_uri(name="admin", issuer_name="my kvm")
    assert "6-digit code" in result.stdout


def test_the_qr_code_encodes_the_uri(tmp_path: Path, secret_file: Path) -> None:
    result = kvmd_totp(tmp_path, "init")
    expected = expected_qr(uri_of(result.stdout))
    drawn = qr_rows(result.stdout)
    # The module count is odd, so the last text line's lower half is padding.
    assert drawn[: len(expected)] == expected


def test_a_terminal_that_cannot_draw_blocks_gets_the_uri_only(
    tmp_path: Path, secret_file: Path
) -> None:
    result = kvmd_totp(tmp_path, "init", encoding="ascii")
    assert result.returncode == 0
    assert uri_of(result.stdout)
    assert "can't draw the QR code" in result.stdout
    assert qr_rows(result.stdout) == []


def test_init_refuses_to_replace_a_secret_without_force(tmp_path: Path, secret_file: Path) -> None:
    assert kvmd_totp(tmp_path, "init").returncode == 0
    before = secret_file.read_text()
    result = kvmd_totp(tmp_path, "init")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "already holds a secret" in result.stderr
    assert result.stderr.count("\n") == 1
    assert secret_file.read_text() == before
    forced = kvmd_totp(tmp_path, "init", "--force")
    assert forced.returncode == 0
    assert read_secret(secret_file) not in ("", before.strip())


def test_init_over_an_empty_file_needs_no_force(tmp_path: Path, secret_file: Path) -> None:
    secret_file.write_text("\n")
    assert kvmd_totp(tmp_path, "init").returncode == 0
    assert len(read_secret(secret_file)) == 32


def test_show_prints_the_same_uri_with_the_host_name_by_default(
    tmp_path: Path, secret_file: Path
) -> None:
    init = kvmd_totp(tmp_path, "init")
    show = kvmd_totp(tmp_path, "show")
    assert (show.returncode, show.stderr) == (0, "")
    assert uri_of(show.stdout) == uri_of(init.stdout)
    secret = read_secret(secret_file)
    assert uri_of(show.stdout) == pyotp.TOTP(secret).provisioning_uri(
        name=socket.gethostname(), issuer_name="kvmd"
    )
    assert qr_rows(show.stdout) == qr_rows(init.stdout)
    assert "6-digit" not in show.stdout


def test_del_empties_the_secret_and_show_then_fails(tmp_path: Path, secret_file: Path) -> None:
    assert kvmd_totp(tmp_path, "init").returncode == 0
    result = kvmd_totp(tmp_path, "del")
    assert (result.returncode, result.stderr) == (0, "")
    assert "2FA is off" in result.stdout
    assert secret_file.read_text() == ""
    show = kvmd_totp(tmp_path, "show")
    assert show.returncode == 1
    assert "no secret" in show.stderr
    assert show.stderr.count("\n") == 1


def test_show_without_a_file_fails(tmp_path: Path, secret_file: Path) -> None:
    result = kvmd_totp(tmp_path, "show")
    assert result.returncode == 1
    assert f"no secret in {secret_file}" in result.stderr


def test_explicit_file_wins_over_the_config(tmp_path: Path, secret_file: Path) -> None:
    other = tmp_path / "other.secret"
    assert kvmd_totp(tmp_path, "--file", str(other), "init").returncode == 0
    assert len(read_secret(other)) == 32
    assert not secret_file.exists()


def test_an_unwritable_place_is_a_one_line_error(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir" / "secret"
    result = kvmd_totp(tmp_path, "--file", str(missing), "init")
    assert result.returncode == 1
    assert "No such file or directory" in result.stderr
    assert result.stderr.count("\n") == 1


def test_bad_config_exits_78_naming_the_key(tmp_path: Path) -> None:
    (tmp_path / "main.yaml").write_text("kvmd: {auth: {totp: {secret: {file: 5}}}}\n")
    result = kvmd_totp(tmp_path, "show")
    assert result.returncode == 78
    assert "kvmd.auth.totp.secret.file" in result.stderr
    assert result.stderr.count("\n") == 1


def test_2fa_disabled_in_the_config_exits_78(tmp_path: Path) -> None:
    (tmp_path / "main.yaml").write_text("kvmd: {auth: {totp: {secret: {file: ''}}}}\n")
    result = kvmd_totp(tmp_path, "init")
    assert result.returncode == 78
    assert "kvmd.auth.totp.secret.file is empty" in result.stderr


def test_a_new_secret_keeps_the_files_group_and_mode(tmp_path: Path, secret_file: Path) -> None:
    # As installed on a Pi: root:kvmd 0640, so that kvmd (not root) can read the secret.
    secret_file.write_text("")
    secret_file.chmod(0o640)
    os.chown(secret_file, 0, 65534)
    assert kvmd_totp(tmp_path, "init").returncode == 0
    assert len(read_secret(secret_file)) == 32
    st = secret_file.stat()
    assert (st.st_mode & 0o777, st.st_uid, st.st_gid) == (0o640, 0, 65534)
