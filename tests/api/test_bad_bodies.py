# SPDX-License-Identifier: GPL-3.0-or-later
"""Bodies and credentials that once escaped as 500s, on every route that could meet them.

Each route of the app is tried, so a route added later is covered too (issue 18,
findings 3, 4 and 7).
"""

import asyncio
import base64
import io

import pytest
from aiohttp import web

from kvmd.server.web import ROUTES
from tests.authenv import basic, write_users, xhdr
from tests.conftest import ADMIN

DEEP = 100_000
NESTED = b'{"user": "x", "passwd": "y", "roles": ' + b"[" * DEEP + b"]" * DEEP + b"}"
BOUNDARY = "kvmdfuzz"
NUL_PART = (
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="user"\r\nX-Bad: a\x00b\r\n\r\n'
    f"admin\r\n--{BOUNDARY}--\r\n"
).encode()
POSTS = sorted(
    {
        route.path
        for table in ROUTES
        for route in table
        if isinstance(route, web.RouteDef) and route.method in ("POST", "PATCH")
    }
)


@pytest.fixture
async def env(make_client, make_config, tmp_path):
    write_users(tmp_path)
    return await make_client(make_config())


def concrete(path: str) -> str:
    return "/api" + path.replace("{sid}", "0")


async def raw_status(client, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    """One request written byte by byte, as no well-behaved client library would send it."""
    (reader, writer) = await asyncio.open_connection("127.0.0.1", client.port)
    try:
        writer.write(head + body)
        await writer.drain()
        response = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    (status_line, _, rest) = response.partition(b"\r\n")
    return (int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2])


async def send(client, path: str, body: bytes, content_type: str):
    """The route's own method (PATCH for the Redfish system), as the admin."""
    method = "PATCH" if path.endswith("{sid}") else "POST"
    headers = {**ADMIN, "Content-Type": content_type}
    return await client.request(method, concrete(path), data=body, headers=headers)


@pytest.mark.parametrize("path", POSTS)
async def test_nested_json_is_a_400(env, path):
    (client, _) = env
    response = await send(client, path, NESTED, "application/json")
    assert response.status < 500, await response.text()
    if path in {"/auth/users/create", "/redfish/v1/Systems/{sid}/Actions/ComputerSystem.Reset"}:
        assert response.status == 400
        assert (await response.json())["result"]["error"] == "ValidatorError"


@pytest.mark.parametrize("path", POSTS)
async def test_a_nul_in_a_multipart_header_is_a_400(env, path):
    (client, _) = env
    response = await send(client, path, NUL_PART, f"multipart/form-data; boundary={BOUNDARY}")
    assert response.status < 500, await response.text()
    if path in {"/auth/login", "/auth/users/create", "/auth/roles/create"}:
        assert response.status == 400
        body = await response.json()
        assert body["result"]["error"] == "ValidatorError"
        assert body["result"]["error_msg"].startswith("Invalid form data: ")


async def test_nul_multipart_login_without_credentials(env):
    (client, _) = env
    head = (
        "POST /api/auth/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {len(NUL_PART)}\r\n\r\n"
    ).encode()
    (status, body) = await raw_status(client, head, NUL_PART)
    assert status == 400
    assert b'"ValidatorError"' in body


@pytest.mark.parametrize(
    "credentials",
    ["\xe9", "\xe9\xe9\xe9\xe9", "YWRtaW46YWRtaW4=\xe9", "\xff\xfe", "=", "YQ", "AAAA"],
)
async def test_a_basic_header_that_is_no_base64_text_is_a_401(env, credentials):
    (client, _) = env
    head = (
        "GET /api/auth/check HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        f"Authorization: Basic {credentials}\r\n\r\n"
    ).encode("latin-1")
    (status, body) = await raw_status(client, head)
    assert status == 401
    assert b'"UnauthorizedError"' in body


async def test_a_basic_password_may_hold_colons(env):
    (client, _) = env
    created = await client.post(
        "/api/auth/users/create", json={"user": "colin", "passwd": "a:b::c:"}, headers=ADMIN
    )
    assert created.status == 200
    for headers in (basic("colin", "a:b::c:"), xhdr("colin", "a:b::c:")):
        response = await client.get("/api/auth/check", headers=headers)
        assert response.status == 200
        assert (await response.json())["result"]["user"] == "colin"
    assert (await client.get("/api/auth/check", headers=basic("colin", "a:b"))).status == 403
    # The user id is what comes before the first colon.
    wrong_split = {"Authorization": "Basic " + base64.b64encode(b"colin:a:b::c:x").decode()}
    assert (await client.get("/api/auth/check", headers=wrong_split)).status == 403


