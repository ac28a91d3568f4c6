# SPDX-License-Identifier: GPL-3.0-or-later
"""/api/auth/users and /roles (SECURITY.md §B): the files on disk and the guards."""

import asyncio

import pytest
import yaml

from kvmd.auth.htpasswd import read_entries
from tests.authenv import write_users, xhdr
from tests.conftest import ADMIN


@pytest.fixture
async def env(make_client, make_config, tmp_path):
    write_users(tmp_path)
    (client, _) = await make_client(make_config())
    return (client, tmp_path)


async def post(client, path, headers=ADMIN, **body):
    response = await client.post(path, json=body, headers=headers)
    return (response.status, (await response.json())["result"])


async def test_create_list_and_remove_a_user(env):
    (client, tmp) = env
    (status, _) = await post(
        client, "/api/auth/users/create", user="carol", passwd="s3cret-pass", roles=["viewer"]
    )
    assert status == 200
    assert "carol" in read_entries(tmp / "htpasswd")
    assert "s3cret-pass" not in (tmp / "htpasswd").read_text()
    assert yaml.safe_load((tmp / "users.yaml").read_text())["carol"]["roles"] == ["viewer"]
    check = await client.get("/api/auth/check", headers=xhdr("carol", "s3cret-pass"))
    assert (await check.json())["result"]["permissions"] == ["state", "video"]
    users = (await (await client.get("/api/auth/users", headers=ADMIN)).json())["result"]["users"]
    carol = next(u for u in users if u["user"] == "carol")
    assert (carol["roles"], carol["source"], carol["disabled"]) == (["viewer"], "htpasswd", False)
    admin = next(u for u in users if u["user"] == "admin")
    assert (admin["roles"], admin["default_role"]) == (["admin"], True)
    (status, result) = await post(client, "/api/auth/users/create", user="carol", passwd="x")
    assert (status, result["error"]) == (409, "AlreadyExistsError")
    assert (await client.post("/api/auth/users/remove?user=carol", headers=ADMIN)).status == 200
    assert "carol" not in read_entries(tmp / "htpasswd")
    assert "carol" not in yaml.safe_load((tmp / "users.yaml").read_text())


async def test_bad_user_requests_are_400(env):
    (client, _) = env
    for body in (
        {"user": "_key.abc", "passwd": "x"},
        {"user": "Bad!", "passwd": "x"},
        {"user": "dave", "passwd": ""},
        {"user": "dave", "passwd": "x" * 73},
        {"user": "dave", "passwd": "x", "roles": ["nope"]},
    ):
        (status, result) = await post(client, "/api/auth/users/create", **body)
        assert (status, result["error"]) == (400, "ValidatorError"), body
    (status, _) = await post(client, "/api/auth/users/set_params?user=nobody&disabled=1")
    assert status == 404


async def test_the_last_admin_is_protected(env):
    (client, _) = env
    for path in (
        "/api/auth/users/remove?user=admin&force=1",
        "/api/auth/users/set_params?user=admin&disabled=1",
        "/api/auth/users/set_params?user=admin&roles=operator",
    ):
        response = await client.post(path, headers=ADMIN)
        assert response.status == 409, path
        assert (await response.json())["result"]["error"] == "LastAdminError"
    # With a second admin, the first may go.
    await post(client, "/api/auth/users/set_params", user="operator", roles=["admin"])
    (status, _) = await post(client, "/api/auth/users/set_params?user=admin&roles=viewer")
    assert status == 200
    # ...but not a custom role change that would leave no admin.
    await post(
        client,
        "/api/auth/roles/create",
        headers=xhdr("operator"),
        name="boss",
        permissions=["admin"],
    )
    await post(
        client,
        "/api/auth/users/set_params",
        headers=xhdr("operator"),
        user="operator",
        roles=["boss"],
    )
    (status, result) = await post(
        client,
        "/api/auth/roles/set_params",
        headers=xhdr("operator"),
        name="boss",
        permissions=["atx"],
    )
    assert (status, result["error"]) == (409, "LastAdminError")


async def test_remove_with_live_sessions_needs_force(env):
    (client, _) = env
    await client.post("/api/auth/login", data={"user": "viewer", "passwd": "viewer"})
    client.session.cookie_jar.clear()
    response = await client.post("/api/auth/users/remove?user=viewer", headers=ADMIN)
    assert response.status == 409
    assert (await response.json())["result"]["error"] == "InUseError"
    forced = await client.post("/api/auth/users/remove?user=viewer&force=1", headers=ADMIN)
    assert forced.status == 200
    listing = await (await client.get("/api/auth/sessions", headers=ADMIN)).json()
    assert listing["result"]["sessions"] == []


