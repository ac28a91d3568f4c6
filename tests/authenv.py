# SPDX-License-Identifier: GPL-3.0-or-later
"""Users, roles and keys for the security tests: real files the daemon reads."""

import base64
import functools
from pathlib import Path
from typing import Any

import yaml
from passlib.hash import bcrypt

# Everyone's password is their name, as in the testenv.
USERS = ("admin", "operator", "viewer", "monitor", "power")


@functools.cache
def _hash(passwd: str) -> str:
    return str(bcrypt.using(rounds=4).hash(passwd))


def xhdr(user: str, passwd: str | None = None) -> dict[str, str]:
    return {"X-KVMD-User": user, "X-KVMD-Passwd": user if passwd is None else passwd}


def basic(user: str, passwd: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{passwd}".encode()).decode()}


def bearer(key_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key_id}.{secret}"}


def write_users(
    folder: Path,
    users: dict[str, Any] | None = None,
    roles: dict[str, Any] | None = None,
    names: tuple[str, ...] = USERS,
) -> None:
    """htpasswd with every name (password = name), users.yaml and roles.yaml."""
    (folder / "htpasswd").write_text("".join(f"{u}:{_hash(u)}\n" for u in names))
    default = {
        "operator": {"roles": ["operator"]},
        "viewer": {"roles": ["viewer"]},
        "monitor": {"roles": ["monitor"]},
        "power": {"roles": ["power-only"]},
    }
    (folder / "users.yaml").write_text(yaml.safe_dump(default if users is None else users))
    custom = {"power-only": {"permissions": ["atx"]}}
    (folder / "roles.yaml").write_text(yaml.safe_dump(custom if roles is None else roles))
