# SPDX-License-Identifier: GPL-3.0-or-later
"""Login throttling and lockout (SECURITY.md §O) and the audit trail (§I)."""

import asyncio
import json

import aiohttp
import pytest

from kvmd.auth.audit import AuditLog
from tests.authenv import basic, bearer, write_users, xhdr
from tests.conftest import ADMIN


@pytest.fixture
async def env(make_client, make_config, tmp_path):
    write_users(tmp_path)
    (client, deps) = await make_client(make_config())
    return (client, deps, tmp_path)


def from_address(client, address: str) -> aiohttp.ClientSession:
    """A client whose connections come from another loopback address."""
    connector = aiohttp.TCPConnector(local_addr=(address, 0))
    return aiohttp.ClientSession(str(client.make_url("")), connector=connector)


async def test_fifteen_wrong_passwords_then_429_but_other_addresses_still_work(env):
    (client, _, _) = env
    statuses = []
    for _ in range(15):
        response = await client.get("/api/auth/check", headers=xhdr("admin", "wrong"))
        statuses.append(response.status)
    # The address may fail five times; then it waits, whatever it sends.
    assert statuses == [403] * 5 + [429] * 10
    throttled = await client.get("/api/auth/check", headers=xhdr("admin", "wrong"))
    assert 1 <= int(throttled.headers["Retry-After"]) <= 60
    assert (await throttled.json())["result"]["error"] == "TooManyRequestsError"
    right_here = await client.get("/api/auth/check", headers=ADMIN)
    assert right_here.status == 429
    async with from_address(client, "127.0.0.2") as other:
        response = await other.get("/api/auth/check", headers=ADMIN)
        assert response.status == 200
        login = await other.post("/api/auth/login", data={"user": "admin", "passwd": "admin"})
        assert login.status == 200


async def test_every_password_path_counts(env):
    (client, _, _) = env
    await client.post("/api/auth/login", data={"user": "viewer", "passwd": "x"})
    await client.get("/api/auth/check", headers=basic("viewer", "x"))
    await client.get("/api/auth/check", headers=xhdr("viewer", "x"))
    await client.get("/api/auth/check", headers=bearer("_key.aaaaaaaaaaaa", "x"))
    await client.get("/api/auth/check", headers=xhdr("_key.aaaaaaaaaaaa", "x"))
    login = await client.post("/api/auth/login", data={"user": "viewer", "passwd": "viewer"})
    assert login.status == 429
    assert "Retry-After" in login.headers


async def test_a_valid_cookie_is_never_locked_out(env):
    (client, _, _) = env
    login = await client.post("/api/auth/login", data={"user": "viewer", "passwd": "viewer"})
    assert login.status == 200
    async with from_address(client, "127.0.0.1") as script:  # no cookie, same address
        for _ in range(8):
            await script.get("/api/auth/check", headers=basic("viewer", "nope"))
        right = await script.get("/api/auth/check", headers=basic("viewer", "viewer"))
        assert right.status == 429
    # The address is throttled and `viewer` has failures, yet the browser's cookie works.
    for _ in range(3):
        assert (await client.get("/api/auth/check")).status == 200


async def test_user_lockout_across_addresses(env):
    (client, deps, _) = env
    for n in range(10):
        async with from_address(client, f"127.0.1.{n + 1}") as attacker:
            response = await attacker.get("/api/auth/check", headers=xhdr("operator", "guess"))
            assert response.status == 403
    async with from_address(client, "127.0.2.1") as owner:
        locked = await owner.get("/api/auth/check", headers=xhdr("operator"))
        assert locked.status == 429
        users = await (await owner.get("/api/auth/users", headers=ADMIN)).json()
        operator = next(u for u in users["result"]["users"] if u["user"] == "operator")
        assert operator["locked_until"] is not None
        # Setting the password unlocks.
        await owner.post(
            "/api/auth/users/set_passwd", json={"user": "operator", "passwd": "new"}, headers=ADMIN
        )
        assert (await owner.get("/api/auth/check", headers=xhdr("operator", "new"))).status == 200
    assert deps.auth.locked_until("operator") is None


async def audit_records(client, query=""):
    response = await client.get(f"/api/audit{query}", headers=ADMIN)
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/x-ndjson; charset=utf-8"
    return [json.loads(line) for line in (await response.text()).splitlines()]


