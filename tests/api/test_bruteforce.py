# SPDX-License-Identifier: GPL-3.0-or-later
"""The throttle and the lockout hold against guesses sent all at once (issue 18, finding 1).

Real bcrypt at a cost that keeps each check in its thread for a while, so that every
guess of a burst is in flight while the first ones are still being hashed.
"""

import asyncio
import threading
from collections import Counter

import aiohttp
import pytest
from passlib.hash import bcrypt

from tests.authenv import write_users, xhdr

pytestmark = pytest.mark.timeout(60)

# The defaults: 5 guesses per address per minute, 10 per user per 5 minutes.
ADDRESS_ATTEMPTS = 5
USER_ATTEMPTS = 10


@pytest.fixture
async def env(make_client, make_config, tmp_path):
    write_users(tmp_path)
    slow = bcrypt.using(rounds=10).hash("operator")
    lines = (tmp_path / "htpasswd").read_text().splitlines()
    lines = [f"operator:{slow}" if line.startswith("operator:") else line for line in lines]
    (tmp_path / "htpasswd").write_text("\n".join(lines) + "\n")
    return await make_client(make_config())


def from_address(client, address: str) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(local_addr=(address, 0), limit=0)
    return aiohttp.ClientSession(str(client.make_url("")), connector=connector)


async def login(session, user: str, passwd: str) -> int:
    response = await session.post("/api/auth/login", data={"user": user, "passwd": passwd})
    await response.read()
    return response.status


async def test_thirty_parallel_guesses_from_one_address(env):
    (client, _) = env
    guesses = [f"guess{n}" for n in range(29)] + ["operator"]
    async with from_address(client, "127.0.0.1") as attacker:
        statuses = await asyncio.gather(*(login(attacker, "operator", g) for g in guesses))
    counted = Counter(statuses)
    # Only as many guesses as the address may make reached the password check.
    assert counted[403] + counted[200] == ADDRESS_ATTEMPTS
    assert counted[429] == len(guesses) - ADDRESS_ATTEMPTS
    async with from_address(client, "127.0.0.1") as attacker:
        assert await login(attacker, "operator", "operator") == 429
    # The user itself is not locked: another address with the right password gets in.
    async with from_address(client, "127.0.4.1") as owner:
        assert await login(owner, "operator", "operator") == 200


async def test_parallel_guesses_from_many_addresses_lock_the_user(env):
    (client, deps) = env
    sessions = [from_address(client, f"127.0.3.{n + 1}") for n in range(30)]
    try:
        guesses = [f"guess{n}" for n in range(29)] + ["operator"]
        statuses = await asyncio.gather(
            *(login(s, "operator", g) for (s, g) in zip(sessions, guesses, strict=True))
        )
    finally:
        for session in sessions:
            await session.close()
    counted = Counter(statuses)
    assert counted[403] + counted[200] == USER_ATTEMPTS
    assert counted[429] == len(guesses) - USER_ATTEMPTS
    # The lock began while the right guess was in flight: its success did not end it.
    assert deps.auth.locked_until("operator") is not None
    async with from_address(client, "127.0.4.2") as owner:
        assert await login(owner, "operator", "operator") == 429


async def test_at_most_two_hashes_at_once(env):
    (client, deps) = env
    htpasswd = deps.auth.accounts.htpasswd
    verify = htpasswd.verify
    lock = threading.Lock()
    running = 0
    most = 0

    def counting(user: str, passwd: str) -> bool:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        try:
            return verify(user, passwd)
        finally:
            with lock:
                running -= 1

    htpasswd.verify = counting  # observes the real check, changes nothing
    sessions = [from_address(client, f"127.0.5.{n + 1}") for n in range(12)]
    try:
        statuses = await asyncio.gather(
            *(login(s, "operator", f"guess{n}") for (n, s) in enumerate(sessions))
        )
    finally:
        for session in sessions:
            await session.close()
    assert Counter(statuses) == {403: USER_ATTEMPTS, 429: 2}
    assert most == 2


async def test_a_script_opening_many_connections_is_not_throttled(env):
    (client, _) = env
    # Twenty requests at once with the right password: they share one hash, none is a guess.
    async with from_address(client, "127.0.0.1") as script:
        responses = await asyncio.gather(
            *(script.get("/api/auth/check", headers=xhdr("operator")) for _ in range(20))
        )
        assert [r.status for r in responses] == [200] * 20
        again = await script.get("/api/auth/check", headers=xhdr("operator"))
        assert again.status == 200
