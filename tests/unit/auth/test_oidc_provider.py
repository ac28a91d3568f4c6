# SPDX-License-Identifier: GPL-3.0-or-later
"""The OpenID Connect relying party against a fake provider whose ID tokens each test crafts.

The fake is a real HTTP server on 127.0.0.1 (discovery, keys, token, user info). Its ID
tokens are signed with keys generated here, so each test can forge what a broken or
hostile provider would send: another key under the same kid, a symmetric or no signature,
another audience or issuer, an old token, a rotated key. tests/api/test_auth_oidc.py
covers the good path against a full provider.
"""

import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import json
import re
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiohttp import web
from joserfc import jwt
from joserfc.jwk import KeySet, OctKey, RSAKey

from kvmd.auth.oidc import provider as provider_module
from kvmd.auth.oidc.config import OidcProviderConfig
from kvmd.auth.oidc.identity import Identity, SignOnRefusedError
from kvmd.auth.oidc.provider import OidcProvider
from kvmd.auth.plugins import AuthServiceError

CLIENT_ID = "kvmd"
# Characters that HTTP Basic's form-encoding must escape (RFC 6749 §2.3.1); long enough
# for an HS256 key that joserfc does not warn about.
SECRET = "s3cret/+:kvmd client"
REDIRECT = "https://kvm.example/api/auth/oidc/fake/callback"
CODE = "code-of-alice"
ACCESS_TOKEN = "access-of-alice"
SUBJECT = "0f6c1d2e-alice"
LOGGER = "kvmd.auth.oidc.provider"

# Generated once: a 2048-bit RSA key takes a noticeable fraction of a second.
K1 = RSAKey.generate_key(2048, parameters={"kid": "k1"})
K2 = RSAKey.generate_key(2048, parameters={"kid": "k2"})
IMPOSTOR = RSAKey.generate_key(2048, parameters={"kid": "k1"})  # not the provider's


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raises(error: type[Exception], msg: str) -> Any:
    """The error, with exactly this message."""
    return pytest.raises(error, match=f"^{re.escape(msg)}$")


def unavailable(why: str) -> Any:
    return raises(AuthServiceError, f"fake can't be reached for a sign-in: {why}")


