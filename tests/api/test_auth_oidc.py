# SPDX-License-Identifier: GPL-3.0-or-later
"""Single sign-on with OpenID Connect through the API, against a real provider.

The provider is oidc-provider-mock on 127.0.0.1 (discovery, keys, RS256 ID tokens, a
login form the test posts as a browser would). The sign-in is the browser's path: the
daemon's login redirect, the provider's form, the callback, then the session cookie.
"""

import asyncio
import base64
import hashlib
import json
import urllib.parse

import pytest
from yarl import URL

from tests.authservers import oidc_provider
from tests.conftest import ADMIN

VIEWER = ["state", "video"]
OPERATOR = ["state", "video", "hid", "atx", "msd", "gpio", "streamer", "share"]
BROWSER = {"Accept": "text/html,application/xhtml+xml"}


@pytest.fixture
def provider():
    with oidc_provider() as provider:
        provider.set_user("alice", {"preferred_username": "alice", "groups": ["kvm-ops"]})
        provider.set_user("vera", {"preferred_username": "Vera", "groups": ["kvm-viewers"]})
        provider.set_user("nobody", {"preferred_username": "nobody", "groups": ["staff"]})
        yield provider


def sso_config(provider, **oidc) -> dict[str, object]:
    return {
        "auth": {
            "role_map": {"kvm-ops": "operator", "kvm-viewers": "viewer"},
            "oidc": {
                "providers": {
                    "mock": {
                        "title": "Mock IdP",
                        "issuer": provider.issuer,
                        "client_id": "kvmd",
                        "client_secret": "s3cret/+",
                        "timeout": 2.0,
                    }
                },
                **oidc,
            },
        }
    }


@pytest.fixture
async def client(make_client, make_config, provider):
    (client, _) = await make_client(make_config(kvmd=sso_config(provider)))
    return client


async def start(client, redirect="/"):
    """The daemon's redirect to the provider: (the provider's URL, its query)."""
    response = await client.get(
        "/api/auth/oidc/mock/login", params={"redirect": redirect}, allow_redirects=False
    )
    assert response.status == 302, await response.text()
    # Lax: the provider's redirect back is a cross-site navigation, which Strict would strip.
    set_cookie = response.headers["Set-Cookie"]
    assert set_cookie.startswith("kvmd_oidc_state=")
    assert "HttpOnly" in set_cookie
    assert "SameSite=Lax" in set_cookie
    location = URL(response.headers["Location"])
    return (location, dict(location.query))


async def sign_in(client, sub, *, headers=None):
    """The whole browser path; the callback's response."""
    (location, _) = await start(client)
    # The provider's login form posts `sub` back to the same URL (a real user would type).
    async with client.session.post(location, data={"sub": sub}, allow_redirects=False) as answer:
        assert answer.status == 302, await answer.text()
        back = URL(answer.headers["Location"])
    assert back.path == "/api/auth/oidc/mock/callback"
    return await client.get(back.path_qs, allow_redirects=False, headers=headers)


async def whoami(client):
    response = await client.get("/api/auth/check")
    return (response.status, (await response.json())["result"])


async def test_the_login_page_lists_the_providers(client):
    response = await client.get("/api/auth/oidc")
    assert (await response.json())["result"] == {
        "providers": [{"name": "mock", "title": "Mock IdP"}]
    }


async def test_the_redirect_asks_for_a_code_with_pkce_nonce_and_the_callback(client, provider):
    (location, query) = await start(client)
    assert str(location.origin()) == provider.issuer
    assert location.path == "/oauth2/authorize"
    assert query["response_type"] == "code"
    assert query["client_id"] == "kvmd"
    assert query["scope"] == "openid profile email"
    assert query["code_challenge_method"] == "S256"
    assert len(query["state"]) >= 43
    assert len(query["nonce"]) >= 43
    host = client.server.host
    port = client.server.port
    assert query["redirect_uri"] == f"http://{host}:{port}/api/auth/oidc/mock/callback"
    # The browser keeps the state in a cookie that goes along the provider's redirect back.
    cookie = client.session.cookie_jar.filter_cookies(client.make_url("/"))["kvmd_oidc_state"]
    assert cookie.value == query["state"]


