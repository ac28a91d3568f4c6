# SPDX-License-Identifier: GPL-3.0-or-later
import asyncio

import msgspec
from passlib.hash import bcrypt

from kvmd.auth.htpasswd import Htpasswd
from kvmd.auth.manager import AuthManager
from kvmd.config.schema import AuthConfig


def make_manager(tmp_path, **options) -> tuple[AuthManager, list[str]]:
    (tmp_path / "htpasswd").write_text(f"admin:{bcrypt.using(rounds=4).hash('admin')}\n")
    config = msgspec.convert(
        {
            "internal": {"file": str(tmp_path / "htpasswd")},
            "totp": {"secret": {"file": ""}},
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

    manager._htpasswd.verify = spy.__get__(manager._htpasswd)  # type: ignore[method-assign]
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
    token = manager.login("admin", 0)
    assert len(token) == 64
    assert manager.check_token(token) == "admin"
    other = manager.login("bob", 5)
    manager.logout(token)
    assert manager.check_token(token) is None
    assert manager.check_token(other) == "bob"
    manager.logout("f" * 64)  # unknown token: nothing happens
    assert manager.check_token(other) == "bob"
