# SPDX-License-Identifier: GPL-3.0-or-later
"""API keys (SECURITY.md §A).

Every transport, default deny, key ∩ owner, read-only, expiry, allowed_nets, rotation,
removal, and secrets that are never shown twice.
"""

import asyncio
import json
import re
import time
from typing import Any

import aiohttp
import pytest

from tests.authenv import basic, bearer, write_users, xhdr
from tests.conftest import ADMIN


@pytest.fixture
async def env(make_client, make_config, tmp_path):
    write_users(tmp_path)
    (client, deps) = await make_client(make_config())
    return (client, deps, tmp_path)


async def create(client, headers=ADMIN, **params):
    response = await client.post("/api/auth/keys/create", json=params, headers=headers)
    body = await response.json()
    assert response.status == 200, body
    return (body["result"]["key"], body["result"]["secret"])


async def check(client, headers):
    response = await client.get("/api/auth/check", headers=headers)
    return (response.status, (await response.json())["result"])


async def test_created_key_works_over_every_transport(env):
    (client, _, tmp) = env
    (key, secret) = await create(client, name="ci", permissions=["atx"])
    assert re.fullmatch(r"_key\.[a-z2-7]{12}", key["id"])
    assert len(secret) >= 32
    assert key["owner"] == "admin"
    assert key["permissions"] == ["atx"]
    for headers in (xhdr(key["id"], secret), basic(key["id"], secret), bearer(key["id"], secret)):
        (status, result) = await check(client, headers)
        assert status == 200
        assert (result["user"], result["kind"], result["permissions"]) == (
            key["id"],
            "key",
            ["state", "atx"],
        )
    click = await client.post("/api/atx/click?button=power", headers=bearer(key["id"], secret))
    assert (await click.json())["result"]["error"] == "AtxDisabledError"  # past the auth check
    # Stored hashed: the file never holds the secret, and is private.
    stored = (tmp / "apikeys.json").read_text()
    assert secret not in stored
    assert json.loads(stored)["keys"][0]["id"] == key["id"]
    assert (tmp / "apikeys.json").stat().st_mode & 0o777 == 0o600
    # Listed without any secret.
    listing = await (await client.get("/api/auth/keys", headers=ADMIN)).text()
    assert key["id"] in listing
    assert secret not in listing
    assert "sha256" not in listing


async def test_wrong_secret_and_unknown_key_are_403(env):
    (client, _, _) = env
    (key, secret) = await create(client, permissions="state")
    assert (await check(client, xhdr(key["id"], secret + "x")))[0] == 403
    assert (await check(client, bearer("_key.aaaaaaaaaaaa", secret)))[0] == 403
    assert (await check(client, {"Authorization": "Bearer _key.nosecret"}))[0] == 401


async def test_default_deny(env):
    (client, _, _) = env
    (key, secret) = await create(client, name="nothing")
    (status, result) = await check(client, xhdr(key["id"], secret))
    assert (status, result["permissions"]) == (200, [])
    for path in ("/api/info", "/api/atx"):
        assert (await client.get(path, headers=xhdr(key["id"], secret))).status == 403


async def test_read_only_key_with_atx_gets_read_only_error(env):
    (client, _, _) = env
    (key, secret) = await create(client, permissions=["atx", "msd", "logs"], read_only=True)
    headers = basic(key["id"], secret)
    response = await client.post("/api/atx/click?button=power", headers=headers)
    assert response.status == 403
    assert (await response.json())["result"] == {
        "error": "ReadOnlyError",
        "error_msg": "This credential is read-only",
    }
    assert (await client.get("/api/atx", headers=headers)).status == 200
    assert (await client.get("/api/log", headers=headers)).status == 200
    assert (await client.post("/api/msd/remove?image=x", headers=headers)).status == 403
    assert (await check(client, headers))[1]["read_only"] is True


