# SPDX-License-Identifier: GPL-3.0-or-later
"""A plugin whose library blocks: an answer too late is a 503, and a hung check holds its slot."""

import asyncio
import threading

import pytest

from kvmd.auth.plugins import AuthServiceError, BlockingPlugin, Verdict


class Stuck(BlockingPlugin):
    """A PAM module on a dead server: the check returns when the test lets it."""

    name = "stuck"
    concurrent = 1

    def __init__(self) -> None:
        super().__init__(limit=0.2)
        self.release = threading.Event()
        self.started = 0

    def check(self, user: str, passwd: str) -> Verdict:
        self.started += 1
        self.release.wait(5)
        if user == "boom":
            raise OSError("the library failed after the caller gave up")
        return Verdict(ok=True, groups=(user,))


async def test_a_hung_check_is_a_503_and_holds_its_slot_until_it_returns():
    plugin = Stuck()
    async with asyncio.timeout(2):
        with pytest.raises(AuthServiceError, match=r"stuck did not answer within 0\.2 s"):
            await plugin.authorize("alice", "pw")
        # The slot is still taken: the next check waits for it, and times out as well,
        # without a second thread starting on the hung service.
        with pytest.raises(AuthServiceError):
            await plugin.authorize("bob", "pw")
        assert plugin.started == 1
        plugin.release.set()
        await asyncio.sleep(0.05)
        assert await plugin.authorize("carol", "pw") == Verdict(ok=True, groups=("carol",))
        assert plugin.started == 2


async def test_a_late_failure_after_the_timeout_is_not_left_unretrieved():
    plugin = Stuck()
    with pytest.raises(AuthServiceError):
        await plugin.authorize("boom", "pw")
    plugin.release.set()
    await asyncio.sleep(0.05)  # warnings are errors: "exception never retrieved" would fail
    assert await plugin.authorize("dave", "pw") == Verdict(ok=True, groups=("dave",))
