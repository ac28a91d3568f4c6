# SPDX-License-Identifier: GPL-3.0-or-later
"""PiKVM's `http` auth plugin against a real HTTP server on loopback."""

import asyncio
import base64
import time

import pytest
from aiohttp import web

import kvmd
from kvmd.auth.plugins import AuthServiceError, Verdict
from kvmd.auth.plugins.http import HttpAuth, HttpAuthConfig


@pytest.fixture
async def service(aiohttp_server):
    seen: list[tuple[dict[str, object], dict[str, str]]] = []
    answers: dict[str, web.Response] = {}
    delay = [0.0]

    async def auth(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        seen.append((body, dict(request.headers)))
        await asyncio.sleep(delay[0])
        return answers.get(body["user"], web.Response(status=403))

    app = web.Application()
    app.router.add_post("/auth", auth)
    server = await aiohttp_server(app)
    return (server, seen, answers, delay)


def plugin(server, **options) -> HttpAuth:
    return HttpAuth(HttpAuthConfig(url=str(server.make_url("/auth")), **options))


async def test_200_is_yes_and_the_request_is_pikvms(service):
    (server, seen, answers, _) = service
    answers["alice"] = web.Response(status=200)
    auth = plugin(server, secret="kvm-7")
    try:
        assert await auth.authorize("alice", "pass word") == Verdict(ok=True)
        assert await auth.authorize("bob", "x") == Verdict(ok=False)
    finally:
        await auth.close()
    (body, headers) = seen[0]
    assert body == {"user": "alice", "passwd": "pass word", "secret": "kvm-7"}
    assert headers["X-KVMD-User"] == "alice"
    assert headers["User-Agent"] == f"KVMD/{kvmd.__version__}"
    assert "Authorization" not in headers


async def test_groups_in_the_answer_and_basic_auth_to_the_service(service):
    (server, seen, answers, _) = service
    answers["alice"] = web.json_response({"groups": ["kvm-operators", "staff"]})
    answers["carol"] = web.Response(status=200, text="not json")
    auth = plugin(server, user="kvmd", passwd="s3cret")
    try:
        assert await auth.authorize("alice", "pw") == Verdict(True, ("kvm-operators", "staff"))
        assert await auth.authorize("carol", "pw") == Verdict(True, ())
    finally:
        await auth.close()
    expected = "Basic " + base64.b64encode(b"kvmd:s3cret").decode()
    assert seen[0][1]["Authorization"] == expected


@pytest.mark.parametrize("status", [401, 403, 404, 302])
async def test_other_answers_are_no(service, status):
    (server, _, answers, _) = service
    answers["alice"] = web.Response(status=status, headers={"Location": "/elsewhere"})
    auth = plugin(server)
    try:
        assert await auth.authorize("alice", "pw") == Verdict(ok=False)
    finally:
        await auth.close()


async def test_a_failing_service_is_an_error_not_a_no(service):
    (server, _, answers, _) = service
    answers["alice"] = web.Response(status=500)
    auth = plugin(server)
    try:
        with pytest.raises(AuthServiceError, match="answered 500") as raised:
            await auth.authorize("alice", "pw")
        assert raised.value.http_status == 503
    finally:
        await auth.close()


async def test_a_slow_service_gives_up_at_the_timeout(service):
    (server, _, answers, delay) = service
    answers["alice"] = web.Response(status=200)
    delay[0] = 5.0
    auth = plugin(server, timeout=0.3)
    started = time.monotonic()
    try:
        with pytest.raises(AuthServiceError):
            await auth.authorize("alice", "pw")
    finally:
        await auth.close()
    assert time.monotonic() - started < 3.0


async def test_a_service_that_is_down_is_an_error(unused_tcp_port):
    auth = HttpAuth(HttpAuthConfig(url=f"http://127.0.0.1:{unused_tcp_port}/auth"))
    try:
        with pytest.raises(AuthServiceError, match=r"127\.0\.0\.1"):
            await auth.authorize("alice", "pw")
    finally:
        await auth.close()
