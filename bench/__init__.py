# SPDX-License-Identifier: GPL-3.0-or-later
"""`make bench`. With KVMD_BENCH_QUICK=1 every part runs at a small fraction of its size:
`make test` runs it so that the bench keeps working; the figures it prints then mean nothing.
"""

import os

QUICK = os.environ.get("KVMD_BENCH_QUICK") == "1"


def sized(full: int, quick: int) -> int:
    """`full` in a real run, `quick` in the quick one."""
    return quick if QUICK else full


def timed(full: float, quick: float) -> float:
    """Seconds: `full` in a real run, `quick` in the quick one."""
    return quick if QUICK else full
