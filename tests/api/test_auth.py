# SPDX-License-Identifier: GPL-3.0-or-later
import asyncio
import base64
import re

import pyotp
import pytest
from passlib.hash import bcrypt

from kvmd.auth.htpasswd import write_entries
from tests.conftest import ADMIN, SAMPLES, sample


def basic(user: str, passwd: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{passwd}".encode()).decode()}


ALL = ["state", "video", "hid", "atx", "msd", "gpio", "streamer", "logs", "share", "admin"]


def assert_check(body, user, permissions=ALL, kind="user", roles=("admin",)):
    # PiKVM answers `{}`; the fields are additive (SECURITY.md §3.4).
    assert sample("auth_check_header.json") == {"ok": True, "result": {}}
    assert body == {
        "ok": True,
        "result": {
            "user": user,
            "kind": kind,
            "roles": list(roles),
            "permissions": permissions,
            "read_only": False,
            "expires": None,
        },
    }


async def test_no_credentials_is_401_as_pikvm(client):
    response = await client.get("/api/auth/check")
    assert response.status == 401
    assert await response.json() == sample("auth_check_noauth.json")
    assert "WWW-Authenticate" not in response.headers


async def test_headers(client):
    response = await client.get("/api/auth/check", headers=ADMIN)
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert_check(await response.json(), "admin")
    bad = await client.get("/api/auth/check", headers={**ADMIN, "X-KVMD-Passwd": "nope"})
    assert bad.status == 403
    assert await bad.json() == sample("auth_check_header_badpass.json")
    unknown = await client.get(
        "/api/auth/check", headers={"X-KVMD-User": "root", "X-KVMD-Passwd": "admin"}
    )
    assert unknown.status == 403


async def test_header_without_password_is_403(client):
    response = await client.get("/api/auth/check", headers={"X-KVMD-User": "admin"})
    assert response.status == 403


@pytest.mark.parametrize(
    ("headers", "status", "error"),
    [
        ({"X-KVMD-User": "Admin!", "X-KVMD-Passwd": "x"}, 400, "ValidatorError"),
        ({"X-KVMD-User": "admin", "X-KVMD-Passwd": "bad\u00e9"}, 400, "ValidatorError"),
        ({"Cookie": "auth_token=xyz"}, 400, "ValidatorError"),
        ({"Cookie": "auth_token=" + "0" * 64}, 403, "ForbiddenError"),
        ({"Authorization": "Basic !!!notbase64"}, 401, "UnauthorizedError"),
        (
            {"Authorization": "Basic " + base64.b64encode(b"admin").decode()},
            401,
            "UnauthorizedError",
        ),
        (
            # RFC 7617: the password is everything after the first colon (a wrong one here).
            {"Authorization": "Basic " + base64.b64encode(b"admin:a:b").decode()},
            403,
            "ForbiddenError",
        ),
        ({"Authorization": "Bearer something"}, 401, "UnauthorizedError"),
    ],
)
async def test_malformed_credentials(client, headers, status, error):
    response = await client.get("/api/auth/check", headers=headers)
    assert response.status == status
    body = await response.json()
    assert body["ok"] is False
    assert body["result"]["error"] == error


async def test_basic(client):
    response = await client.get("/api/auth/check", headers=basic("admin", "admin"))
    assert response.status == 200
    assert_check(await response.json(), "admin")
    assert sample("auth_check_basic.json") == {"ok": True, "result": {}}
    assert "WWW-Authenticate" not in response.headers
    wrong = await client.get("/api/auth/check", headers=basic("admin", "x"))
    assert wrong.status == 403
    assert "WWW-Authenticate" not in wrong.headers


async def test_no_fallthrough_after_bad_headers(client):
    # A wrong X-KVMD password is final even when valid Basic credentials follow.
    headers = {"X-KVMD-User": "admin", "X-KVMD-Passwd": "x", **basic("admin", "admin")}
    response = await client.get("/api/auth/check", headers=headers)
    assert response.status == 403


async def login(client, user="admin", passwd="admin", allow_redirects=True, **extra):  # noqa: S107
    data = {"user": user, "passwd": passwd, **extra}
    return await client.post("/api/auth/login", data=data, allow_redirects=allow_redirects)


async def test_login_sets_cookie_like_pikvm(client):
    response = await login(client)
    assert response.status == 200
    assert await response.json() == sample("auth_login.json")
    cookie = response.headers["Set-Cookie"]
    assert re.fullmatch(r"auth_token=[0-9a-f]{64}; HttpOnly; Path=/; SameSite=Strict", cookie)
    token = response.cookies["auth_token"].value
    client.session.cookie_jar.clear()
    check = await client.get("/api/auth/check", cookies={"auth_token": token})
    assert check.status == 200


async def test_login_failures(client):
    bad = await login(client, passwd="wrong")
    assert bad.status == 403
    assert await bad.json() == sample("auth_login_bad.json")
    assert "Set-Cookie" not in bad.headers
    missing = await client.post("/api/auth/login", data={"passwd": "admin"})
    assert missing.status == 400
    assert (await missing.json())["result"] == {
        "error": "ValidatorError",
        "error_msg": "None argument is not a valid user",
    }
    negative = await login(client, expire="-5")
    assert negative.status == 400


async def test_login_redirect(client):
    response = await login(client, redirect="/kvm/", allow_redirects=False)
    assert response.status == 302
    assert response.headers["Location"] == "/kvm/"
    assert response.cookies["auth_token"].value
    other = await login(client, redirect="https://evil.example/")
    assert other.status == 400


async def test_expired_token_is_403(client):
    token = (await login(client, expire="1")).cookies["auth_token"].value
    client.session.cookie_jar.clear()
    assert (await client.get("/api/auth/check", cookies={"auth_token": token})).status == 200
    await asyncio.sleep(1.05)
    response = await client.get("/api/auth/check", cookies={"auth_token": token})
    assert response.status == 403
    assert (await response.json())["result"]["error"] == "ForbiddenError"


async def test_global_expire_caps_sessions(make_client, make_config):
    (client, _) = await make_client(make_config(kvmd={"auth": {"expire": 1}}))
    token = (await login(client)).cookies["auth_token"].value
    client.session.cookie_jar.clear()
    await asyncio.sleep(1.05)
    assert (await client.get("/api/auth/check", cookies={"auth_token": token})).status == 403


async def test_logout_ends_every_session_of_the_user(client):
    first = (await login(client)).cookies["auth_token"].value
    second = (await login(client)).cookies["auth_token"].value
    client.session.cookie_jar.clear()
    response = await client.post("/api/auth/logout", cookies={"auth_token": first})
    assert response.status == 200
    assert await response.json() == {"ok": True, "result": {}}
    for token in (first, second):
        assert (await client.get("/api/auth/check", cookies={"auth_token": token})).status == 403


async def test_logout_needs_the_cookie(client):
    response = await client.post("/api/auth/logout", headers=ADMIN)
    assert response.status == 400
    assert (await response.json())["result"]["error"] == "ValidatorError"
    assert (await client.post("/api/auth/logout")).status == 401


async def test_totp(client, tmp_path):
    secret = pyotp.random_base32()
    (tmp_path / "totp.secret").write_text(secret + "\n")
    code = pyotp.TOTP(secret).now()
    ok = await client.get("/api/auth/check", headers={**ADMIN, "X-KVMD-Passwd": "admin" + code})
    assert ok.status == 200
    wrong_code = f"{(int(code) + 500_000) % 1_000_000:06d}"
    assert (
        await client.get(
            "/api/auth/check", headers={**ADMIN, "X-KVMD-Passwd": "admin" + wrong_code}
        )
    ).status == 403
    assert (await client.get("/api/auth/check", headers=ADMIN)).status == 403  # code missing
    assert (
        await client.get("/api/auth/check", headers=basic("admin", "admin" + code))
    ).status == 200
    assert (await login(client, passwd="admin" + code)).status == 200
    assert (await login(client, passwd="admin")).status == 403
    (tmp_path / "totp.secret").write_text("")  # emptied: 2FA is off again
    assert (await client.get("/api/auth/check", headers=ADMIN)).status == 200


async def test_password_cache_is_dropped_when_htpasswd_changes(client, tmp_path):
    assert (await client.get("/api/auth/check", headers=ADMIN)).status == 200
    write_entries(tmp_path / "htpasswd", {"admin": bcrypt.using(rounds=4).hash("changed")})
    assert (await client.get("/api/auth/check", headers=ADMIN)).status == 403
    assert (
        await client.get("/api/auth/check", headers={**ADMIN, "X-KVMD-Passwd": "changed"})
    ).status == 200


async def test_auth_disabled_opens_everything(make_client, make_config):
    (client, _) = await make_client(make_config(kvmd={"auth": {"enabled": False}}))
    assert (await client.get("/api/auth/check")).status == 200
    assert (await client.get("/api/atx")).status == 200
    response = await login(client, passwd="whatever")
    assert response.status == 200
    assert "Set-Cookie" not in response.headers


async def test_unauth_paths(make_client, make_config):
    (client, _) = await make_client(make_config(kvmd={"auth": {"unauth_paths": ["/info"]}}))
    assert (await client.get("/api/info")).status == 200
    assert (await client.get("/info")).status == 200
    assert (await client.get("/api/atx")).status == 401


async def test_both_path_prefixes(client):
    for path in ("/api/auth/check", "/auth/check"):
        assert (await client.get(path, headers=ADMIN)).status == 200


async def test_unknown_path_is_plain_404_even_without_credentials(client):
    response = await client.get("/api/nonexistent")
    assert response.status == 404
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert await response.text() == (SAMPLES / "not_found.txt").read_text()


async def test_unreadable_totp_secret_fails_closed(client, tmp_path):
    (tmp_path / "totp.secret").mkdir()  # reading a directory fails, even for root
    response = await client.get("/api/auth/check", headers=ADMIN)
    assert response.status == 403
    assert (await response.json())["result"]["error"] == "ForbiddenError"


async def test_check_require(client):
    ok = await client.get("/api/auth/check?require=video,hid", headers=ADMIN)
    assert ok.status == 200
    bad = await client.get("/api/auth/check?require=teleport", headers=ADMIN)
    assert bad.status == 400
    assert (await bad.json())["result"]["error"] == "ValidatorError"
    assert (await client.get("/api/auth/check?require=video")).status == 401
