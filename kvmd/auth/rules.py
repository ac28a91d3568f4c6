# SPDX-License-Identifier: GPL-3.0-or-later
"""What a user name and a new password may be: one rule for the API and the tools."""

import re

# PiKVM's username rule, so that a file moved between the two daemons stays valid.
USER_RE = re.compile(r"^[a-z_]([a-z0-9@._-]*[a-z0-9_-])?$")
USER_MAX = 128
# API keys use user names under this prefix; a real user there would shadow a key.
KEY_PREFIX = "_key."
# Printable ASCII only: what every browser, HTTP header and Basic-auth client transmits alike.
# PiKVM allows 512, but bcrypt reads only 72 bytes and bcrypt>=5 raises past that instead of
# truncating, so a longer password could be neither hashed nor verified.
PASSWD_MAX = 72


def user_problem(user: str) -> str | None:
    """Why `user` can't be a new user's name, or None."""
    if user.startswith(KEY_PREFIX):
        return f"usernames starting with {KEY_PREFIX!r} are reserved"
    if len(user) > USER_MAX or not USER_RE.match(user):
        return (
            f"invalid username {user[:64]!r}: use at most {USER_MAX} of a-z 0-9 @ . _ -,"
            " starting with a letter or _ and not ending with @ or ."
        )
    return None


def passwd_problem(passwd: str) -> str | None:
    """Why `passwd` can't be set, or None. Never echoes the password."""
    if not passwd:
        return "empty password refused"
    if len(passwd) > PASSWD_MAX:
        return f"the password is longer than {PASSWD_MAX} characters"
    if not all(0x20 <= ord(char) <= 0x7E for char in passwd):
        return "the password may contain printable ASCII characters only"
    return None
