# SPDX-License-Identifier: GPL-3.0-or-later
"""`kvmd.auth.oidc`: single sign-on providers (beyond PiKVM, which has none)."""

from typing import Annotated, Literal

from msgspec import Meta, field

from kvmd.config.base import Section

# A provider's name is part of its callback URL, which is registered at the provider.
ProviderName = Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]


class OidcProviderConfig(Section, frozen=True):
    """One OpenID Connect provider (Keycloak realm, Authentik application, Okta, Entra ID)."""

    # Its discovery document is <issuer>/.well-known/openid-configuration.
    issuer: Annotated[str, Meta(pattern=r"^https?://[^\s]+$")]
    client_id: Annotated[str, Meta(min_length=1)]
    # The button says "Sign in with <title>"; the provider's name when empty.
    title: str = ""
    # Empty for a public client (PKCE alone).
    client_secret: str = ""
    # How the secret reaches the token endpoint: HTTP Basic or in the form.
    client_auth: Literal["basic", "post"] = "basic"
    scopes: list[str] = field(default_factory=lambda: ["openid", "profile", "email"])
    # Where the kvmd user name comes from, and the claim whose values `auth.role_map` maps.
    user_claim: str = "preferred_username"
    groups_claim: str = "groups"
    # The callback URL registered at the provider; empty: derived from the request
    # (<scheme>://<host>/api/auth/oidc/<name>/callback).
    redirect_uri: str = ""
    verify: bool = True  # False: the provider's certificate is not checked
    timeout: Annotated[float, Meta(ge=0.1, le=300.0)] = 10.0


class OidcConfig(Section, frozen=True):
    providers: dict[ProviderName, OidcProviderConfig] = field(default_factory=dict)
    # How long a sign-in may take at the provider's login page.
    login_timeout: Annotated[float, Meta(ge=10.0, le=3600.0)] = 600.0
    # A realm's every user can usually sign in to every client, so by default a user
    # signed in needs a role from `auth.role_map` or an entry in `files.users`; true lets
    # the others in with `auth.default_role`.
    allow_unmapped: bool = False
