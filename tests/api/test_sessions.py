# SPDX-License-Identifier: GPL-3.0-or-later
"""Login sessions (SECURITY.md §C): listing by public id, revocation that closes
websockets with 4401, logout as PiKVM does it and with scope=token, keepalive."""

import asyncio

import aiohttp
import pytest

from kvmd.auth.sessions import PER_PRINCIPAL
from tests.authenv import write_users, xhdr
from tests.conftest import ADMIN


@pytest.fixture
async def env(make_client, make_config, tmp_path, aiohttp_client):
    write_users(tmp_path)
    (client, deps) = await make_client(make_config(kvmd={"auth": {"expire": 3600}}))
    return (client, deps)


async def login(client, user, expire=0):
    """A separate cookie jar per browser, on the same server."""
    browser = aiohttp.ClientSession(
        str(client.make_url("")), cookie_jar=aiohttp.CookieJar(unsafe=True)
    )
    response = await browser.post(
        "/api/auth/login", data={"user": user, "passwd": user, "expire": str(expire)}
    )
    assert response.status == 200
    token = browser.cookie_jar.filter_cookies(client.make_url("/"))["auth_token"].value
    return (browser, token)


async def sessions(client, headers=ADMIN, query=""):
    response = await client.get(f"/api/auth/sessions{query}", headers=headers)
    assert response.status == 200, await response.text()
    return (await response.json())["result"]["sessions"]


async def closed_with(ws):
    message = await ws.receive(timeout=3)
    while message.type is aiohttp.WSMsgType.TEXT:
        message = await ws.receive(timeout=3)
    assert message.type is aiohttp.WSMsgType.CLOSE
    return message.data


async def test_listing_shows_public_ids_never_tokens(env):
    (client, _) = env
    (browser, token) = await login(client, "operator", expire=600)
    try:
        ws = await browser.ws_connect("/api/ws?stream=1")
        await ws.receive_json(timeout=2)
        header_ws = await client.ws_connect("/api/ws?stream=0", headers=xhdr("viewer"))
        await header_ws.receive_json(timeout=2)
        listing = await sessions(client)
        text = str(listing)
        assert token not in text
        cookie = next(s for s in listing if s["via"] == "token")
        assert cookie["user"] == "operator"
        assert len(cookie["id"]) == 16
        assert (cookie["ws"], cookie["streaming"], cookie["current"]) == (1, True, False)
        assert 590 < cookie["expires"] - cookie["created"] < 601
        assert cookie["remote"] == "127.0.0.1"
        header = next(s for s in listing if s["via"] == "xhdr")
        assert (header["user"], header["ws"], header["streaming"]) == ("viewer", 1, False)
        # Own sessions only for a non-admin, and `current` marks the caller's.
        mine = await browser.get("/api/auth/sessions")
        only = (await mine.json())["result"]["sessions"]
        assert [(s["user"], s["current"]) for s in only] == [("operator", True)]
        other = await browser.get("/api/auth/sessions?user=viewer")
        assert other.status == 403
        assert [s["user"] for s in await sessions(client, query="?user=viewer")] == ["viewer"]
        await ws.close()
        await header_ws.close()
    finally:
        await browser.close()


async def test_revoking_a_session_closes_its_websocket_with_4401(env):
    (client, _) = env
    (browser, _) = await login(client, "operator")
    try:
        ws = await browser.ws_connect("/api/ws?stream=0")
        await ws.receive_json(timeout=2)
        target = next(s for s in await sessions(client) if s["user"] == "operator")
        response = await client.post(f"/api/auth/sessions/remove?id={target['id']}", headers=ADMIN)
        assert (await response.json())["result"] == {"removed": [target["id"]]}
        assert await closed_with(ws) == 4401
        assert (await browser.get("/api/auth/check")).status == 403
    finally:
        await browser.close()


