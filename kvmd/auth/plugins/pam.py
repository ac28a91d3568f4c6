# SPDX-License-Identifier: GPL-3.0-or-later
"""PiKVM's `pam` auth plugin: the Pi's own accounts, through a PAM service.

python-pam (the library PiKVM's plugin uses, ctypes over libpam) runs the conversation in
a worker thread, one at a time: PAM modules are not all thread-safe. PiKVM's checks come
first: `allow_users` (if any), `deny_users`, and `allow_uids_at` (accounts with a smaller
UID, the system's, are refused). PAM says nothing of groups: roles come from `users.yaml`
and `default_role`.
"""

import logging
import pwd
from typing import Annotated

import msgspec

from kvmd.auth.plugins import DENIED, BlockingPlugin, Verdict
from kvmd.config.base import Section

logger = logging.getLogger(__name__)


class PamAuthConfig(Section, frozen=True, tag_field="type", tag="pam"):
    service: str = "login"
    allow_users: list[str] = msgspec.field(default_factory=list)
    deny_users: list[str] = msgspec.field(default_factory=list)
    allow_uids_at: Annotated[int, msgspec.Meta(ge=0)] = 0
    # kvmd's own key (PiKVM's plugin waits as long as PAM takes): a module that hangs,
    # such as pam_ldap on a dead server, is a 503 after this long.
    timeout: Annotated[float, msgspec.Meta(ge=0.1, le=300.0)] = 10.0


class PamAuth(BlockingPlugin):
    name = "pam"
    concurrent = 1  # PAM modules are not all thread-safe

    def __init__(self, config: PamAuthConfig) -> None:
        super().__init__(config.timeout)
        self._config = config

    async def authorize(self, user: str, passwd: str) -> Verdict:
        config = self._config
        if (config.allow_users and user not in config.allow_users) or user in config.deny_users:
            return DENIED
        if config.allow_uids_at > 0:
            try:
                uid = pwd.getpwnam(user).pw_uid
            except KeyError:
                return DENIED
            if uid < config.allow_uids_at:
                return DENIED
        return await super().authorize(user, passwd)

    def check(self, user: str, passwd: str) -> Verdict:
        import pam  # type: ignore[import-untyped]  # noqa: PLC0415 -- only where PAM is configured

        session = pam.pam()
        if session.authenticate(user, passwd, service=self._config.service):
            return Verdict(ok=True)
        logger.info("PAM %s: %s: %s (%s)", self._config.service, user, session.reason, session.code)
        return DENIED
