# SPDX-License-Identifier: GPL-3.0-or-later
"""PiKVM's `http` auth plugin: a web service of the owner's says yes or no.

`POST <url>` with `{"user", "passwd", "secret"}` (the TOTP code already cut off the
password); 200 is yes, as for PiKVM's plugin and pikvm/kvmd-auth-server. A 200 answer may
carry `{"groups": [...]}`, which kvmd maps to roles (PiKVM ignores the body). Any 4xx is
no; a 5xx, a timeout or an unreachable service is AuthServiceError.
"""

import base64
import logging
from typing import Annotated

import aiohttp
import msgspec

import kvmd
from kvmd.auth.plugins import DENIED, AuthPlugin, AuthServiceError, Verdict, read_bounded
from kvmd.config.base import Section

logger = logging.getLogger(__name__)

# A directory's answer, not a document: anything bigger is not read.
_MAX_ANSWER = 64 * 1024


class HttpAuthConfig(Section, frozen=True, tag_field="type", tag="http"):
    url: str = "http://localhost/auth"
    verify: bool = True
    secret: str = ""
    # HTTP Basic credentials for the auth service itself.
    user: str = ""
    passwd: str = ""
    timeout: Annotated[float, msgspec.Meta(ge=0.1, le=300.0)] = 5.0


class _Answer(msgspec.Struct):
    groups: list[str] = msgspec.field(default_factory=list)


class HttpAuth(AuthPlugin):
    name = "http"

    def __init__(self, config: HttpAuthConfig) -> None:
        self._config = config
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            config = self._config
            headers = {"User-Agent": f"KVMD/{kvmd.__version__}"}
            if config.user:  # the auth service's own credentials
                basic = base64.b64encode(f"{config.user}:{config.passwd}".encode()).decode()
                headers["Authorization"] = f"Basic {basic}"
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=config.timeout),
                connector=aiohttp.TCPConnector(ssl=config.verify),  # False: no certificate check
                headers=headers,
            )
        return self._session

    async def authorize(self, user: str, passwd: str) -> Verdict:
        config = self._config
        body = {"user": user, "passwd": passwd, "secret": config.secret}
        try:
            async with self._client().post(
                config.url, json=body, headers={"X-KVMD-User": user}
            ) as response:
                if response.status >= 500:
                    raise AuthServiceError(f"{config.url} answered {response.status}")
                if response.status != 200:
                    return DENIED
                # Too big to be an answer: read as an empty one.
                data = await read_bounded(response, _MAX_ANSWER) or b""
        except (aiohttp.ClientError, TimeoutError) as exc:
            why = f"{config.url}: {str(exc) or type(exc).__name__}"
            logger.error("Auth service %s", why)  # noqa: TRY400 -- one line, no traceback
            raise AuthServiceError(why) from None
        return Verdict(ok=True, groups=_groups(data, config.url))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _groups(data: bytes, url: str) -> tuple[str, ...]:
    """Groups from a 200 answer's JSON body; an empty or other body names none."""
    if not data.strip():
        return ()
    try:
        answer = msgspec.json.decode(data, type=_Answer)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        logger.warning("Auth service %s: a 200 answer without a {groups: [...]} body", url)
        return ()
    return tuple(answer.groups)
