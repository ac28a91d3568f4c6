# SPDX-License-Identifier: GPL-3.0-or-later
import asyncio
import time

import msgspec
import pytest
from passlib.hash import bcrypt

from kvmd.auth.htpasswd import Htpasswd
from kvmd.auth.manager import AuthManager
from kvmd.auth.principal import ALL_PERMISSIONS, Kind, Via
from kvmd.auth.sessions import public_id
from kvmd.config.schema import AuthConfig
from kvmd.errors import ForbiddenError


def make_manager(tmp_path, **options) -> tuple[AuthManager, list[str]]:
    (tmp_path / "htpasswd").write_text(f"admin:{bcrypt.using(rounds=4).hash('admin')}\n")
    config = msgspec.convert(
        {
            "internal": {"file": str(tmp_path / "htpasswd")},
            "totp": {"secret": {"file": ""}},
            "files": {"users": "", "roles": "", "keys": "", "directory": ""},
            **options,
        },
        AuthConfig,
    )
    manager = AuthManager(config)
    calls: list[str] = []
    real = Htpasswd.verify

    def spy(self: Htpasswd, user: str, passwd: str) -> bool:
        calls.append(user)
        return real(self, user, passwd)

    htpasswd = manager.accounts.htpasswd
    htpasswd.verify = spy.__get__(htpasswd)  # type: ignore[method-assign]
    return (manager, calls)


async def test_success_is_cached_failure_is_not(tmp_path):
    (manager, calls) = make_manager(tmp_path)
    assert await manager.check_password("admin", "admin")
    assert await manager.check_password("admin", "admin")
    assert calls == ["admin"]
    assert not await manager.check_password("admin", "nope")
    assert not await manager.check_password("admin", "nope")
    assert calls == ["admin", "admin", "admin"]


async def test_cache_ages_out(tmp_path):
    (manager, calls) = make_manager(tmp_path, cache_ttl=0.1)
    assert await manager.check_password("admin", "admin")
    await asyncio.sleep(0.15)
    assert await manager.check_password("admin", "admin")
    assert calls == ["admin", "admin"]


async def test_cache_off(tmp_path):
    (manager, calls) = make_manager(tmp_path, cache_ttl=0)
    assert await manager.check_password("admin", "admin")
    assert await manager.check_password("admin", "admin")
    assert calls == ["admin", "admin"]


async def test_concurrent_checks_share_one_hash(tmp_path):
    (manager, calls) = make_manager(tmp_path)
    results = await asyncio.gather(*(manager.check_password("admin", "admin") for _ in range(20)))
    assert results == [True] * 20
    assert calls == ["admin"]


async def test_sessions(tmp_path):
    (manager, _) = make_manager(tmp_path, expire=100)
    admin = manager.user_principal("admin", Via.TOKEN, "")
    token = manager.login(admin, 0, remote="127.0.0.1", user_agent="t")
    assert len(token) == 64
    assert manager.token_principal(token, "127.0.0.1").user == "admin"
    second = manager.login(admin, 5, remote="127.0.0.1", user_agent="t")
    assert manager.logout(second, everything=False)[0].token == second
    assert manager.token_principal(token, "").session == public_id(token)
    with pytest.raises(ForbiddenError):
        manager.token_principal(second, "")
    ended = manager.logout(token, everything=True)
    assert [s.token for s in ended] == [token]
    with pytest.raises(ForbiddenError):
        manager.token_principal(token, "")
    assert manager.logout("f" * 64, everything=True) == []  # unknown token: nothing happens


async def test_session_expiry_is_capped_by_the_global_limit(tmp_path):
    (manager, _) = make_manager(tmp_path, expire=100)
    admin = manager.user_principal("admin", Via.TOKEN, "")
    unlimited = manager.sessions.open("admin", Kind.USER, 0, remote="", user_agent="")
    short = manager.sessions.open("admin", Kind.USER, 5, remote="", user_agent="")
    now = time.time()
    assert 99 < (unlimited.expires() or 0) - now <= 100
    assert 4 < (short.expires() or 0) - now <= 5
    assert admin.permissions == ALL_PERMISSIONS
