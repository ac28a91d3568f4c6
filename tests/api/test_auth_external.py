# SPDX-License-Identifier: GPL-3.0-or-later
"""PiKVM's external auth (`kvmd.auth.external`) through the API, with the http plugin.

The auth service is a real HTTP server on loopback. Everyone but `internal.force_users`
logs in through it, with no fall back to the htpasswd file; the groups it names map to
roles through `auth.role_map`; a service that can't answer is a 503.
"""

import json
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from kvmd.cli.apikey import main as apikey_main
from tests.authservers import radius_server, slapd_server
from tests.conftest import ADMIN, running_app

OPERATOR = ["state", "video", "hid", "atx", "msd", "gpio", "streamer", "share"]
VIEWER = ["state", "video"]


@pytest.fixture
async def service(aiohttp_server):
    state: dict[str, Any] = {
        "users": {"alice": ("alice-pw", ["kvm-ops"]), "bob": ("bob-pw", [])},
        "status": 200,
        "asked": [],
    }

    async def auth(request: web.Request) -> web.Response:
        body = await request.json()
        state["asked"].append(body["user"])
        if state["status"] != 200:
            return web.Response(status=state["status"])
        (passwd, groups) = state["users"].get(body["user"], (None, []))
        if passwd is None or body["passwd"] != passwd:
            return web.Response(status=403)
        return web.json_response({"groups": groups})

    app = web.Application()
    app.router.add_post("/auth", auth)
    server = await aiohttp_server(app)
    state["url"] = str(server.make_url("/auth"))
    return state


def http_auth(service, **more) -> dict[str, Any]:
    """`kvmd.auth` with the http service: admin stays local, kvm-ops are operators."""
    return {
        "internal": {"force_users": ["admin"]},
        "external": {"type": "http", "url": service["url"], "timeout": 2.0},
        "role_map": {"kvm-ops": "operator"},
        "default_role": "viewer",
        "cache_ttl": 0,
        **more,
    }


@pytest.fixture
async def client(make_client, make_config, service):
    auth = http_auth(service)
    (client, _) = await make_client(make_config(kvmd={"auth": auth}))
    return client


def creds(user: str, passwd: str) -> dict[str, str]:
    return {"X-KVMD-User": user, "X-KVMD-Passwd": passwd}


async def check(client, user, passwd):
    response = await client.get("/api/auth/check", headers=creds(user, passwd))
    body = await response.json()
    return (response.status, body["result"].get("permissions", body["result"].get("error")))


async def test_directory_users_get_the_roles_their_groups_map_to(client, service):
    assert await check(client, "alice", "alice-pw") == (200, OPERATOR)
    assert await check(client, "bob", "bob-pw") == (200, VIEWER)  # no group: default_role
    assert await check(client, "alice", "wrong") == (403, "ForbiddenError")
    assert await check(client, "nobody", "x") == (403, "ForbiddenError")
    # A login session, as the web UI makes one.
    login = await client.post("/api/auth/login", data={"user": "alice", "passwd": "alice-pw"})
    assert login.status == 200
    assert "auth_token" in login.cookies


async def test_a_group_change_is_the_new_role_at_the_next_login(client, service):
    assert await check(client, "alice", "alice-pw") == (200, OPERATOR)
    service["users"]["alice"] = ("alice-pw", [])
    assert await check(client, "alice", "alice-pw") == (200, VIEWER)


async def test_force_users_stay_with_the_htpasswd_file(client, service):
    response = await client.get("/api/auth/check", headers=ADMIN)
    assert response.status == 200
    assert "admin" not in service["asked"]
    # No fall back either way: admin's htpasswd password is no directory password.
    assert await check(client, "bob", "admin") == (403, "ForbiddenError")


async def test_a_service_that_fails_is_a_503_not_a_no(client, service):
    service["status"] = 500
    assert await check(client, "alice", "alice-pw") == (503, "AuthServiceError")


async def test_a_service_that_is_down_is_a_503(make_client, make_config, unused_tcp_port):
    auth = {"external": {"type": "http", "url": f"http://127.0.0.1:{unused_tcp_port}/auth"}}
    (client, _) = await make_client(make_config(kvmd={"auth": auth}))
    assert await check(client, "alice", "alice-pw") == (503, "AuthServiceError")


async def test_default_role_none_lets_in_only_mapped_users(make_client, make_config, service):
    auth = {
        "external": {"type": "http", "url": service["url"]},
        "role_map": {"kvm-ops": "operator"},
        "default_role": "none",
    }
    (client, _) = await make_client(make_config(kvmd={"auth": auth}))
    assert await check(client, "alice", "alice-pw") == (200, OPERATOR)
    assert await check(client, "bob", "bob-pw") == (403, "ForbiddenError")