class FakeProvider:
    """An OpenID provider whose every answer the test sets through these attributes."""

    def __init__(self) -> None:
        self.issuer = ""  # its URL, once it listens
        self.discovery_issuer = ""  # the issuer its discovery names; its own when empty
        self.algorithms = ["RS256"]  # id_token_signing_alg_values_supported
        self.keys = [K1]  # served (their public halves) at /jwks
        # The ID token: this header, signed with this key (None: unsigned, as alg "none"),
        # over these claims plus the nonce of the authorize request; a claim set to None
        # is left out.
        self.header: dict[str, Any] = {"alg": "RS256", "kid": "k1"}
        self.signing_key: RSAKey | OctKey | None = K1
        now = int(time.time())
        self.claims: dict[str, Any] = {
            "iss": "",  # its URL, once it listens
            "aud": CLIENT_ID,
            "sub": SUBJECT,
            "iat": now,
            "exp": now + 300,
            "preferred_username": "Alice",
            "groups": ["kvm-ops", "staff"],
        }
        self.userinfo: dict[str, Any] = {"sub": SUBJECT}
        # Canned answers by path (status, JSON body), instead of the real handler's.
        self.answers: dict[str, tuple[int, object]] = {}
        self.hits: Counter[str] = Counter()  # requests by path
        # What the login page remembered of the authorize request (see sign_in()).
        self.authorized: dict[str, str] = {}
        self.token_requests: list[tuple[dict[str, str], dict[str, str]]] = []

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._count_and_answer])
        app.router.add_get("/.well-known/openid-configuration", self._discovery)
        app.router.add_get("/jwks", self._jwks)
        app.router.add_post("/token", self._token)
        app.router.add_get("/userinfo", self._userinfo)
        return app

    def id_token(self) -> str:
        claims = {"nonce": self.authorized.get("nonce"), **self.claims}
        claims = {name: value for (name, value) in claims.items() if value is not None}
        if self.signing_key is None:
            parts = [b64url(json.dumps(part).encode()) for part in (self.header, claims)]
            return ".".join([*parts, ""])
        return jwt.encode(self.header, claims, self.signing_key)

    @web.middleware
    async def _count_and_answer(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.hits[request.path] += 1
        if request.path in self.answers:
            (status, body) = self.answers[request.path]
            return web.json_response(body, status=status)
        response: web.StreamResponse = await handler(request)
        return response

    async def _discovery(self, _: web.Request) -> web.Response:
        return web.json_response(
            {
                "issuer": self.discovery_issuer or self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "userinfo_endpoint": f"{self.issuer}/userinfo",
                "id_token_signing_alg_values_supported": self.algorithms,
            }
        )

    async def _jwks(self, _: web.Request) -> web.Response:
        return web.json_response(KeySet(list(self.keys)).as_dict(private=False))

    async def _token(self, request: web.Request) -> web.Response:
        form = {name: str(value) for (name, value) in (await request.post()).items()}
        self.token_requests.append((dict(request.headers), form))
        # RFC 7636 §4.6: the verifier must hash to the challenge of the authorize request.
        challenge = b64url(hashlib.sha256(form.get("code_verifier", "").encode()).digest())
        if (
            form.get("grant_type") != "authorization_code"
            or form.get("code") != CODE
            or form.get("redirect_uri") != self.authorized.get("redirect_uri")
            or challenge != self.authorized.get("code_challenge")
        ):
            error = {"error": "invalid_grant", "error_description": "PKCE verification failed"}
            return web.json_response(error, status=400)
        return web.json_response(
            {"id_token": self.id_token(), "access_token": ACCESS_TOKEN, "token_type": "Bearer"}
        )

    async def _userinfo(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {ACCESS_TOKEN}":
            return web.json_response({"error": "invalid_token"}, status=401)
        return web.json_response(self.userinfo)


class Clock:
    """The provider module's monotonic clock, which a test moves past the refetch limit."""

    def __init__(self) -> None:
        self.offset = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.offset


@pytest.fixture
async def fake(aiohttp_server) -> FakeProvider:
    fake = FakeProvider()
    server = await aiohttp_server(fake.app())
    fake.issuer = fake.claims["iss"] = str(server.make_url("/")).rstrip("/")
    return fake


@pytest.fixture
async def make_provider(fake):
    providers: list[OidcProvider] = []

    def make(**options: Any) -> OidcProvider:
        config = {"issuer": fake.issuer, "client_id": CLIENT_ID, "client_secret": SECRET}
        providers.append(OidcProvider("fake", OidcProviderConfig(**{**config, **options})))
        return providers[-1]

    yield make
    for provider in providers:
        await provider.close()


@pytest.fixture
def provider(make_provider) -> OidcProvider:
    return make_provider()


@pytest.fixture
def refused(caplog) -> Callable[[str], contextlib.AbstractContextManager[None]]:
    """Expects the ID token to be refused, and joserfc's reason why in kvmd's log."""

    @contextlib.contextmanager
    def expect(reason: str) -> Iterator[None]:
        caplog.clear()
        with raises(SignOnRefusedError, "The ID token of fake failed its checks"):
            yield
        logged = [each.getMessage() for each in caplog.records if each.name == LOGGER]
        assert logged == [f"fake: an ID token failed its checks: {reason}"]

    return expect


@pytest.fixture
def clock(monkeypatch) -> Clock:
    # Only the provider module's `time`: asyncio's own clock must keep running true.
    clock = Clock()
    monkeypatch.setattr(provider_module, "time", clock)
    return clock


async def sign_in(provider: OidcProvider, fake: FakeProvider) -> Identity:
    """The browser's part: to the provider's login page and back to kvmd with the code."""
    (url, challenge) = await provider.begin(REDIRECT)
    fake.authorized = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    return await provider.finish(challenge, CODE)


# --- the good path ---------------------------------------------------------------------


async def test_a_good_token_is_the_identity(provider, fake):
    (url, challenge) = await provider.begin(REDIRECT)
    assert url.startswith(f"{fake.issuer}/authorize?")
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    assert query == {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT,
        "scope": "openid profile email",
        "state": challenge.state,
        "nonce": challenge.nonce,
        "code_challenge": b64url(hashlib.sha256(challenge.verifier.encode()).digest()),
        "code_challenge_method": "S256",
    }
    fake.authorized = query
    identity = await provider.finish(challenge, CODE)
    assert identity == Identity(user="alice", groups=("kvm-ops", "staff"), subject=SUBJECT)
    assert fake.hits["/userinfo"] == 0  # everything was in the ID token


async def test_a_wrong_verifier_is_refused(provider, fake):
    (url, challenge) = await provider.begin(REDIRECT)
    fake.authorized = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    other = dataclasses.replace(challenge, verifier=challenge.verifier[::-1])
    with raises(SignOnRefusedError, "fake refused the sign-in: PKCE verification failed"):
        await provider.finish(other, CODE)


# --- the signature ---------------------------------------------------------------------


async def test_another_key_under_the_same_kid_is_refused(provider, fake, refused):
    fake.signing_key = IMPOSTOR
    with refused("bad_signature: "):
        await sign_in(provider, fake)


@pytest.mark.parametrize("alg", ["HS256", "none"])
async def test_symmetric_and_unsigned_tokens_are_refused_even_when_listed(
    provider, fake, refused, alg
):
    # HS256 keyed by the client secret, as a provider could sign; kvmd still refuses it.
    fake.algorithms = ["RS256", "HS256", "none"]
    fake.header = {"alg": alg, "kid": "k1"}
    fake.signing_key = OctKey.import_key(SECRET) if alg == "HS256" else None
    with refused(f"unsupported_algorithm: Algorithm of '{alg}' is not allowed"):
        await sign_in(provider, fake)


async def test_a_provider_with_no_acceptable_algorithm_is_unavailable(provider, fake):
    fake.algorithms = ["HS256", "none"]
    with unavailable("the provider signs ID tokens with no algorithm kvmd accepts"):
        await sign_in(provider, fake)


# --- the claims ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claim", "value", "reason"),
    [
        ("aud", "another-client", "invalid_claim: Invalid claim: 'aud'"),
        ("aud", ["another-client", "a-third-client"], "invalid_claim: Invalid claim: 'aud'"),
        ("iss", "https://issuer.example", "invalid_claim: Invalid claim: 'iss'"),
        ("nonce", "a-nonce-of-another-sign-in", "invalid_claim: Invalid claim: 'nonce'"),
        ("nonce", None, "missing_claim: Missing claim: 'nonce'"),
        ("sub", None, "missing_claim: Missing claim: 'sub'"),
        ("exp", None, "missing_claim: Missing claim: 'exp'"),
        ("iat", None, "missing_claim: Missing claim: 'iat'"),
        ("iss", None, "missing_claim: Missing claim: 'iss'"),
        ("aud", None, "missing_claim: Missing claim: 'aud'"),
    ],
)
async def test_a_token_with_a_wrong_or_missing_claim_is_refused(
    provider, fake, refused, claim, value, reason
):
    fake.claims[claim] = value
    with refused(reason):
        await sign_in(provider, fake)


async def test_expiry_has_a_minute_of_leeway_and_no_more(provider, fake, refused):
    now = int(time.time())
    fake.claims.update(iat=now - 330, exp=now - 30)
    assert (await sign_in(provider, fake)).user == "alice"
    fake.claims.update(iat=now - 420, exp=now - 120)
    with refused("expired_token: The token is expired"):
        await sign_in(provider, fake)


async def test_a_token_issued_in_the_future_is_refused(provider, fake, refused):
    now = int(time.time())
    fake.claims.update(iat=now + 600, exp=now + 900)
    with refused("invalid_claim: The token was issued in the future"):
        await sign_in(provider, fake)


async def test_several_audiences_need_kvmd_as_the_authorized_party(provider, fake):
    elsewhere = "The ID token of fake was issued to another client"
    fake.claims["aud"] = [CLIENT_ID, "another-client"]
    with raises(SignOnRefusedError, elsewhere):
        await sign_in(provider, fake)
    fake.claims["azp"] = "another-client"
    with raises(SignOnRefusedError, elsewhere):
        await sign_in(provider, fake)
    fake.claims["azp"] = CLIENT_ID
    assert await sign_in(provider, fake) == Identity("alice", ("kvm-ops", "staff"), SUBJECT)


async def test_an_authorized_party_named_must_be_kvmd_even_with_one_audience(provider, fake):
    fake.claims["azp"] = "another-client"
    with raises(SignOnRefusedError, "The ID token of fake was issued to another client"):
        await sign_in(provider, fake)


# --- key rotation ----------------------------------------------------------------------


async def test_a_rotated_key_is_fetched_once_and_accepted(provider, fake, clock):
    assert (await sign_in(provider, fake)).user == "alice"
    assert fake.hits["/jwks"] == 1
    fake.keys = [K1, K2]
    (fake.signing_key, fake.header["kid"]) = (K2, "k2")
    clock.offset += 31
    assert (await sign_in(provider, fake)).user == "alice"
    assert (await sign_in(provider, fake)).user == "alice"
    assert fake.hits["/jwks"] == 2
    assert fake.hits["/.well-known/openid-configuration"] == 1  # cached for an hour


async def test_an_unknown_kid_refetches_at_most_every_30_seconds(provider, fake, clock, refused):
    assert (await sign_in(provider, fake)).user == "alice"
    # Rotated 10 s after kvmd fetched the keys: too soon to fetch them again.
    fake.keys = [K2]
    (fake.signing_key, fake.header["kid"]) = (K2, "k2")
    clock.offset += 10
    with refused("invalid_key_id: No key for kid: 'k2'"):
        await sign_in(provider, fake)
    assert fake.hits["/jwks"] == 1
    clock.offset += 21
    assert (await sign_in(provider, fake)).user == "alice"
    assert fake.hits["/jwks"] == 2
    # A kid the provider does not publish either: one refetch, then none for 30 s.
    (fake.signing_key, fake.header["kid"]) = (IMPOSTOR, "k3")
    clock.offset += 31
    for _ in range(3):
        with refused("invalid_key_id: No key for kid: 'k3'"):
            await sign_in(provider, fake)
    assert fake.hits["/jwks"] == 3


async def test_a_key_set_without_keys_is_unavailable(provider, fake):
    fake.answers["/jwks"] = (200, {"not": "a key set"})
    with unavailable(f"{fake.issuer}/jwks: not a key set: 'keys'"):
        await sign_in(provider, fake)


# --- user info -------------------------------------------------------------------------


async def test_groups_missing_from_the_token_are_read_from_the_user_info(provider, fake):
    fake.claims["groups"] = None
    fake.userinfo = {"sub": SUBJECT, "groups": ["kvm-viewers"], "preferred_username": "mallory"}
    identity = await sign_in(provider, fake)
    # The ID token's own claims win over the user info's.
    assert identity == Identity(user="alice", groups=("kvm-viewers",), subject=SUBJECT)
    assert fake.hits["/userinfo"] == 1  # with the bearer token, or the fake answers 401


@pytest.mark.parametrize("userinfo", [{"sub": "someone-else", "groups": ["kvm-ops"]}, {}])
async def test_user_info_about_another_subject_is_refused(provider, fake, userinfo):
    fake.claims["groups"] = None
    fake.userinfo = userinfo
    with raises(SignOnRefusedError, "The user info of fake is about another user"):
        await sign_in(provider, fake)


async def test_no_user_name_anywhere_is_refused(provider, fake):
    fake.claims["preferred_username"] = None
    with raises(SignOnRefusedError, "The ID token of fake has no 'preferred_username' claim"):
        await sign_in(provider, fake)


# --- an unavailable or misconfigured provider ------------------------------------------


async def test_discovery_naming_another_issuer_is_unavailable(provider, fake):
    fake.discovery_issuer = "https://issuer.example"
    discovery = f"{fake.issuer}/.well-known/openid-configuration"
    with unavailable(f"{discovery} names the issuer 'https://issuer.example'"):
        await provider.begin(REDIRECT)


async def test_a_failing_discovery_is_unavailable(provider, fake):
    fake.answers["/.well-known/openid-configuration"] = (500, {})
    with unavailable(f"{fake.issuer}/.well-known/openid-configuration answered 500"):
        await provider.begin(REDIRECT)


async def test_a_provider_that_never_answers_is_unavailable_in_time(make_provider):
    connections: list[asyncio.StreamWriter] = []

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)  # and never a byte back

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    issuer = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    provider = make_provider(issuer=issuer, timeout=0.3)
    try:
        async with asyncio.timeout(2):
            with unavailable(f"{issuer}/.well-known/openid-configuration: TimeoutError"):
                await provider.begin(REDIRECT)
    finally:
        for writer in connections:
            writer.close()
        server.close()
        await server.wait_closed()
    assert len(connections) == 1