async def test_expired_key_is_403(env):
    (client, _, _) = env
    (key, secret) = await create(client, permissions=["atx"], expires=time.time() + 0.3)
    assert (await check(client, xhdr(key["id"], secret)))[0] == 200
    await asyncio.sleep(0.4)
    response = await client.get("/api/auth/check", headers=xhdr(key["id"], secret))
    assert response.status == 403
    assert (await response.json())["result"] == {
        "error": "ForbiddenError",
        "error_msg": "API key expired",
    }
    listed = (await (await client.get("/api/auth/keys", headers=ADMIN)).json())["result"]["keys"]
    assert listed[0]["expired"] is True  # visible until removed


async def test_allowed_nets(env):
    (client, _, _) = env
    (inside, s1) = await create(client, permissions=["atx"], allowed_nets="127.0.0.0/8")
    (outside, s2) = await create(client, permissions=["atx"], allowed_nets=["10.0.0.0/8"])
    assert (await check(client, xhdr(inside["id"], s1)))[0] == 200
    response = await client.get("/api/auth/check", headers=xhdr(outside["id"], s2))
    assert response.status == 403
    assert "address" in (await response.json())["result"]["error_msg"]
    bad = await client.post("/api/auth/keys/create?allowed_nets=300.1.1.1/8", headers=ADMIN)
    assert (await bad.json())["result"]["error"] == "ValidatorError"


async def test_key_never_holds_more_than_its_owner(env):
    (client, _, _) = env
    (key, secret) = await create(client, permissions=["atx", "hid"], owner="operator")
    assert (await check(client, xhdr(key["id"], secret)))[1]["permissions"] == [
        "state",
        "hid",
        "atx",
    ]
    # The owner demoted: the key narrows at once.
    await client.post("/api/auth/users/set_params?user=operator&roles=power-only", headers=ADMIN)
    assert (await check(client, xhdr(key["id"], secret)))[1]["permissions"] == ["state", "atx"]
    # The owner disabled: the key is dead.
    await client.post("/api/auth/users/set_params?user=operator&disabled=1", headers=ADMIN)
    assert (await check(client, xhdr(key["id"], secret)))[0] == 403


async def test_no_escalation_through_keys(make_client, make_config, tmp_path):
    write_users(tmp_path)
    (client, _) = await make_client(make_config(kvmd={"auth": {"self_keys": True}}))
    operator = xhdr("operator")
    (own, _) = await create(client, operator, name="mine", permissions=["atx", "hid"])
    assert own["owner"] == "operator"
    for permissions in (["logs"], ["admin"], ["atx", "logs"]):
        response = await client.post(
            "/api/auth/keys/create", json={"permissions": permissions}, headers=operator
        )
        assert response.status == 403, permissions
        body = await response.json()
        assert body["result"]["error"] == "PermissionDeniedError"
        assert body["result"]["error_msg"].startswith("Can't grant permissions you do not hold")
    for_other = await client.post(
        "/api/auth/keys/create", json={"permissions": ["atx"], "owner": "viewer"}, headers=operator
    )
    assert for_other.status == 403
    viewer_hid = await client.post("/api/auth/keys/create?permissions=hid", headers=xhdr("viewer"))
    assert viewer_hid.status == 403
    (theirs, _) = await create(client, name="admin's", permissions=["logs"])
    listed = await (await client.get("/api/auth/keys", headers=operator)).json()
    assert [k["id"] for k in listed["result"]["keys"]] == [own["id"]]
    remove = await client.post(f"/api/auth/keys/remove?id={theirs['id']}", headers=operator)
    assert remove.status == 403
    # Without self_keys, key management is for admins only.
    (client2, _) = await make_client(make_config())
    assert (await client2.get("/api/auth/keys", headers=operator)).status == 403


async def test_admin_key_owned_by_an_operator_is_not_admin(env):
    (client, _, _) = env
    (key, secret) = await create(client, permissions=["admin"], owner="operator")
    (status, result) = await check(client, xhdr(key["id"], secret))
    assert status == 200
    assert "admin" not in result["permissions"]
    assert "hid" in result["permissions"]
    denied = await client.post(
        "/api/auth/keys/create", json={"permissions": ["atx"]}, headers=xhdr(key["id"], secret)
    )
    assert denied.status == 403


