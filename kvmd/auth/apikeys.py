# SPDX-License-Identifier: GPL-3.0-or-later
"""API keys: machine credentials with their own narrowed rights (SECURITY.md §A).

A key is `_key.<12 base32>` plus a secret that is shown once and stored only as its
SHA-256: the secret is 256 random bits, so a fast hash is as good as a slow one and keeps
every request cheap. The file is JSON, mode 0600, replaced atomically.
"""

import base64
import hashlib
import hmac
import ipaddress
import logging
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from kvmd.auth.files import FileSignature, atomic_write, signature
from kvmd.auth.principal import Permission, ordered
from kvmd.errors import ConfigError, ForbiddenError, NotFoundError, OperationError

logger = logging.getLogger(__name__)

KEY_ID_RE = re.compile(r"^_key\.[a-z2-7]{12}$")
# `last_used` is written at most this often per key, to spare the SD card.
_TOUCH_INTERVAL = 60.0


class ApiKey(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    id: str
    name: str = ""
    owner: str
    permissions: list[Permission] = msgspec.field(default_factory=list)
    read_only: bool = False
    created: float
    expires: float | None = None
    allowed_nets: list[str] = msgspec.field(default_factory=list)
    enabled: bool = True
    last_used: float | None = None
    last_used_from: str = ""
    secret_sha256: str
    # After a rotation with `grace`, the previous secret keeps working until `old_until`.
    old_secret_sha256: str = ""
    old_until: float = 0.0

    def is_expired(self, now: float) -> bool:
        return self.expires is not None and self.expires <= now

    def public(self, now: float) -> dict[str, object]:
        """The listing shape: everything but the hashes."""
        return {
            "id": self.id,
            "name": self.name,
            "owner": self.owner,
            "permissions": [str(p) for p in self.permissions],
            "read_only": self.read_only,
            "created": self.created,
            "expires": self.expires,
            "expired": self.is_expired(now),
            "last_used": self.last_used,
            "last_used_from": self.last_used_from,
            "allowed_nets": self.allowed_nets,
            "enabled": self.enabled,
        }


class _KeyFile(msgspec.Struct, forbid_unknown_fields=True):
    keys: list[ApiKey] = msgspec.field(default_factory=list)


def new_key_id() -> str:
    return "_key." + base64.b32encode(secrets.token_bytes(8)).decode().lower()[:12]


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_nets(nets: list[str]) -> list[str]:
    """Normalised CIDRs; a bad one raises ValueError naming it."""
    out = []
    for net in nets:
        try:
            out.append(str(ipaddress.ip_network(net.strip(), strict=False)))
        except ValueError:
            raise ValueError(f"bad network {net[:64]!r}") from None
    return out


def _allowed_from(nets: list[str], remote: str) -> bool:
    if not nets:
        return True
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net) for net in nets)


