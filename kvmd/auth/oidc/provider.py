# SPDX-License-Identifier: GPL-3.0-or-later
"""One OpenID Connect provider: discovery, the code exchange, and the ID token's checks.

The ID token comes straight from the token endpoint over TLS, and is still checked in
full (signature against the provider's published keys, issuer, audience, expiry, nonce),
as OpenID Connect Core §3.1.3.7 asks. The provider's documents are cached: discovery for
an hour, keys until a token names a key that is not among them.
"""

import base64
import hashlib
import logging
import secrets
import time
import urllib.parse
from typing import Any

import aiohttp
import msgspec
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

import kvmd
from kvmd.auth.oidc.config import OidcProviderConfig
from kvmd.auth.oidc.identity import Challenge, Identity, SignOnRefusedError
from kvmd.auth.plugins import AuthServiceError, read_bounded

logger = logging.getLogger(__name__)

# A provider's documents and answers are small; anything bigger is not read.
_MAX_DOCUMENT = 256 * 1024
_DISCOVERY_TTL = 3600.0
# A token naming an unknown key refetches the keys (a rotation), at most this often.
_KEYS_REFETCH = 30.0
# Clocks of boards without a real-time clock drift; a minute of slack for exp and iat.
_LEEWAY = 60
# Symmetric (HS*, keyed by the client secret) and unsigned tokens are refused.
_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


class _Discovery(msgspec.Struct, frozen=True):
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None = None
    end_session_endpoint: str | None = None
    id_token_signing_alg_values_supported: list[str] = msgspec.field(
        default_factory=lambda: ["RS256"]
    )


class _TokenAnswer(msgspec.Struct, frozen=True):
    id_token: str
    access_token: str = ""


