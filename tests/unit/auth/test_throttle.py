# SPDX-License-Identifier: GPL-3.0-or-later
"""Charges, refunds and locks of one throttle."""

from kvmd.auth.throttle import Throttle


def test_the_charge_that_reaches_attempts_is_the_last_admitted():
    throttle = Throttle(attempts=3, lock=60)
    for _ in range(2):
        throttle.charge("a")
        assert throttle.locked_for("a") == 0
    throttle.charge("a")
    assert 59 < throttle.locked_for("a") <= 60
    assert throttle.locked_for("b") == 0


def test_a_right_guess_gives_its_charge_back_but_never_a_lock():
    throttle = Throttle(attempts=3, lock=60)
    throttle.charge("a")
    throttle.charge("a")
    throttle.refund("a")  # the right password, checked while another guess was in flight
    throttle.charge("a")
    assert throttle.locked_for("a") == 0
    throttle.charge("a")
    assert throttle.locked_for("a") > 0
    throttle.refund("a")
    throttle.succeeded("a")
    assert throttle.locked_for("a") > 0
    throttle.clear("a")  # an admin's unlock
    assert throttle.locked_for("a") == 0
    assert len(throttle) == 0


def test_a_success_ends_the_run_and_forgets_an_idle_key():
    throttle = Throttle(attempts=3, lock=60)
    throttle.charge("a")
    throttle.charge("a")
    throttle.succeeded("a")
    assert len(throttle) == 0
    throttle.charge("a")
    throttle.charge("a")
    assert throttle.locked_for("a") == 0


def test_after_the_window_the_count_starts_afresh_and_a_lock_in_force_stays():
    throttle = Throttle(attempts=2, lock=0)
    throttle.charge("a")
    throttle.charge("a")  # locked for 0 s: over at once
    assert throttle.locked_for("a") == 0
    assert throttle.locked() == {}
