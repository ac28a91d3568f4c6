# SPDX-License-Identifier: GPL-3.0-or-later
"""Libraries of features a Pi may not use load only where they are configured.

Each costs an idle daemon megabytes (joserfc with cryptography's key types about 12 MB).
"""

import subprocess
import sys

LAZY = ("joserfc", "ldap3", "pyrad", "pam", "av", "oidc_provider_mock")


def test_the_daemon_imports_none_of_the_optional_libraries():
    probe = (
        "import sys, kvmd.app, kvmd.__main__; "
        f"print(sorted(m for m in {LAZY!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=30, check=True
    )
    assert result.stdout.strip() == "[]"