@pytest.mark.parametrize(
    "path", ["/api/info", "/api/auth/login", "/info", "/", "/nowhere", "/ui/x"]
)
@pytest.mark.parametrize("expect", [b"\xff", b"100-continue\xff", b"\xc3\xa9t\xc3\xa9"])
async def test_an_expect_header_that_is_no_utf8_is_a_417(env, path, expect):
    (client, _) = env
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nExpect: ".encode()
    (status, body) = await raw_status(client, head + expect + b"\r\nContent-Length: 0\r\n\r\n")
    assert (status, body) == (417, b"Unknown Expect")


async def test_expect_100_continue_still_works_everywhere(env):
    (client, _) = env
    for method, path, status in (
        ("POST", "/api/auth/login", 200),
        ("POST", "/nowhere", 404),
        ("DELETE", "/api/info", 405),
    ):
        body = b"user=admin&passwd=admin"
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            "Expect: 100-continue\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        (reader, writer) = await asyncio.open_connection("127.0.0.1", client.port)
        writer.write(head)
        assert (
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            == b"HTTP/1.1 100 Continue\r\n\r\n"
        )
        writer.write(body)
        answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        assert answer.startswith(f"HTTP/1.1 {status} ".encode()), answer


async def test_unknown_paths_and_methods_answer_as_aiohttp_does(env):
    (client, _) = env
    missing = await client.get("/nowhere/at/all", headers=ADMIN)
    assert (missing.status, await missing.text()) == (404, "404: Not Found")
    wrong = await client.delete("/api/info")
    assert (wrong.status, await wrong.text()) == (405, "405: Method Not Allowed")
    assert wrong.headers["Allow"] == "GET"
    assert (await client.post("/api/atx")).status == 405
    assert (await client.get("/api/atx/power")).status == 405


async def test_a_content_encoding_the_body_lacks_is_a_400(env):
    (client, _) = env
    for encoding in ("gzip", "deflate"):
        response = await client.post(
            "/api/auth/login",
            data=b"user=root",
            headers={
                "Content-Encoding": encoding,
                "Content-Type": "application/x-www-form-urlencoded",
                # aiohttp drops the connection after draining a body it cannot decode.
                "Connection": "close",
            },
        )
        assert response.status == 400
        assert (await response.json())["result"] == {
            "error": "HttpError",
            "error_msg": "Bad request body: RequestPayloadError",
        }


def multipart(*parts: bytes) -> bytes:
    return b"".join(b"--b\r\n" + part + b"\r\n" for part in parts) + b"--b--\r\n"


async def test_multipart_forms_take_text_parts_and_skip_files(env):
    (client, _) = env
    headers = {"Content-Type": "multipart/form-data; boundary=b"}
    good = multipart(
        b'Content-Disposition: form-data; name="user"; filename="f"\r\n\r\n' + b"x" * 200_000,
        b'Content-Disposition: form-data; name="user"\r\n\r\nadmin',
        b'Content-Disposition: form-data; name="passwd"\r\n\r\nadmin',
    )
    response = await client.post("/api/auth/login", data=io.BytesIO(good), headers=headers)
    assert response.status == 200
    # A file part, then a part that fails: no spooled file is left open (the suite turns a
    # ResourceWarning into an error), and the client gets a 400.
    broken = multipart(
        b'Content-Disposition: form-data; name="user"; filename="f"\r\n\r\nx',
        b'Content-Disposition: form-data; name="passwd"\r\n\r\n\xff',
    )
    response = await client.post("/api/auth/login", data=broken, headers=headers)
    assert response.status == 400
    assert (await response.json())["result"]["error"] == "ValidatorError"
    odd = multipart(
        b'Content-Disposition: form-data; name="user"\r\nContent-Type: text/plain; charset=nope'
        b"\r\n\r\nadmin"
    )
    assert (await client.post("/api/auth/login", data=odd, headers=headers)).status == 400
    huge = multipart(b'Content-Disposition: form-data; name="user"\r\n\r\n' + b"a" * (1 << 21))
    response = await client.post("/api/auth/login", data=io.BytesIO(huge), headers=headers)
    assert response.status in (400, 413)