class ApiKeys:
    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._signature: FileSignature | tuple[()] | None = ()
        self._keys: dict[str, ApiKey] = {}
        self.generation = 0
        self.reload(strict=True)

    def reload(self, *, strict: bool = False) -> bool:
        if self._path is None:
            return False
        sig = signature(self._path)
        if sig == self._signature:
            return False
        try:
            data = self._path.read_bytes() if sig is not None else b"{}"
            keys = msgspec.json.decode(data, type=_KeyFile).keys
        except (OSError, msgspec.DecodeError) as exc:
            if strict:
                raise ConfigError(f"{self._path}: {exc}") from None
            logger.error("Ignoring the new %s, keeping the old keys: %s", self._path, exc)  # noqa: TRY400
            self._signature = sig
            return False
        if sig is not None and self._path.stat().st_mode & 0o077:
            logger.warning("%s is readable by others; it should be mode 0600", self._path)
        self._signature = sig
        self._keys = {key.id: key for key in keys}
        self.generation += 1
        return True

    def get(self, key_id: str) -> ApiKey | None:
        return self._keys.get(key_id)

    def all(self) -> list[ApiKey]:
        return sorted(self._keys.values(), key=lambda key: key.created)

    def verify(self, key_id: str, secret: str, remote: str) -> ApiKey | None:
        """The key, None for a wrong id or secret, 403 for a key not usable from `remote`."""
        key = self._keys.get(key_id)
        now = time.time()
        digest = _hash(secret)
        if key is None or not (
            hmac.compare_digest(digest, key.secret_sha256)
            or (now < key.old_until and hmac.compare_digest(digest, key.old_secret_sha256))
        ):
            return None
        self.check_usable(key, remote, now)
        if key.last_used is None or now - key.last_used >= _TOUCH_INTERVAL:
            self._touch(key.id, now, remote)
        return key

    def check_usable(self, key: ApiKey, remote: str | None, now: float) -> None:
        """403 for a disabled or expired key, or one used from outside `allowed_nets`."""
        if not key.enabled:
            raise ForbiddenError("API key disabled")
        if key.is_expired(now):
            raise ForbiddenError("API key expired")
        if remote is not None and not _allowed_from(key.allowed_nets, remote):
            raise ForbiddenError("API key not allowed from this address")

    def create(
        self,
        *,
        name: str,
        owner: str,
        permissions: frozenset[Permission],
        read_only: bool,
        expires: float | None,
        allowed_nets: list[str],
    ) -> tuple[ApiKey, str]:
        secret = secrets.token_urlsafe(32)
        key = ApiKey(
            id=new_key_id(),
            name=name,
            owner=owner,
            permissions=ordered(permissions),
            read_only=read_only,
            created=time.time(),
            expires=expires,
            allowed_nets=allowed_nets,
            secret_sha256=_hash(secret),
        )
        self._update(lambda keys: keys.__setitem__(key.id, key))
        return (key, secret)

    def replace(self, key: ApiKey) -> None:
        self._require(key.id)
        self._update(lambda keys: keys.__setitem__(key.id, key))

    def rotate(self, key_id: str, grace: float) -> str:
        key = self._require(key_id)
        secret = secrets.token_urlsafe(32)
        rotated = msgspec.structs.replace(
            key,
            secret_sha256=_hash(secret),
            old_secret_sha256=key.secret_sha256 if grace > 0 else "",
            old_until=time.time() + grace if grace > 0 else 0.0,
        )
        self._update(lambda keys: keys.__setitem__(key_id, rotated))
        return secret

    def remove(self, key_id: str) -> ApiKey:
        key = self._require(key_id)
        self._update(lambda keys: keys.pop(key_id, None))
        return key

    def _require(self, key_id: str) -> ApiKey:
        key = self._keys.get(key_id)
        if key is None:
            raise NotFoundError(f"No such API key: {key_id[:64]!r}")
        return key

    def _update(self, change: Callable[[dict[str, ApiKey]], object]) -> None:
        if self._path is None:
            raise OperationError("The API keys file is not configured")
        self.reload()  # a key created meanwhile by kvmd-apikey must survive our write
        keys = dict(self._keys)
        change(keys)
        self._write(self._path, keys)
        self.generation += 1

    def _write(self, path: Path, keys: dict[str, ApiKey]) -> None:
        data = msgspec.json.format(msgspec.json.encode(_KeyFile(list(keys.values()))), indent=2)
        atomic_write(path, data + b"\n", mode=0o600)
        self._keys = keys
        self._signature = signature(path)

    def _touch(self, key_id: str, now: float, remote: str) -> None:
        if self._path is None:
            return
        self.reload()
        key = self._keys.get(key_id)
        if key is None:
            return
        touched = msgspec.structs.replace(key, last_used=now, last_used_from=remote)
        try:
            self._write(self._path, {**self._keys, key_id: touched})
        except OSError as exc:
            # `last_used` is a convenience: a read-only disk must not fail the request.
            logger.warning("Can't record the last use of an API key: %s", exc)
            self._keys[key_id] = touched
