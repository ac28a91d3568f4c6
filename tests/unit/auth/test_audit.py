# SPDX-License-Identifier: GPL-3.0-or-later
"""The audit trail's records stay small whatever a request carries."""

import json
import tracemalloc

from kvmd.auth.audit import AuditLog, read_batch


def record(audit: AuditLog, args: dict[str, object]) -> None:
    audit.record(
        principal="admin",
        kind="user",
        via="xhdr",
        remote="127.0.0.1",
        action="auth.logout",
        args=args,
    )


async def memory_lines(audit: AuditLog) -> list[dict[str, object]]:
    return [json.loads(line) async for line in audit.lines(0, follow=False)]


async def test_a_flood_of_arguments_is_cut_to_a_budget():
    # An 8 KiB query of short parameters (`?p0=&p1=&...`), and whatever else a client sends.
    audit = AuditLog(None, max_size=4096, backups=0)
    args: dict[str, object] = {f"p{n}": "" for n in range(1300)}
    args |= {"n" * 8000: "v", "path": "/" + "x" * 8000, "roles": ["r" * 300] * 5000}
    args["huge"] = 10**5000
    for _ in range(1100):
        record(audit, args)
    records = await memory_lines(audit)
    assert len(records) == 1000
    for rec in records:
        kept = rec["args"]
        assert isinstance(kept, dict)
        assert len(kept) <= 33
        assert len(json.dumps(kept, separators=(",", ":"))) <= 4096 + 32
        assert all(len(name) <= 64 for name in kept)
        assert kept["_omitted"] == len(args) + 1 - len(kept)


async def test_long_values_and_lists_are_cut():
    audit = AuditLog(None, max_size=4096, backups=0)
    record(audit, {"path": "/" + "x" * 8000, "roles": [f"role{n}" for n in range(1000)]})
    (rec,) = await memory_lines(audit)
    assert rec["args"] == {"path": "/" + "x" * 255, "roles": [f"role{n}" for n in range(64)]}


async def test_the_arguments_of_real_actions_are_kept_whole(tmp_path):
    audit = AuditLog(tmp_path / "audit.log", max_size=1 << 20, backups=0)
    sessions = sorted(f"{n:016x}" for n in range(64))  # a user's every session
    args = {"user": "alice", "roles": ["admin", "viewer"], "disabled": False, "sessions": sessions}
    record(audit, args)
    (line,) = (tmp_path / "audit.log").read_text().splitlines()
    assert json.loads(line)["args"] == args


def write_trail(path, count: int) -> int:
    audit = AuditLog(path, max_size=1 << 30, backups=0)
    for n in range(count):
        record(audit, {"user": f"user{n}", "note": "x" * 200})
    audit.close()
    return path.stat().st_size


def test_the_history_is_read_in_batches(tmp_path):
    size = write_trail(tmp_path / "audit.log", 1000)
    seen = []
    with (tmp_path / "audit.log").open("rb") as file:
        done = False
        while not done:
            (batch, done) = read_batch(file, size, 0.0)
            assert len(batch) <= 256
            seen += batch
    assert [json.loads(line)["args"]["user"] for line in seen] == [f"user{n}" for n in range(1000)]


async def test_a_reader_never_holds_the_whole_trail(tmp_path):
    size = write_trail(tmp_path / "audit.log", 10_000)  # ~4 MB, as a trail of 4 MiB files is
    audit = AuditLog(tmp_path / "audit.log", max_size=1 << 30, backups=0)
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        count = 0
        async for _ in audit.lines(0, follow=False):
            count += 1
        held = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    assert count == 10_000
    assert held < size / 8
