# SPDX-License-Identifier: GPL-3.0-or-later
"""PiKVM's `radius` auth plugin: an Access-Request with the user and password (PAP).

pyrad (the library PiKVM's plugin uses) builds and checks the packets; the exchange runs
in a worker thread. Access-Accept is yes and Access-Reject no, as on PiKVM; beyond it, the
reply's Class and Filter-Id attributes are the user's groups (for `auth.role_map`). No
answer within `timeout` (per try, two tries) is AuthServiceError.
"""

import io
import logging
from typing import Annotated

import msgspec

from kvmd.auth.plugins import DENIED, AuthServiceError, BlockingPlugin, Verdict
from kvmd.config.base import Section

logger = logging.getLogger(__name__)

# The attributes this client sends or reads (RFC 2865), in FreeRADIUS' dictionary format.
DICTIONARY = """\
ATTRIBUTE User-Name 1 string
ATTRIBUTE User-Password 2 string encrypt=1
ATTRIBUTE Filter-Id 11 string
ATTRIBUTE Reply-Message 18 string
ATTRIBUTE Class 25 octets
ATTRIBUTE NAS-Identifier 32 string
"""
_TRIES = 2


class RadiusAuthConfig(Section, frozen=True, tag_field="type", tag="radius"):
    host: str = "localhost"
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 1812
    secret: str = ""
    timeout: Annotated[float, msgspec.Meta(ge=0.1, le=300.0)] = 5.0


class RadiusAuth(BlockingPlugin):
    name = "radius"

    def __init__(self, config: RadiusAuthConfig) -> None:
        # pyrad waits `timeout` per try: the backstop is all the tries and a second more.
        super().__init__(config.timeout * _TRIES + 1)
        self._config = config

    def check(self, user: str, passwd: str) -> Verdict:
        # Loaded only where RADIUS is configured; pyrad has no type hints.
        from pyrad import packet  # type: ignore[import-untyped]  # noqa: PLC0415
        from pyrad.client import Client, Timeout  # type: ignore[import-untyped]  # noqa: PLC0415
        from pyrad.dictionary import Dictionary  # type: ignore[import-untyped]  # noqa: PLC0415

        config = self._config
        where = f"RADIUS {config.host}:{config.port}"
        client = None
        try:
            client = Client(
                server=config.host,
                authport=config.port,
                secret=config.secret.encode(),
                dict=Dictionary(io.StringIO(DICTIONARY)),
            )
            client.timeout = config.timeout
            client.retries = _TRIES
            request = client.CreateAuthPacket(code=packet.AccessRequest, User_Name=user)
            request["User-Password"] = request.PwCrypt(passwd)
            reply = client.SendPacket(request)
        except Timeout:
            logger.error("%s: no answer", where)  # noqa: TRY400 -- one line, no traceback
            raise AuthServiceError(f"{where}: no answer") from None
        except (OSError, ValueError, UnicodeError) as exc:
            logger.error("%s: %s", where, exc)  # noqa: TRY400 -- one line, no traceback
            raise AuthServiceError(f"{where}: {exc}") from None
        finally:
            if client is not None:
                client._CloseSocket()
        if reply.code != packet.AccessAccept:
            return DENIED
        groups = [_text(value) for value in reply.get("Class", [])]
        groups += [_text(value) for value in reply.get("Filter-Id", [])]
        return Verdict(ok=True, groups=tuple(groups))


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