async def test_audit_records_who_did_what_from_where(env):
    (client, _, tmp) = env
    await client.post("/api/auth/login", data={"user": "operator", "passwd": "operator"})
    await client.post("/api/atx/click?button=power")  # ATX is off: recorded as failed
    await client.post("/api/auth/logout")
    await client.post("/api/auth/login", data={"user": "viewer", "passwd": "bad"})
    await client.post("/api/streamer/set_params?quality=50", headers=ADMIN)
    await client.post("/api/auth/roles/create?name=r1&permissions=atx", headers=ADMIN)
    created = await client.post("/api/auth/keys/create?permissions=atx&name=ci", headers=ADMIN)
    key = (await created.json())["result"]
    await client.post("/api/gpio/switch?channel=x&state=1", headers=xhdr("viewer"))
    records = await audit_records(client)
    actions = [(r["action"], r["principal"], r["result"]) for r in records]
    assert actions == [
        ("auth.login", "operator", "ok"),
        ("atx.click", "operator", "AtxDisabledError"),
        ("auth.logout", "operator", "ok"),
        ("auth.login", "viewer", "ForbiddenError"),
        ("streamer.set_params", "admin", "StreamerDisabledError"),
        ("auth.roles.create", "admin", "ok"),
        ("auth.keys.create", "admin", "ok"),
    ]  # the viewer's denied switch never ran: PermissionDenied happens before the handler
    click = records[1]
    assert (click["kind"], click["via"], click["remote"]) == ("user", "token", "127.0.0.1")
    assert click["args"] == {"button": "power"}
    assert records[6]["args"]["id"] == key["key"]["id"]
    # Stored as JSON lines on disk, and readable by `seek`.
    lines = (tmp / "audit.log").read_text().splitlines()
    assert [json.loads(line)["action"] for line in lines] == [a for (a, _, _) in actions]
    assert await audit_records(client, "?seek=3600") == records
    assert (await client.get("/api/audit", headers=xhdr("operator"))).status == 403


async def test_audit_follow_streams_new_records(env):
    (client, _, _) = env
    response = await client.get("/api/audit?follow=1", headers=ADMIN)
    await client.post("/api/auth/logout?scope=token", headers=ADMIN)  # 400: no cookie
    await client.post("/api/msd/reset", headers=ADMIN)
    line = await asyncio.wait_for(response.content.readline(), 3)
    while json.loads(line)["action"] != "msd.reset":
        line = await asyncio.wait_for(response.content.readline(), 3)
    assert json.loads(line)["principal"] == "admin"
    response.close()


async def test_secrets_never_reach_the_log_or_the_audit(env):
    (client, deps, _) = env
    created = await client.post("/api/auth/keys/create?permissions=atx,logs", headers=ADMIN)
    key = (await created.json())["result"]
    (key_id, secret) = (key["key"]["id"], key["secret"])
    await client.get("/api/auth/check", headers=bearer(key_id, secret))
    await client.get("/api/auth/check", headers=basic(key_id, secret))
    await client.get(f"/api/auth/check?api_key_secret={secret}", headers=xhdr(key_id, secret))
    rotated = await client.post(f"/api/auth/keys/rotate?id={key_id}", headers=ADMIN)
    new_secret = (await rotated.json())["result"]["secret"]
    await client.post(
        "/api/auth/users/create", json={"user": "erin", "passwd": "erins-passwd"}, headers=ADMIN
    )
    await client.post("/api/auth/login", data={"user": "erin", "passwd": "erins-passwd"})
    await client.post("/api/auth/login", data={"user": "erin", "passwd": "typo-passwd"})
    await client.post(
        "/api/auth/users/set_passwd",
        json={"passwd": "erins-new", "old_passwd": "erins-passwd"},
    )
    await client.post("/api/hid/events/send_key?key=KeyQ", headers=ADMIN)
    deps.audit.flush_hid()
    log = await (await client.get("/api/log", headers=ADMIN)).text()
    audit = await (await client.get("/api/audit", headers=ADMIN)).text()
    assert "api_key_secret=***" in log
    assert "auth.users.set_passwd" in audit
    for text in (log, audit):
        for secret_text in (secret, new_secret, "erins-passwd", "typo-passwd", "erins-new"):
            assert secret_text not in text
    # HID use is a count per minute; the key itself is not recorded.
    activity = [json.loads(x) for x in audit.splitlines() if '"hid.activity"' in x]
    assert [(a["principal"], a["args"]["events"]) for a in activity] == [("admin", 1)]
    assert "KeyQ" not in audit


def test_audit_file_rotates_and_keeps_every_line_whole(tmp_path):
    audit = AuditLog(tmp_path / "audit.log", max_size=4096, backups=2)
    for n in range(200):
        audit.record(principal="a", kind="user", via="xhdr", remote="", action=f"x.{n}")
    audit.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["audit.log", "audit.log.1", "audit.log.2"]
    lines = []
    for name in ("audit.log.2", "audit.log.1", "audit.log"):
        text = (tmp_path / name).read_text()
        assert len(text.encode()) <= 4096
        lines += [json.loads(line)["action"] for line in text.splitlines()]
    assert lines == [f"x.{n}" for n in range(200 - len(lines), 200)]  # the newest, in order