async def test_remove_by_user_and_header_websockets(env):
    (client, _) = env
    (browser, _) = await login(client, "viewer")
    try:
        header_ws = await client.ws_connect("/api/ws?stream=0", headers=xhdr("viewer"))
        await header_ws.receive_json(timeout=2)
        denied = await client.post(
            "/api/auth/sessions/remove?user=viewer", headers=xhdr("operator")
        )
        assert denied.status == 403
        response = await client.post("/api/auth/sessions/remove?user=viewer", headers=ADMIN)
        assert len((await response.json())["result"]["removed"]) == 2
        assert await closed_with(header_ws) == 4401
        assert (await browser.get("/api/auth/check")).status == 403
        assert await sessions(client) == []
    finally:
        await browser.close()


async def test_users_remove_only_their_own_sessions(env):
    (client, _) = env
    (operator, _) = await login(client, "operator")
    (viewer, _) = await login(client, "viewer")
    try:
        theirs = next(s for s in await sessions(client) if s["user"] == "viewer")
        denied = await operator.post(f"/api/auth/sessions/remove?id={theirs['id']}")
        assert denied.status == 403
        own = await viewer.post(f"/api/auth/sessions/remove?id={theirs['id']}")
        assert own.status == 200
        unknown = await operator.post("/api/auth/sessions/remove?id=0123456789abcdef")
        assert unknown.status == 404
        for bad in ("?id=xyz", "", "?id=0123456789abcdef&user=x"):
            response = await client.post(f"/api/auth/sessions/remove{bad}", headers=ADMIN)
            assert response.status == 400, bad
    finally:
        await operator.close()
        await viewer.close()


async def test_logout_ends_every_session_of_the_user_as_pikvm(env):
    (client, _) = env
    (first, _) = await login(client, "operator")
    (second, _) = await login(client, "operator")
    (viewer, _) = await login(client, "viewer")
    try:
        ws = await second.ws_connect("/api/ws?stream=0")
        await ws.receive_json(timeout=2)
        assert (await first.post("/api/auth/logout")).status == 200
        assert (await second.get("/api/auth/check")).status == 403
        assert await closed_with(ws) == 4401
        assert (await viewer.get("/api/auth/check")).status == 200
    finally:
        for browser in (first, second, viewer):
            await browser.close()


async def test_logout_scope_token_ends_only_this_one(env):
    (client, _) = env
    (first, _) = await login(client, "operator")
    (second, _) = await login(client, "operator")
    try:
        assert (await first.post("/api/auth/logout?scope=token")).status == 200
        assert (await first.get("/api/auth/check")).status == 403
        assert (await second.get("/api/auth/check")).status == 200
        bad = await second.post("/api/auth/logout?scope=all")
        assert (await bad.json())["result"]["error"] == "ValidatorError"
    finally:
        await first.close()
        await second.close()


async def test_keepalive_extends_by_the_asked_expire(env):
    (client, _) = env
    (browser, _) = await login(client, "viewer", expire=100)
    try:
        before = next(s for s in await sessions(client))["expires"]
        response = await browser.post("/api/auth/sessions/keepalive")
        expires = (await response.json())["result"]["expires"]
        assert before <= expires <= before + 5
        no_session = await client.post("/api/auth/sessions/keepalive", headers=ADMIN)
        assert no_session.status == 400
    finally:
        await browser.close()


async def test_a_login_flood_evicts_only_the_flooders_own_sessions(env):
    (client, deps) = env
    (admin, admin_token) = await login(client, "admin")
    (first_viewer, _) = await login(client, "viewer")
    # More logins than the old shared table of 4,096 held, as fast as a script can send them.
    async with aiohttp.ClientSession(str(client.make_url(""))) as flooder:
        for _ in range(42):
            responses = await asyncio.gather(
                *(
                    flooder.post("/api/auth/login", data={"user": "viewer", "passwd": "viewer"})
                    for _ in range(100)
                )
            )
            assert {r.status for r in responses} == {200}
    try:
        assert (await admin.get("/api/auth/check")).status == 200
        # The viewer's own oldest session made room for its newest ones.
        assert (await first_viewer.get("/api/auth/check")).status == 403
        assert len(deps.auth.sessions.of_user("viewer")) == PER_PRINCIPAL
        assert [s.token for s in deps.auth.sessions.of_user("admin")] == [admin_token]
    finally:
        await admin.close()
        await first_viewer.close()
