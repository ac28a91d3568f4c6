# SPDX-License-Identifier: GPL-3.0-or-later
"""`kvmd-htpasswd` run as a real process against files in tmp_path.

bcrypt at the default cost takes ~0.3 s per hash, so each test sets at most one password and
the other users carry cheap rounds=4 hashes that are only compared byte for byte.
"""

import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from passlib.hash import bcrypt

from kvmd.auth.htpasswd import Htpasswd, read_entries

REPO = Path(__file__).resolve().parents[3]
CHEAP = {user: bcrypt.using(rounds=4).hash(user) for user in ("alice", "bob")}


@pytest.fixture
def htpasswd(tmp_path: Path) -> Path:
    path = tmp_path / "htpasswd"
    (tmp_path / "main.yaml").write_text(
        f"kvmd: {{auth: {{internal: {{file: '{path}'}}, totp: {{secret: {{file: ''}}}}}}}}\n"
    )
    return path


def config_args(tmp_path: Path) -> list[str]:
    return [
        "--main-config",
        str(tmp_path / "main.yaml"),
        "--override-dir",
        str(tmp_path / "missing.d"),
        "--override-config",
        str(tmp_path / "missing.yaml"),
    ]


def kvmd_htpasswd(
    tmp_path: Path, *args: str, stdin: bytes = b""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kvmd.cli.htpasswd", *config_args(tmp_path), *args],
        input=stdin.decode("latin-1"),
        capture_output=True,
        text=True,
        encoding="latin-1",
        cwd=REPO,
        timeout=8,
        check=False,
    )


def write_users(path: Path, users: dict[str, str], mode: int = 0o600) -> bytes:
    path.write_text("".join(f"{user}:{hashed}\n" for user, hashed in users.items()))
    path.chmod(mode)
    return path.read_bytes()


def assert_refused(result: subprocess.CompletedProcess[str], needle: str) -> None:
    assert result.returncode == 1
    assert result.stdout == ""
    assert needle in result.stderr
    assert result.stderr.count("\n") == 1, "one line, no traceback"


def test_set_creates_the_file_0600_from_the_first_stdin_line(
    tmp_path: Path, htpasswd: Path
) -> None:
    result = kvmd_htpasswd(tmp_path, "set", "admin", stdin=b"s3cret pass~\nsecond line\n")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert htpasswd.stat().st_mode & 0o777 == 0o600
    assert list(read_entries(htpasswd)) == ["admin"]
    assert Htpasswd(htpasswd).verify("admin", "s3cret pass~")
    assert not Htpasswd(htpasswd).verify("admin", "second line")
    assert not Htpasswd(htpasswd).verify("admin", "s3cret pass~\n")


def test_set_replaces_a_user_in_place_keeping_others_and_the_mode(
    tmp_path: Path, htpasswd: Path
) -> None:
    before = write_users(
        htpasswd, {"alice": CHEAP["alice"], "admin": CHEAP["bob"], "bob": CHEAP["bob"]}, 0o640
    )
    result = kvmd_htpasswd(tmp_path, "set", "admin", stdin=b"newpass")  # no newline: fine too
    assert result.returncode == 0, result.stderr
    after = htpasswd.read_bytes().splitlines(keepends=True)
    assert after[0] == before.splitlines(keepends=True)[0]
    assert after[1].startswith(b"admin:$2")
    assert after[1] != before.splitlines(keepends=True)[1]
    assert after[2] == before.splitlines(keepends=True)[2]
    assert len(after) == 3
    assert htpasswd.stat().st_mode & 0o777 == 0o640
    assert Htpasswd(htpasswd).verify("admin", "newpass")


def test_del_removes_exactly_that_user(tmp_path: Path, htpasswd: Path) -> None:
    write_users(htpasswd, {"alice": CHEAP["alice"], "admin": "x", "bob": CHEAP["bob"]}, 0o640)
    result = kvmd_htpasswd(tmp_path, "del", "admin")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert htpasswd.read_text() == f"alice:{CHEAP['alice']}\nbob:{CHEAP['bob']}\n"
    assert htpasswd.stat().st_mode & 0o777 == 0o640


def test_del_of_an_unknown_user_fails_and_changes_nothing(tmp_path: Path, htpasswd: Path) -> None:
    before = write_users(htpasswd, CHEAP)
    assert_refused(kvmd_htpasswd(tmp_path, "del", "carol"), "no such user: 'carol'")
    assert htpasswd.read_bytes() == before


def test_list_prints_users_in_file_order(tmp_path: Path, htpasswd: Path) -> None:
    write_users(htpasswd, {"bob": CHEAP["bob"], "alice": CHEAP["alice"]})
    result = kvmd_htpasswd(tmp_path, "list")
    assert (result.returncode, result.stdout, result.stderr) == (0, "bob\nalice\n", "")


def test_list_of_a_missing_file_is_one_line_error(tmp_path: Path, htpasswd: Path) -> None:
    assert_refused(kvmd_htpasswd(tmp_path, "list"), f"{htpasswd}: No such file or directory")


