# SPDX-License-Identifier: GPL-3.0-or-later
from kvmd.auth.principal import NOBODY, Permission, Principal, Via, effective


def test_admin_implies_all_and_everything_implies_state():
    admin = Principal(user="a", via=Via.XHDR, permissions=effective({Permission.ADMIN}))
    assert all(admin.allows(p) for p in Permission)
    atx_only = Principal(user="k", via=Via.BASIC, permissions=effective({Permission.ATX}))
    assert atx_only.allows(Permission.ATX)
    assert atx_only.allows(Permission.STATE)
    assert not atx_only.allows(Permission.VIDEO)
    nothing = Principal(user="n", via=Via.TOKEN, permissions=effective(()))
    assert not nothing.allows(Permission.STATE)
    assert NOBODY.allows(Permission.ADMIN)
    assert atx_only.label == "k (basic)"