async def test_ldap_users_log_in_with_the_roles_of_their_groups(make_client, make_config):
    # A real slapd; PiKVM's keys plus kvmd's user_dn/filter, which OpenLDAP needs.
    users = {"alice": "alice-pw", "bob": "bob-pw"}
    with slapd_server(users, {"kvm": ["alice", "bob"], "kvm-ops": ["alice"]}) as slapd:
        auth = {
            "external": {
                "type": "ldap",
                "url": slapd.url,
                "base": slapd.base,
                "group": slapd.group_dn("kvm"),
                "user_dn": f"uid={{user}},ou=people,{slapd.base}",
                "filter": "(&(uid={user})(memberOf={group}))",
            },
            "role_map": {slapd.group_dn("kvm-ops"): "operator"},
            "default_role": "viewer",
            "cache_ttl": 0,
        }
        (client, _) = await make_client(make_config(kvmd={"auth": auth}))
        assert await check(client, "alice", "alice-pw") == (200, OPERATOR)
        assert await check(client, "bob", "bob-pw") == (200, VIEWER)
        assert await check(client, "bob", "wrong") == (403, "ForbiddenError")
        slapd.set_members("kvm-ops", ["bob"])
        assert await check(client, "bob", "bob-pw") == (200, OPERATOR)


async def test_radius_users_log_in_with_the_roles_of_their_class(make_client, make_config):
    users = {
        "alice": ("alice-pw", {"Class": "kvm-ops"}),
        "bob": ("bob-pw", {}),
    }
    with radius_server(users, "s3cret") as radius:
        auth = {
            "external": {
                "type": "radius",
                "host": radius.host,
                "port": radius.port,
                "secret": radius.secret,
            },
            "role_map": {"kvm-ops": "operator"},
            "default_role": "viewer",
            "cache_ttl": 0,
        }
        (client, _) = await make_client(make_config(kvmd={"auth": auth}))
        assert await check(client, "alice", "alice-pw") == (200, OPERATOR)
        assert await check(client, "bob", "bob-pw") == (200, VIEWER)
        assert await check(client, "alice", "wrong") == (403, "ForbiddenError")
        # Bob's Class changes at the server: his next login is an operator's.
        radius.set_users({**users, "bob": ("bob-pw", {"Class": "kvm-ops"})})
        assert await check(client, "bob", "bob-pw") == (200, OPERATOR)


async def test_a_directory_users_key_keeps_the_last_logins_rights_across_a_restart(
    make_client, make_config, service, tmp_path, capsys
):
    auth = http_auth(service)
    config = make_config(kvmd={"auth": auth})
    async with running_app(config) as (app, _, _), TestClient(TestServer(app)) as before:
        assert await check(before, "alice", "alice-pw") == (200, OPERATOR)
        # Made with kvmd-apikey, as a script's key often is (the API way is tested below).
        keys = config.kvmd.auth.files.keys
        args = ["--file", keys, "create", "--owner", "alice", "--permissions", "atx,hid,logs"]
        assert apikey_main(args) == 0
    (key_id, secret) = capsys.readouterr().out.split()
    stored = json.loads((tmp_path / "directory.json").read_text())["users"]
    assert list(stored) == ["alice"]
    assert stored["alice"]["groups"] == ["kvm-ops"]

    # A restart: alice has not logged in since, her key still holds operator's part of it.
    (after, _) = await make_client(make_config(kvmd={"auth": auth}))
    assert await check(after, key_id, secret) == (200, ["state", "hid", "atx"])
    assert service["asked"] == ["alice"]  # the key asked the directory nothing
    # The directory drops her group: the key follows at her next login, not before.
    service["users"]["alice"] = ("alice-pw", [])
    assert await check(after, key_id, secret) == (200, ["state", "hid", "atx"])
    assert await check(after, "alice", "alice-pw") == (200, VIEWER)
    assert await check(after, key_id, secret) == (200, ["state"])
    stored = json.loads((tmp_path / "directory.json").read_text())["users"]
    assert stored["alice"]["groups"] == []
    (again, _) = await make_client(make_config(kvmd={"auth": auth}))
    assert await check(again, key_id, secret) == (200, ["state"])
    # The owner turns the directory off: its users' keys stop with it.
    local = {name: value for (name, value) in auth.items() if name != "external"}
    (off, _) = await make_client(make_config(kvmd={"auth": local}))
    assert await check(off, key_id, secret) == (403, "ForbiddenError")


async def test_a_directory_user_creates_a_key_of_their_own_capped_by_their_roles(
    make_client, make_config, service
):
    auth = http_auth(service, self_keys=True)
    (client, _) = await make_client(make_config(kvmd={"auth": auth}))
    response = await client.post(
        "/api/auth/keys/create", data={"permissions": "hid,atx"}, headers=creds("alice", "alice-pw")
    )
    assert response.status == 200, await response.text()
    created = (await response.json())["result"]
    assert created["key"]["owner"] == "alice"
    key = (created["key"]["id"], created["secret"])
    assert await check(client, *key) == (200, ["state", "hid", "atx"])
    # Her group goes, her next login makes her a viewer: the key holds nothing of hid/atx.
    service["users"]["alice"] = ("alice-pw", [])
    assert await check(client, "alice", "alice-pw") == (200, VIEWER)
    assert await check(client, *key) == (200, ["state"])
