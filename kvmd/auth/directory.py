# SPDX-License-Identifier: GPL-3.0-or-later
"""What the directory said of its users at their last login (`auth.files.directory`).

Directory users (kvmd.auth.external, single sign-on) are in no file of the owner's; their
groups are kept here, kvmd's own state, read once at start, so that their API keys keep
their owner's roles across restarts. Groups, not roles: a `role_map` edit still applies.
"""

import contextlib
import logging
import time
from pathlib import Path

import msgspec

from kvmd.auth.files import atomic_write
from kvmd.auth.rules import USER_MAX

logger = logging.getLogger(__name__)

# Users remembered, the least recently logged in forgotten first: far more than a KVM has,
# and only a successful directory login adds one, so no one can grow the file without a
# password. Not an age limit: a script's key must not die because its owner had no reason
# to log in for months.
DIRECTORY_MAX = 1000
# A login with the same groups rewrites the file at most this often, to spare the SD card;
# the stored time (which orders forgetting) is then right to within a day.
_LOGIN_REFRESH = 86400.0


class DirectoryEntry(msgspec.Struct, kw_only=True, frozen=True):
    groups: tuple[str, ...]
    login: float  # UNIX time of the last login (see _LOGIN_REFRESH)


class _DirectoryFile(msgspec.Struct, kw_only=True):
    # Unknown fields are ignored: an older kvmd must still read a newer file.
    users: dict[str, DirectoryEntry] = msgspec.field(default_factory=dict)


class Directory:
    """Directory users -> what the service said at their last login; a file unless None."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._bad = False
        self._users = self._load()

    def __contains__(self, user: str) -> bool:
        return user in self._users

    def __getitem__(self, user: str) -> DirectoryEntry:
        return self._users[user]

    def remember(self, user: str, groups: tuple[str, ...]) -> list[str]:
        """A login's groups; the users whose entry changed or was forgotten."""
        (now, groups) = (time.time(), tuple(groups))
        old = self._users.get(user)
        if old is not None and old.groups == groups and now - old.login < _LOGIN_REFRESH:
            return []
        changed = [user] if old is None or old.groups != groups else []
        self._users[user] = DirectoryEntry(groups=groups, login=round(now, 3))
        if len(self._users) > DIRECTORY_MAX:
            # `user` excluded: a clock set back must not forget who just logged in.
            others = (name for name in self._users if name != user)
            oldest = min(others, key=lambda name: self._users[name].login)
            del self._users[oldest]
            changed.append(oldest)
        self._save()
        return changed

    def _load(self) -> dict[str, DirectoryEntry]:
        path = self._path
        if path is None:
            return {}
        try:
            users = msgspec.json.decode(path.read_bytes(), type=_DirectoryFile).users
        except FileNotFoundError:
            return {}
        except (OSError, msgspec.DecodeError) as exc:
            # Not fatal: this is a cache of the directory, rebuilt by each login, and a KVM
            # must come up. Until a login changes it the file is left as it is, for a human
            # to look at; that write first keeps it aside (see _save).
            logger.error(  # noqa: TRY400
                "Can't read %s, directory users' API keys work again after their next login: %s",
                path,
                exc,
            )
            self._bad = True
            return {}
        kept = sorted(users.items(), key=lambda item: item[1].login)[-DIRECTORY_MAX:]
        return {user: entry for (user, entry) in kept if len(user) <= USER_MAX}

    def _save(self) -> None:
        path = self._path
        if path is None:
            return
        data = msgspec.json.encode(_DirectoryFile(users=dict(sorted(self._users.items()))))
        try:
            if self._bad:
                aside = path.with_name(f"{path.name}.corrupt")
                with contextlib.suppress(FileNotFoundError):
                    path.replace(aside)
                    logger.warning("Replacing the unreadable %s; it is kept as %s", path, aside)
                self._bad = False
            atomic_write(path, msgspec.json.format(data, indent=2) + b"\n", mode=0o600)
        except OSError as exc:
            # The login stands: only a restart before the next login loses its groups.
            logger.error("Can't save %s: %s", path, exc)  # noqa: TRY400