@pytest.mark.parametrize(
    ("user", "needle"),
    [
        ("_key.x", "reserved"),
        ("Admin", "invalid username"),
        ("9lives", "invalid username"),
        ("ad:min", "invalid username"),
        ("admin.", "invalid username"),
        ("", "invalid username"),
        ("a" * 129, "invalid username"),
    ],
)
def test_set_refuses_bad_usernames_before_touching_the_file(
    tmp_path: Path, htpasswd: Path, user: str, needle: str
) -> None:
    before = write_users(htpasswd, CHEAP)
    assert_refused(kvmd_htpasswd(tmp_path, "set", user, stdin=b"password\n"), needle)
    assert htpasswd.read_bytes() == before


@pytest.mark.parametrize(
    ("stdin", "needle"),
    [
        (b"\n", "empty password"),
        (b"", "empty password"),
        ("pässwörd\n".encode(), "printable ASCII"),
        (b"tab\there\n", "printable ASCII"),
        (b"crlf\r\n", "printable ASCII"),
        (b"x" * 73 + b"\n", "longer than 72"),
    ],
)
def test_set_refuses_bad_passwords_and_keeps_the_file(
    tmp_path: Path, htpasswd: Path, stdin: bytes, needle: str
) -> None:
    before = write_users(htpasswd, CHEAP)
    result = kvmd_htpasswd(tmp_path, "set", "alice", stdin=stdin)
    assert_refused(result, needle)
    assert htpasswd.read_bytes() == before


def test_set_accepts_the_longest_allowed_names(tmp_path: Path, htpasswd: Path) -> None:
    user = "_" + "a@b.c-d_" * 15 + "z" * 7  # 128 characters
    result = kvmd_htpasswd(tmp_path, "set", user, stdin=b"~" * 72 + b"\n")
    assert result.returncode == 0, result.stderr
    assert list(read_entries(htpasswd)) == [user]
    assert Htpasswd(htpasswd).verify(user, "~" * 72)


def test_explicit_file_wins_and_needs_no_config(tmp_path: Path) -> None:
    other = tmp_path / "other"
    write_users(other, CHEAP)
    (tmp_path / "main.yaml").write_text("kvmd: {nonsense: 1}\n")
    result = kvmd_htpasswd(tmp_path, "--file", str(other), "list")
    assert (result.returncode, result.stdout) == (0, "alice\nbob\n")


def test_bad_config_exits_78_naming_the_key(tmp_path: Path, htpasswd: Path) -> None:
    (tmp_path / "main.yaml").write_text("kvmd: {auth: {internal: {file: [1]}}}\n")
    result = kvmd_htpasswd(tmp_path, "list")
    assert result.returncode == 78
    assert "kvmd.auth.internal.file" in result.stderr
    assert result.stderr.count("\n") == 1


def test_missing_config_exits_78(tmp_path: Path) -> None:
    result = kvmd_htpasswd(tmp_path, "list")
    assert result.returncode == 78
    assert f"{tmp_path / 'main.yaml'}: can't read" in result.stderr


class Terminal:
    """The CLI on a pseudo-terminal with no controlling TTY, so getpass prompts on stdin/stderr."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        (self.master, slave) = os.openpty()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kvmd.cli.htpasswd", *config_args(tmp_path), *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=REPO,
            start_new_session=True,
        )
        os.close(slave)
        self.seen = b""

    def expect(self, text: bytes) -> None:
        deadline = time.monotonic() + 5
        while text not in self.seen:
            assert time.monotonic() < deadline, self.seen
            if select.select([self.master], [], [], 0.1)[0]:
                self.seen += os.read(self.master, 1024)

    def answer(self, prompt: bytes, line: bytes) -> None:
        # getpass flushes pending input when it turns echo off: type only after the prompt.
        self.expect(prompt)
        self.seen = b""
        os.write(self.master, line + b"\n")

    def finish(self) -> tuple[int, str]:
        code = self.proc.wait(timeout=5)
        try:
            while select.select([self.master], [], [], 0.1)[0]:
                self.seen += os.read(self.master, 1024)
        except OSError:  # EIO: the child closed its side
            pass
        os.close(self.master)
        return (code, self.seen.decode())


def test_tty_prompts_twice_and_refuses_a_mismatch(tmp_path: Path, htpasswd: Path) -> None:
    before = write_users(htpasswd, CHEAP)
    term = Terminal(tmp_path, "set", "alice")
    term.answer(b"Password: ", b"one")
    term.answer(b"Repeat: ", b"two")
    (code, output) = term.finish()
    assert code == 1
    assert "the passwords do not match" in output
    assert "one" not in output, "no echo"
    assert htpasswd.read_bytes() == before


def test_tty_sets_the_password_typed_twice(tmp_path: Path, htpasswd: Path) -> None:
    term = Terminal(tmp_path, "set", "admin")
    term.answer(b"Password: ", b"typed pw")
    term.answer(b"Repeat: ", b"typed pw")
    (code, output) = term.finish()
    assert code == 0, output
    assert "typed pw" not in output, "no echo"
    assert Htpasswd(htpasswd).verify("admin", "typed pw")
