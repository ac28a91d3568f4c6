# SPDX-License-Identifier: GPL-3.0-or-later
"""What a sign-in carries, without the token library: imported whether or not SSO is on."""

import dataclasses

from kvmd.errors import ForbiddenError


class SignOnRefusedError(ForbiddenError):
    """The provider's answer does not let the user in."""

    default_msg = "Single sign-on failed"


@dataclasses.dataclass(frozen=True, slots=True)
class Challenge:
    """What one sign-in must remember between the redirect and the callback."""

    state: str
    nonce: str
    verifier: str
    redirect_uri: str


@dataclasses.dataclass(frozen=True, slots=True)
class Identity:
    user: str
    groups: tuple[str, ...]
    subject: str
