# SPDX-License-Identifier: GPL-3.0-or-later
"""The real kvmd app for the permission-check benchmark, in one of two modes.

`full` is kvmd as shipped. `bare` takes out what the security model adds to a request
(throttling, rights resolution, the read-only guard and the permission check): what the
daemon did before, when every user could do everything. The difference is its cost.
"""

import asyncio
import sys

import kvmd.server.auth
from bench.fanout_server import serving
from kvmd.auth.manager import AuthManager
from kvmd.auth.principal import Principal, Via
from kvmd.errors import ForbiddenError


async def _bare_verify(
    self: AuthManager, user: str, passwd: str, *, via: Via, remote: str
) -> Principal:
    if await self.check_password(user, passwd):
        return Principal(user=user, via=via)
    raise ForbiddenError


def strip_security() -> None:
    AuthManager.verify = _bare_verify  # type: ignore[method-assign]
    kvmd.server.auth._check_rights = lambda request, principal, rule: None


async def main(config_path: str, mode: str) -> None:
    if mode == "bare":
        strip_security()
    async with serving(config_path):
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