async def test_set_passwd_own_needs_old_admin_does_not(env):
    (client, _) = env
    viewer = xhdr("viewer")
    (status, _) = await post(
        client, "/api/auth/users/set_passwd", headers=viewer, passwd="newpass", old_passwd="wrong"
    )
    assert status == 403
    (status, _) = await post(
        client, "/api/auth/users/set_passwd", headers=viewer, passwd="newpass", old_passwd="viewer"
    )
    assert status == 200
    assert (await client.get("/api/auth/check", headers=xhdr("viewer", "newpass"))).status == 200
    assert (await client.get("/api/auth/check", headers=viewer)).status == 403
    (status, _) = await post(
        client, "/api/auth/users/set_passwd", headers=xhdr("operator"), user="viewer", passwd="x1"
    )
    assert status == 403  # someone else's password needs admin
    (status, _) = await post(client, "/api/auth/users/set_passwd", user="viewer", passwd="back")
    assert status == 200
    assert (await client.get("/api/auth/check", headers=xhdr("viewer", "back"))).status == 200


async def test_must_change_passwd_blocks_all_but_the_change(env):
    (client, _) = env
    await post(client, "/api/auth/users/set_params", user="operator", must_change_passwd=True)
    operator = xhdr("operator")
    assert (await client.get("/api/auth/check", headers=operator)).status == 200
    assert (await client.get("/api/info", headers=operator)).status == 200
    blocked = await client.get("/api/atx", headers=operator)
    assert blocked.status == 403
    assert (await blocked.json())["result"]["error"] == "PasswordChangeRequiredError"
    (status, _) = await post(
        client,
        "/api/auth/users/set_passwd",
        headers=operator,
        passwd="fresh",
        old_passwd="operator",
    )
    assert status == 200
    assert (await client.get("/api/atx", headers=xhdr("operator", "fresh"))).status == 200


async def test_custom_roles(env):
    (client, tmp) = env
    (status, _) = await post(
        client, "/api/auth/roles/create", name="media", permissions="msd,video"
    )
    assert status == 200
    assert yaml.safe_load((tmp / "roles.yaml").read_text())["media"]["permissions"] == [
        "video",
        "msd",
    ]
    roles = (await (await client.get("/api/auth/roles", headers=ADMIN)).json())["result"]["roles"]
    assert [r["name"] for r in roles] == [
        "admin",
        "operator",
        "viewer",
        "monitor",
        "media",
        "power-only",
    ]
    assert next(r for r in roles if r["name"] == "viewer") == {
        "name": "viewer",
        "permissions": ["state", "video"],
        "builtin": True,
    }
    for path, error in (
        ("/api/auth/roles/set_params?name=viewer&permissions=atx", "OperationError"),
        ("/api/auth/roles/remove?name=admin", "OperationError"),
        ("/api/auth/roles/remove?name=power-only", "InUseError"),
        ("/api/auth/roles/create?name=media", "AlreadyExistsError"),
        ("/api/auth/roles/create?name=x&permissions=fly", "ValidatorError"),
        ("/api/auth/roles/remove?name=nope", "NotFoundError"),
    ):
        response = await client.post(path, headers=ADMIN)
        assert (await response.json())["result"]["error"] == error, path
    assert (await client.post("/api/auth/roles/remove?name=media", headers=ADMIN)).status == 200
    assert (await client.get("/api/auth/roles", headers=xhdr("operator"))).status == 403


async def test_users_endpoints_need_admin(env):
    (client, _) = env
    for path in ("/api/auth/users/create", "/api/auth/users/set_params", "/api/auth/users/remove"):
        response = await client.post(path, headers=xhdr("operator"))
        assert response.status == 403, path


async def test_the_default_role_cannot_be_removed(make_client, make_config, tmp_path):
    write_users(tmp_path, users={"admin": {"roles": ["admin"]}})
    (client, _) = await make_client(make_config(kvmd={"auth": {"default_role": "power-only"}}))
    response = await client.post("/api/auth/roles/remove?name=power-only", headers=ADMIN)
    assert response.status == 409
    assert (await response.json())["result"] == {
        "error": "InUseError",
        "error_msg": "Role 'power-only' is auth.default_role",
    }


async def test_two_admins_removing_each_other_at_once_leave_one(env):
    (client, tmp) = env
    await post(client, "/api/auth/users/set_params", user="operator", roles=["admin"])
    # Live websockets make each removal wait while it closes them: the window of a race.
    sockets = [
        await client.ws_connect("/api/ws?stream=0", headers=xhdr(user))
        for user in ("admin", "operator")
    ]
    removals = await asyncio.gather(
        client.post("/api/auth/users/remove?user=operator&force=1", headers=ADMIN),
        client.post("/api/auth/users/remove?user=admin&force=1", headers=xhdr("operator")),
    )
    # The loser is refused as the last admin, or finds itself removed already.
    (won, lost) = sorted(r.status for r in removals)
    assert (won, lost in (403, 409)) == (200, True)
    users = yaml.safe_load((tmp / "users.yaml").read_text()) or {}
    left = [u for u in read_entries(tmp / "htpasswd") if u in ("admin", "operator")]
    assert len(left) == 1
    assert users.get(left[0], {}).get("roles", ["admin"]) == ["admin"]
    for ws in sockets:
        await ws.close()