async def test_login_with_a_key_gives_a_cookie_session(env):
    (client, _, _) = env
    (key, secret) = await create(client, permissions=["atx"], read_only=True)
    login = await client.post("/api/auth/login", data={"user": key["id"], "passwd": secret})
    assert login.status == 200
    (status, result) = await check(client, {})
    assert (status, result["kind"], result["read_only"]) == (200, "key", True)
    # Removing the key ends its cookie sessions too.
    await client.post(f"/api/auth/keys/remove?id={key['id']}", headers=ADMIN)
    assert (await check(client, {}))[0] == 403


async def test_rotate_with_grace_and_remove_closes_websockets(env):
    (client, _, _) = env
    (key, old) = await create(client, permissions=["state"])
    rotated = await client.post(f"/api/auth/keys/rotate?id={key['id']}&grace=60", headers=ADMIN)
    new = (await rotated.json())["result"]["secret"]
    assert new != old
    assert (await check(client, xhdr(key["id"], old)))[0] == 200  # the grace overlap
    assert (await check(client, xhdr(key["id"], new)))[0] == 200
    await client.post(f"/api/auth/keys/rotate?id={key['id']}", headers=ADMIN)
    assert (await check(client, xhdr(key["id"], old)))[0] == 403
    # A websocket opened with the key closes with 4401 when the key goes.
    (key2, secret2) = await create(client, permissions=["state"])
    ws = await client.ws_connect("/api/ws?stream=0", headers=bearer(key2["id"], secret2))
    await ws.receive_json(timeout=2)
    await client.post(f"/api/auth/keys/remove?id={key2['id']}", headers=ADMIN)
    message = await ws.receive(timeout=2)
    while message.type is aiohttp.WSMsgType.TEXT:
        message = await ws.receive(timeout=2)
    assert (message.type, message.data) == (aiohttp.WSMsgType.CLOSE, 4401)


async def test_set_params_disables_and_narrows(env):
    (client, _, _) = env
    (key, secret) = await create(client, permissions=["atx", "msd"])
    response = await client.post(
        "/api/auth/keys/set_params",
        json={"id": key["id"], "permissions": ["msd"], "name": "renamed"},
        headers=ADMIN,
    )
    assert (await response.json())["result"]["key"]["name"] == "renamed"
    assert (await check(client, xhdr(key["id"], secret)))[1]["permissions"] == ["state", "msd"]
    await client.post(f"/api/auth/keys/set_params?id={key['id']}&enabled=0", headers=ADMIN)
    response = await client.get("/api/auth/check", headers=xhdr(key["id"], secret))
    assert (await response.json())["result"]["error_msg"] == "API key disabled"


async def test_bad_key_requests_are_400(env):
    (client, _, _) = env
    for path in (
        "/api/auth/keys/create?permissions=fly",
        "/api/auth/keys/create?role=nope",
        "/api/auth/keys/create?owner=nobody",
        "/api/auth/keys/create?expires=tomorrow",
        "/api/auth/keys/create?permissions=atx&role=viewer",
        "/api/auth/keys/rotate?id=bad",
        "/api/auth/keys/remove",
    ):
        response = await client.post(path, headers=ADMIN)
        assert response.status == 400, path
        assert (await response.json())["result"]["error"] == "ValidatorError", path
    missing = await client.post("/api/auth/keys/remove?id=_key.aaaaaaaaaaaa", headers=ADMIN)
    assert missing.status == 404
    broken = await client.post(
        "/api/auth/keys/create", data=b"{", headers={**ADMIN, "Content-Type": "application/json"}
    )
    assert broken.status == 400


async def test_key_websocket_is_view_only_when_read_only(env):
    (client, _, _) = env
    (key, secret) = await create(client, permissions=["hid", "video"], read_only=True)
    ws = await client.ws_connect("/api/ws?stream=0", headers=xhdr(key["id"], secret))
    events: list[dict[str, Any]] = []
    while not any(e["event_type"] == "session" for e in events):
        events.append(await ws.receive_json(timeout=2))
    assert events[-1]["event"]["access"] == "view"
    await ws.close()