async def test_a_sign_in_opens_a_session_with_the_roles_of_the_groups(client, provider):
    response = await sign_in(client, "alice")
    assert response.status == 302
    assert response.headers["Location"] == "/"
    (status, me) = await whoami(client)
    assert status == 200
    assert (me["user"], me["roles"], me["permissions"]) == ("alice", ["operator"], OPERATOR)
    # The code went back with the PKCE verifier whose hash the redirect carried.
    recorded = provider.recorded()
    (query, form) = (recorded["authorize"][-1], recorded["token"][-1])
    digest = hashlib.sha256(form["code_verifier"].encode()).digest()
    assert base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == query["code_challenge"]
    assert form["grant_type"] == "authorization_code"
    assert form["redirect_uri"] == query["redirect_uri"]
    # HTTP Basic with both halves form-encoded first (RFC 6749 §2.3.1).
    secret = base64.b64decode(recorded["token_auth"][-1].removeprefix("Basic ")).decode()
    assert secret == "kvmd:s3cret%2F%2B"
    # The session is an ordinary one: the API with the cookie, and logout ends it.
    assert (await client.post("/api/hid/print", data=b"x")).status != 403
    assert (await client.post("/api/auth/logout")).status == 200
    assert (await whoami(client))[0] == 403  # the cookie's session is over


async def test_a_viewer_group_gets_view_only_rights(client):
    await sign_in(client, "vera")
    (status, me) = await whoami(client)
    # The claim's "Vera" is the user vera: providers compare names without case.
    assert (status, me["user"], me["roles"], me["permissions"]) == (200, "vera", ["viewer"], VIEWER)
    response = await client.post("/api/hid/print", data=b"x")
    assert response.status == 403
    assert (await response.json())["result"]["error"] == "PermissionDeniedError"


async def test_a_group_change_is_the_new_role_at_the_next_sign_in(client, provider):
    await sign_in(client, "alice")
    assert (await whoami(client))[1]["roles"] == ["operator"]
    provider.set_user("alice", {"preferred_username": "alice", "groups": ["kvm-viewers"]})
    await sign_in(client, "alice")
    (_, me) = await whoami(client)
    assert (me["roles"], me["permissions"]) == (["viewer"], VIEWER)


async def test_a_user_no_group_maps_is_refused_unless_the_owner_allows(
    make_client, make_config, provider
):
    (client, _) = await make_client(make_config(kvmd=sso_config(provider)))
    response = await sign_in(client, "nobody")
    assert response.status == 403
    assert (await response.json())["result"][
        "error_msg"
    ] == "None of 'nobody''s groups maps to a role here"
    assert (await whoami(client))[0] == 401
    (client, _) = await make_client(make_config(kvmd=sso_config(provider, allow_unmapped=True)))
    assert (await sign_in(client, "nobody")).status == 302
    assert (await whoami(client))[1]["roles"] == ["admin"]  # auth.default_role: PiKVM's admin


async def test_a_provider_user_named_like_a_local_user_is_refused(client, provider):
    provider.set_user("evil", {"preferred_username": "admin", "groups": ["kvm-ops"]})
    response = await sign_in(client, "evil")
    assert response.status == 403
    assert "'admin' is a local user" in (await response.json())["result"]["error_msg"]
    assert (await whoami(client))[0] == 401
    # The local admin still logs in with the password beside single sign-on.
    response = await client.post(
        "/api/auth/login", data={"user": "admin", "passwd": ADMIN["X-KVMD-Passwd"]}
    )
    assert response.status == 200


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("_key.0123456789abcdef", "usernames starting with '_key.' are reserved"),
        ("John Doe", "invalid username 'john doe': use at most 128 of a-z 0-9 @ . _ -,"),
    ],
)
async def test_a_user_name_kvmd_does_not_accept_is_refused(client, provider, name, problem):
    provider.set_user("odd", {"preferred_username": name, "groups": ["kvm-ops"]})
    response = await sign_in(client, "odd")
    assert response.status == 403
    message = (await response.json())["result"]["error_msg"]
    assert message.startswith(f"The provider's user name won't do here: {problem}")
    assert (await whoami(client))[0] == 401