async def test_a_refused_code_names_the_providers_reason(provider, fake):
    fake.answers["/token"] = (400, {"error": "invalid_grant", "error_description": "Code expired"})
    with raises(SignOnRefusedError, "fake refused the sign-in: Code expired"):
        await sign_in(provider, fake)


@pytest.mark.parametrize(
    ("status", "error"), [(401, "invalid_client"), (400, "invalid_client"), (401, "other")]
)
async def test_kvmds_own_client_credentials_refused_are_unavailable(provider, fake, status, error):
    # A wrong client secret is the owner's config to fix, not the user's sign-in: a 503.
    fake.answers["/token"] = (status, {"error": error})
    with unavailable(f"{fake.issuer}/token refused kvmd's client credentials"):
        await sign_in(provider, fake)


async def test_a_failing_token_endpoint_is_unavailable(provider, fake):
    fake.answers["/token"] = (502, {})
    with unavailable(f"{fake.issuer}/token answered 502"):
        await sign_in(provider, fake)


# --- client authentication -------------------------------------------------------------


async def test_basic_client_auth_form_encodes_both_halves(make_provider, fake):
    assert (await sign_in(make_provider(client_auth="basic"), fake)).user == "alice"
    (headers, form) = fake.token_requests[0]
    pair = f"{CLIENT_ID}:{urllib.parse.quote(SECRET, safe='')}"
    assert pair == "kvmd:s3cret%2F%2B%3Akvmd%20client"
    assert headers["Authorization"] == "Basic " + base64.b64encode(pair.encode()).decode()
    assert "client_secret" not in form
    assert form["client_id"] == CLIENT_ID


async def test_post_client_auth_sends_the_secret_in_the_form(make_provider, fake):
    assert (await sign_in(make_provider(client_auth="post"), fake)).user == "alice"
    (headers, form) = fake.token_requests[0]
    assert "Authorization" not in headers
    assert form["client_secret"] == SECRET
    assert form["client_id"] == CLIENT_ID


async def test_a_public_client_sends_no_secret(make_provider, fake):
    assert (await sign_in(make_provider(client_secret=""), fake)).user == "alice"
    (headers, form) = fake.token_requests[0]
    assert "Authorization" not in headers
    assert "client_secret" not in form
