# SPDX-License-Identifier: GPL-3.0-or-later
import grp
import subprocess

from kvmd.cli.gencert import main


def _x509(path, *fields):
    return subprocess.run(
        ["openssl", "x509", "-in", str(path), "-noout", *fields],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_a_pair_for_the_name_with_a_private_key(tmp_path, capsys):
    folder = tmp_path / "ssl"
    assert main(["--dir", str(folder), "--name", "pikvm.lan"]) == 0
    assert (folder / "server.key").stat().st_mode & 0o777 == 0o600
    assert (folder / "server.crt").stat().st_mode & 0o777 == 0o644
    assert _x509(folder / "server.crt", "-subject").strip() == "subject=CN = pikvm.lan"
    assert "DNS:pikvm.lan, DNS:localhost, IP Address:127.0.0.1" in _x509(
        folder / "server.crt", "-ext", "subjectAltName"
    )
    # The key is the certificate's.
    public = subprocess.run(
        ["openssl", "pkey", "-in", str(folder / "server.key"), "-pubout"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert public == _x509(folder / "server.crt", "-pubkey")
    assert "wrote" in capsys.readouterr().out
    # Nothing else is left in the folder (the temporary one is gone).
    assert sorted(p.name for p in folder.iterdir()) == ["server.crt", "server.key"]


def test_an_existing_pair_is_kept_unless_forced(tmp_path):
    folder = tmp_path / "ssl"
    assert main(["--dir", str(folder), "--name", "one"]) == 0
    mine = (folder / "server.crt").read_bytes()
    assert main(["--dir", str(folder), "--name", "two"]) == 0
    assert (folder / "server.crt").read_bytes() == mine
    assert main(["--dir", str(folder), "--name", "two", "--force"]) == 0
    assert "CN = two" in _x509(folder / "server.crt", "-subject")


def test_the_key_readable_by_a_group(tmp_path):
    group = grp.getgrgid(0).gr_name
    assert main(["--dir", str(tmp_path), "--name", "x", "--group", group]) == 0
    key = (tmp_path / "server.key").stat()
    assert (key.st_mode & 0o777, key.st_gid) == (0o640, 0)


def test_a_bad_request_is_reported(tmp_path, capsys):
    assert main(["--dir", str(tmp_path), "--name", "x", "--days", "-5"]) == 1
    assert "openssl failed" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_an_existing_key_anyone_can_read_stops_nginx(tmp_path, capsys):
    assert main(["--dir", str(tmp_path), "--name", "x"]) == 0
    key = tmp_path / "server.key"
    key.chmod(0o644)
    capsys.readouterr()
    assert main(["--dir", str(tmp_path), "--name", "x"]) == 1
    assert capsys.readouterr().err == (
        f"kvmd-gencert: {key}: mode 0644 lets every user read it; chmod o-rwx {key}\n"
    )