async def test_a_failure_in_a_browser_goes_back_to_the_login_page_with_the_reason(client):
    response = await sign_in(client, "nobody", headers=BROWSER)
    assert response.status == 303
    (path, fragment) = response.headers["Location"].split("#")
    assert path == "/"
    assert dict(urllib.parse.parse_qsl(fragment)) == {
        "sso_error": "None of 'nobody''s groups maps to a role here"
    }


async def test_a_callback_without_its_browsers_cookie_or_twice_is_refused(client, provider):
    (location, query) = await start(client)
    async with client.session.post(
        location, data={"sub": "alice"}, allow_redirects=False
    ) as answer:
        back = URL(answer.headers["Location"])
    # Another browser (no state cookie): a forged or stolen callback logs no one in.
    client.session.cookie_jar.clear()
    response = await client.get(back.path_qs, allow_redirects=False)
    assert response.status == 400
    assert (await response.json())["result"]["error"] == "SignOnExpiredError"
    client.session.cookie_jar.update_cookies({"kvmd_oidc_state": query["state"]})
    assert (await client.get(back.path_qs, allow_redirects=False)).status == 302
    # The state is spent: the same callback again is refused.
    client.session.cookie_jar.update_cookies({"kvmd_oidc_state": query["state"]})
    assert (await client.get(back.path_qs, allow_redirects=False)).status == 400


async def test_the_providers_refusal_is_a_403_naming_it(client):
    (_, query) = await start(client)
    response = await client.get(
        "/api/auth/oidc/mock/callback",
        params={"state": query["state"], "error": "access_denied", "error_description": "Nope"},
    )
    assert response.status == 403
    assert (await response.json())["result"][
        "error_msg"
    ] == "The provider refused the sign-in: Nope"


async def test_a_forged_code_is_refused_by_the_provider_and_kvmd(client):
    (_, query) = await start(client)
    response = await client.get(
        "/api/auth/oidc/mock/callback", params={"state": query["state"], "code": "forged"}
    )
    assert response.status == 403
    assert (await response.json())["result"]["error"] == "SignOnRefusedError"


async def test_an_unknown_provider_is_a_404_and_a_bad_redirect_a_400(client):
    response = await client.get("/api/auth/oidc/nope/login", allow_redirects=False)
    assert response.status == 404
    response = await client.get(
        "/api/auth/oidc/mock/login",
        params={"redirect": "https://evil.example"},
        allow_redirects=False,
    )
    assert response.status == 400
    assert (await response.json())["result"]["error"] == "ValidatorError"


async def test_a_provider_that_is_down_is_a_503(client, provider):
    provider.fail_with(500)
    response = await client.get("/api/auth/oidc/mock/login", allow_redirects=False)
    assert response.status == 503
    result = (await response.json())["result"]
    assert result["error"] == "AuthServiceError"
    assert "/.well-known/openid-configuration answered 500" in result["error_msg"]


async def test_sign_ins_are_in_the_audit_trail(client, tmp_path):
    await sign_in(client, "alice")
    await sign_in(client, "nobody")
    lines = (tmp_path / "audit.log").read_text().splitlines()
    records = [r for r in map(json.loads, lines) if r["action"] == "auth.sso"]
    assert [(r["principal"], r["result"]) for r in records] == [
        ("alice", "ok"),
        ("nobody", "SignOnRefusedError"),
    ]
    assert records[0]["args"]["code"] == "***"


async def test_bad_sign_ins_in_parallel_are_each_a_4xx_and_no_traceback(client, caplog):
    # Forged callbacks, unknown providers and foreign redirects, all at once.
    async def status(path: str, **params: str) -> int:
        response = await client.get(path, params=params, allow_redirects=False)
        await response.read()
        return response.status

    forged = [status("/api/auth/oidc/mock/callback", state=f"s{n}", code="x") for n in range(20)]
    refused = [
        status("/api/auth/oidc/mock/callback", state=f"s{n}", error="access_denied")
        for n in range(10)
    ]
    unknown = [status(f"/api/auth/oidc/nope{n}/login") for n in range(10)]
    foreign = [status("/api/auth/oidc/mock/login", redirect="//evil.example") for _ in range(10)]
    answers = await asyncio.gather(*forged, *refused, *unknown, *foreign)
    assert answers == [400] * 20 + [403] * 10 + [404] * 10 + [400] * 10
    assert "Traceback" not in caplog.text
    assert (await whoami(client))[0] == 401  # none of it opened a session
