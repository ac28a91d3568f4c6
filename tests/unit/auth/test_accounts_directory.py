# SPDX-License-Identifier: GPL-3.0-or-later
"""Directory users' last logins in `auth.files.directory`: their keys' rights survive a restart."""

import json
import logging
import time

from kvmd.auth.accounts import Accounts
from kvmd.auth.directory import DIRECTORY_MAX
from kvmd.auth.files import signature

ROLE_MAP = {"kvm-ops": "operator", "kvm-admins": "admin"}


def accounts(tmp_path, role_map=ROLE_MAP) -> Accounts:
    # No htpasswd file: everyone here is a directory user.
    return Accounts(
        tmp_path / "htpasswd", None, None, "viewer", role_map, directory=tmp_path / "dir.json"
    )


def test_a_login_is_written_and_a_restart_resolves_the_same_roles(tmp_path):
    before = time.time()
    first = accounts(tmp_path)
    first.set_external("alice", ("kvm-ops", "staff"))
    first.set_external("bob", ())
    stored = json.loads((tmp_path / "dir.json").read_text())
    assert list(stored) == ["users"]
    assert sorted(stored["users"]) == ["alice", "bob"]
    assert stored["users"]["alice"]["groups"] == ["kvm-ops", "staff"]
    assert stored["users"]["bob"]["groups"] == []
    assert before - 0.001 <= stored["users"]["alice"]["login"] <= time.time()
    assert (tmp_path / "dir.json").stat().st_mode & 0o777 == 0o600

    restarted = accounts(tmp_path)
    for user in ("alice", "bob"):
        assert restarted.rights(user) == first.rights(user)
    alice = restarted.rights("alice")
    assert alice is not None
    assert alice.roles == ("operator",)
    bob = restarted.rights("bob")
    assert bob is not None
    assert bob.roles == ("viewer",)  # no group maps: default_role
    assert restarted.rights("carol") is None


def test_groups_are_stored_so_a_new_role_map_applies_at_start(tmp_path):
    accounts(tmp_path).set_external("alice", ("kvm-ops",))
    restarted = accounts(tmp_path, {"kvm-ops": "monitor"})
    rights = restarted.rights("alice")
    assert rights is not None
    assert rights.roles == ("monitor",)


def test_the_same_groups_again_write_nothing(tmp_path):
    first = accounts(tmp_path)
    first.set_external("alice", ("kvm-ops",))
    written = signature(tmp_path / "dir.json")
    text = (tmp_path / "dir.json").read_text()
    generation = first.generation
    first.set_external("alice", ("kvm-ops",))
    assert signature(tmp_path / "dir.json") == written
    assert (tmp_path / "dir.json").read_text() == text
    assert first.generation == generation
    # Changed groups are written, and the rights follow at once.
    first.set_external("alice", ("kvm-admins",))
    assert signature(tmp_path / "dir.json") != written
    assert json.loads((tmp_path / "dir.json").read_text())["users"]["alice"]["groups"] == [
        "kvm-admins"
    ]
    rights = first.rights("alice")
    assert rights is not None
    assert rights.roles == ("admin",)


def test_a_login_with_the_same_groups_refreshes_a_day_old_time(tmp_path):
    old = time.time() - 2 * 86400
    entry = {"groups": ["kvm-ops"], "login": old}
    (tmp_path / "dir.json").write_text(json.dumps({"users": {"alice": entry}}))
    accounts(tmp_path).set_external("alice", ("kvm-ops",))
    stored = json.loads((tmp_path / "dir.json").read_text())["users"]["alice"]
    assert stored["groups"] == ["kvm-ops"]
    assert stored["login"] > old + 86400


def test_a_corrupt_file_is_logged_kept_and_set_aside_at_the_next_login(tmp_path, caplog):
    (tmp_path / "dir.json").write_text('{"users": {"alice": ')
    with caplog.at_level(logging.ERROR, logger="kvmd.auth.accounts"):
        started = accounts(tmp_path)
    assert [r.getMessage() for r in caplog.records] == [
        f"Can't read {tmp_path / 'dir.json'}, directory users' API keys work again after "
        "their next login: Input data was truncated"
    ]
    assert started.rights("alice") is None
    assert (tmp_path / "dir.json").read_text() == '{"users": {"alice": '  # untouched at start
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="kvmd.auth.accounts"):
        started.set_external("bob", ("kvm-ops",))
    assert [r.getMessage() for r in caplog.records] == [
        f"Replacing the unreadable {tmp_path / 'dir.json'}; it is kept as "
        f"{tmp_path / 'dir.json.corrupt'}"
    ]
    assert (tmp_path / "dir.json.corrupt").read_text() == '{"users": {"alice": '
    assert list(json.loads((tmp_path / "dir.json").read_text())["users"]) == ["bob"]


def test_a_file_of_the_wrong_shape_is_no_crash_either(tmp_path, caplog):
    (tmp_path / "dir.json").write_text('{"users": {"alice": {"groups": "kvm-ops"}}}')
    with caplog.at_level(logging.ERROR, logger="kvmd.auth.accounts"):
        started = accounts(tmp_path)
    assert len(caplog.records) == 1
    assert "Expected `array`, got `str`" in caplog.records[0].getMessage()
    assert started.rights("alice") is None


def test_a_missing_file_is_empty_and_an_empty_path_writes_nothing(tmp_path):
    assert accounts(tmp_path).rights("alice") is None
    in_memory = Accounts(tmp_path / "htpasswd", None, None, "viewer", ROLE_MAP)
    in_memory.set_external("alice", ("kvm-ops",))
    rights = in_memory.rights("alice")
    assert rights is not None
    assert rights.roles == ("operator",)
    assert list(tmp_path.iterdir()) == []


def test_the_least_recently_seen_are_forgotten_beyond_the_cap(tmp_path):
    now = time.time()
    users = {f"u{i}": {"groups": [], "login": now - 1000 + i} for i in range(DIRECTORY_MAX + 1)}
    (tmp_path / "dir.json").write_text(json.dumps({"users": users}))
    started = accounts(tmp_path)
    assert started.rights("u0") is None  # the oldest, dropped at start
    assert started.rights("u1") is not None
    started.set_external("newcomer", ("kvm-ops",))
    stored = json.loads((tmp_path / "dir.json").read_text())["users"]
    assert len(stored) == DIRECTORY_MAX
    assert "u1" not in stored
    assert {"u2", f"u{DIRECTORY_MAX}", "newcomer"} <= set(stored)
    assert started.rights("u1") is None