class OidcProvider:
    def __init__(self, name: str, config: OidcProviderConfig) -> None:
        self.name = name
        self.title = config.title or name
        self._config = config
        self._issuer = config.issuer.rstrip("/")
        self._session: aiohttp.ClientSession | None = None
        self._discovery: tuple[float, _Discovery] | None = None
        self._keys: tuple[float, KeySet] | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._config.timeout),
                connector=aiohttp.TCPConnector(ssl=self._config.verify),
                headers={"User-Agent": f"KVMD/{kvmd.__version__}", "Accept": "application/json"},
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    # --- the two halves of a sign-in -------------------------------------------------

    async def begin(self, redirect_uri: str) -> tuple[str, Challenge]:
        """The provider's login URL for a new sign-in (authorization code flow with PKCE)."""
        discovery = await self._discover()
        challenge = Challenge(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            verifier=secrets.token_urlsafe(48),
            redirect_uri=self._config.redirect_uri or redirect_uri,
        )
        digest = hashlib.sha256(challenge.verifier.encode()).digest()
        query = {
            "response_type": "code",
            "client_id": self._config.client_id,
            "redirect_uri": challenge.redirect_uri,
            "scope": " ".join(self._config.scopes),
            "state": challenge.state,
            "nonce": challenge.nonce,
            "code_challenge": base64.urlsafe_b64encode(digest).rstrip(b"=").decode(),
            "code_challenge_method": "S256",
        }
        endpoint = discovery.authorization_endpoint
        joiner = "&" if urllib.parse.urlsplit(endpoint).query else "?"
        return (endpoint + joiner + urllib.parse.urlencode(query), challenge)

    async def finish(self, challenge: Challenge, code: str) -> Identity:
        """Exchange the code, check the ID token, and read the user and groups from it."""
        discovery = await self._discover()
        answer = await self._exchange(discovery, challenge, code)
        claims = await self._verify(discovery, answer.id_token, challenge.nonce)
        config = self._config
        if (
            config.user_claim not in claims or config.groups_claim not in claims
        ) and discovery.userinfo_endpoint:
            claims = {**await self._userinfo(discovery, answer.access_token, claims), **claims}
        return Identity(
            user=self._user_of(claims),
            groups=_groups_of(claims.get(config.groups_claim)),
            subject=str(claims["sub"]),
        )

    def _user_of(self, claims: dict[str, Any]) -> str:
        value = claims.get(self._config.user_claim)
        if not isinstance(value, str) or not value.strip():
            raise SignOnRefusedError(
                f"The ID token of {self.name} has no {self._config.user_claim!r} claim"
            )
        return value.strip().lower()  # providers compare user names without case

    # --- talking to the provider -----------------------------------------------------

    async def _discover(self) -> _Discovery:
        now = time.monotonic()
        if self._discovery is not None and now - self._discovery[0] < _DISCOVERY_TTL:
            return self._discovery[1]
        url = f"{self._issuer}/.well-known/openid-configuration"
        try:
            discovery = msgspec.json.decode(await self._get(url), type=_Discovery)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise self._unavailable(f"{url}: not a discovery document: {exc}") from None
        if discovery.issuer.rstrip("/") != self._issuer:
            # OpenID Connect Discovery §4.3: the document must name the configured issuer.
            raise self._unavailable(f"{url} names the issuer {discovery.issuer!r}")
        self._discovery = (now, discovery)
        return discovery

    async def _key_set(self, discovery: _Discovery, *, fresh: bool) -> KeySet:
        now = time.monotonic()
        if self._keys is not None and not (fresh and now - self._keys[0] >= _KEYS_REFETCH):
            return self._keys[1]
        try:
            keys = KeySet.import_key_set(msgspec.json.decode(await self._get(discovery.jwks_uri)))
        # joserfc reads the document's "keys" without a check: a KeyError when it is missing.
        except (msgspec.DecodeError, JoseError, KeyError, ValueError, TypeError) as exc:
            raise self._unavailable(f"{discovery.jwks_uri}: not a key set: {exc}") from None
        self._keys = (now, keys)
        return keys

    async def _exchange(
        self, discovery: _Discovery, challenge: Challenge, code: str
    ) -> _TokenAnswer:
        config = self._config
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": challenge.redirect_uri,
            "code_verifier": challenge.verifier,
            "client_id": config.client_id,
        }
        headers = {}
        if config.client_secret and config.client_auth == "basic":
            # RFC 6749 §2.3.1: both halves are form-encoded before they are joined.
            pair = ":".join(
                urllib.parse.quote(x, safe="") for x in (config.client_id, config.client_secret)
            )
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        elif config.client_secret:
            form["client_secret"] = config.client_secret
        url = discovery.token_endpoint
        try:
            async with self._client().post(url, data=form, headers=headers) as response:
                body = await self._read(response)
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self._unavailable(f"{url}: {str(exc) or type(exc).__name__}") from None
        if status >= 500:
            raise self._unavailable(f"{url} answered {status}")
        if status == 401 or _oauth_error(body, name_only=True) == "invalid_client":
            # RFC 6749 §5.2: kvmd's client id or secret is wrong, not the user's sign-in.
            raise self._unavailable(f"{url} refused kvmd's client credentials")
        if status != 200:
            # RFC 6749 §5.2: a bad, used or expired code is a 400 with an error name.
            raise SignOnRefusedError(f"{self.name} refused the sign-in: {_oauth_error(body)}")
        try:
            return msgspec.json.decode(body, type=_TokenAnswer)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise self._unavailable(f"{url}: no ID token in the answer: {exc}") from None

    async def _verify(self, discovery: _Discovery, id_token: str, nonce: str) -> dict[str, Any]:
        algorithms = sorted(_ALGORITHMS & set(discovery.id_token_signing_alg_values_supported))
        if not algorithms:
            raise self._unavailable("the provider signs ID tokens with no algorithm kvmd accepts")
        keys = await self._key_set(discovery, fresh=False)
        try:
            try:
                token = jwt.decode(id_token, keys, algorithms=algorithms)
            except (JoseError, ValueError):
                # A key the provider rotated in since the keys were fetched.
                keys = await self._key_set(discovery, fresh=True)
                token = jwt.decode(id_token, keys, algorithms=algorithms)
            claims: dict[str, Any] = dict(token.claims)
            jwt.JWTClaimsRegistry(
                leeway=_LEEWAY,
                iss={"essential": True, "value": discovery.issuer},
                aud={"essential": True, "value": self._config.client_id},
                sub={"essential": True},
                exp={"essential": True},
                iat={"essential": True},
                nonce={"essential": True, "value": nonce},
            ).validate(claims)
        except (JoseError, ValueError) as exc:
            logger.warning("%s: an ID token failed its checks: %s", self.name, exc)
            raise SignOnRefusedError(f"The ID token of {self.name} failed its checks") from None
        # Core §3.1.3.7: several audiences need kvmd as the authorized party, and one
        # named is checked whatever the audience.
        audience = claims["aud"]
        several = isinstance(audience, list) and len(audience) > 1
        azp = claims.get("azp")
        if (several or azp is not None) and azp != self._config.client_id:
            raise SignOnRefusedError(f"The ID token of {self.name} was issued to another client")
        return claims

    async def _userinfo(
        self, discovery: _Discovery, access_token: str, claims: dict[str, Any]
    ) -> dict[str, Any]:
        url = discovery.userinfo_endpoint or ""
        if not access_token:
            return {}
        headers = {"Authorization": f"Bearer {access_token}"}
        try:
            info = msgspec.json.decode(await self._get(url, headers=headers))
        except msgspec.DecodeError as exc:
            raise self._unavailable(f"{url}: not JSON: {exc}") from None
        if not isinstance(info, dict) or info.get("sub") != claims["sub"]:
            # OpenID Connect Core §5.3.2: another subject's answer must not be used.
            raise SignOnRefusedError(f"The user info of {self.name} is about another user")
        return info

    async def _get(self, url: str, headers: dict[str, str] | None = None) -> bytes:
        try:
            async with self._client().get(url, headers=headers) as response:
                if response.status != 200:
                    raise self._unavailable(f"{url} answered {response.status}")
                return await self._read(response)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self._unavailable(f"{url}: {str(exc) or type(exc).__name__}") from None

    async def _read(self, response: aiohttp.ClientResponse) -> bytes:
        data = await read_bounded(response, _MAX_DOCUMENT)
        if data is None:
            raise AuthServiceError(f"{response.url}: the answer is over {_MAX_DOCUMENT} bytes")
        return data

    def _unavailable(self, why: str) -> AuthServiceError:
        logger.error("Single sign-on with %s: %s", self.name, why)
        return AuthServiceError(f"{self.title} can't be reached for a sign-in: {why}")


def _oauth_error(body: bytes, *, name_only: bool = False) -> str:
    try:
        answer = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return "no error named"
    if not isinstance(answer, dict):
        return "no error named"
    named = answer.get("error") if name_only else answer.get("error_description")
    return str(named or answer.get("error") or "no error named")[:200]


def _groups_of(value: object) -> tuple[str, ...]:
    """Keycloak and Authentik send a list of names; some providers one string."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(str(each) for each in value if isinstance(each, str | int))
    return ()
