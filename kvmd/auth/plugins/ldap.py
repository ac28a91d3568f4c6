# SPDX-License-Identifier: GPL-3.0-or-later
"""PiKVM's `ldap` auth plugin: bind as the user, then find the user in the group.

PiKVM's keys and flow, made for Active Directory: bind as `user@user_domain` with the
password, search `base` for the user's entry by userPrincipalName and memberOf, and let in
the members of `group`. Two keys of kvmd's own serve other directories (OpenLDAP, 389 DS):
`user_dn` names the bind DN (`uid={user},ou=people,dc=example,dc=org`) and `filter` the
search (`(uid={user})`). Beyond PiKVM, every memberOf value is a group for `auth.role_map`.

ldap3 (pure Python, no libldap to build) does the protocol, in a worker thread; a fresh
connection per login, as PiKVM's. An empty password is refused before any bind: to LDAP it
would be an anonymous bind, which many servers accept.
"""

import contextlib
import dataclasses
import functools
import logging
import ssl
import warnings
from collections.abc import Callable
from typing import Annotated, Any

import msgspec

from kvmd.auth.plugins import DENIED, AuthServiceError, BlockingPlugin, Verdict
from kvmd.config.base import Section

logger = logging.getLogger(__name__)

_AD_FILTER = "(&(objectClass=user)(userPrincipalName={login})(memberOf={group}))"
_INVALID_CREDENTIALS = 49


class LdapAuthConfig(Section, frozen=True, tag_field="type", tag="ldap"):
    url: str = ""
    verify: bool = True
    base: str = ""
    group: str = ""
    user_domain: str = ""
    timeout: Annotated[int, msgspec.Meta(ge=1, le=300)] = 5
    # kvmd's own: the bind DN of a user ({user}: the name typed), instead of PiKVM's
    # user@user_domain, and the search for the user's entry ({user}, {login}, {group}).
    user_dn: str = ""
    filter: str = _AD_FILTER

    def __post_init__(self) -> None:
        for key in ("url", "base", "group"):
            if not getattr(self, key).strip():
                raise ValueError(f"ldap needs `{key}`")


@dataclasses.dataclass(frozen=True, slots=True)
class _Ldap3:
    module: Any
    error: type[Exception]
    escape_filter: Callable[[str], str]
    escape_rdn: Callable[[str], str]


@functools.cache
def _ldap3() -> _Ldap3:
    """ldap3, loaded where LDAP is configured.

    Its last release (2.9.1, 2021) reads pyasn1 names that pyasn1 now calls deprecated:
    their warnings are not the owner's business.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import ldap3  # type: ignore[import-untyped]  # noqa: PLC0415
        from ldap3.core.exceptions import LDAPException  # type: ignore[import-untyped]  # noqa: PLC0415
        from ldap3.utils.conv import escape_filter_chars  # type: ignore[import-untyped]  # noqa: PLC0415
        from ldap3.utils.dn import escape_rdn  # type: ignore[import-untyped]  # noqa: PLC0415
    return _Ldap3(ldap3, LDAPException, escape_filter_chars, escape_rdn)


class LdapAuth(BlockingPlugin):
    name = "ldap"

    def __init__(self, config: LdapAuthConfig) -> None:
        # ldap3 bounds each step (connect, bind, search) by `timeout`: the backstop is theirs.
        super().__init__(config.timeout * 3 + 1)
        self._config = config

    async def authorize(self, user: str, passwd: str) -> Verdict:
        if not passwd:
            return DENIED
        return await super().authorize(user, passwd)

    def check(self, user: str, passwd: str) -> Verdict:
        lib = _ldap3()
        config = self._config
        if config.user_dn:
            login = config.user_dn.format(user=lib.escape_rdn(user))
        else:
            login = f"{user}@{config.user_domain}" if config.user_domain else user
        conn = self._connection(lib, login, passwd)
        try:
            if not conn.bind():
                if conn.result.get("result") == _INVALID_CREDENTIALS:
                    return DENIED
                raise AuthServiceError(f"LDAP {config.url}: bind: {conn.result.get('description')}")
            groups = self._groups(lib, conn, user, login)
        except lib.error as exc:
            logger.error("LDAP %s: %s", config.url, exc)  # noqa: TRY400 -- one line
            raise AuthServiceError(f"LDAP {config.url}: {exc}") from None
        finally:
            with contextlib.suppress(lib.error):
                conn.unbind()
            if getattr(conn, "socket", None) is not None:
                conn.socket.close()  # a connect that failed leaves ldap3's socket open
        if groups is None or config.group not in groups:
            return DENIED
        return Verdict(ok=True, groups=tuple(groups))

    def _connection(self, lib: _Ldap3, login: str, passwd: str) -> Any:
        config = self._config
        ldap3 = lib.module
        tls = None
        if config.url.lower().startswith("ldaps://"):
            tls = ldap3.Tls(validate=ssl.CERT_REQUIRED if config.verify else ssl.CERT_NONE)
        server = ldap3.Server(
            config.url, connect_timeout=config.timeout, get_info=ldap3.NONE, tls=tls
        )
        return ldap3.Connection(
            server,
            user=login,
            password=passwd,
            receive_timeout=config.timeout,
            auto_referrals=False,
            raise_exceptions=False,
        )

    def _groups(self, lib: _Ldap3, conn: Any, user: str, login: str) -> list[str] | None:
        """The memberOf values of the user's entry; None when the search finds none."""
        config = self._config
        search = config.filter.format(
            user=lib.escape_filter(user),
            login=lib.escape_filter(login),
            group=lib.escape_filter(config.group),
        )
        found = conn.search(
            config.base,
            search,
            search_scope=lib.module.SUBTREE,
            attributes=["memberOf"],
            time_limit=config.timeout,
        )
        if not found:
            return None
        groups: list[str] = []
        for entry in conn.response or []:
            if entry.get("type") == "searchResEntry":
                groups += [str(dn) for dn in entry.get("attributes", {}).get("memberOf", [])]
        return groups
