# SPDX-License-Identifier: GPL-3.0-or-later
"""PiKVM's ldap, radius and pam auth plugins against real slapd, FreeRADIUS and PAM."""

import json
import subprocess
import sys
import time

import pytest

from kvmd.auth.plugins import AuthServiceError, Verdict
from kvmd.auth.plugins.ldap import LdapAuth, LdapAuthConfig
from kvmd.auth.plugins.radius import RadiusAuth, RadiusAuthConfig
from tests.authservers import pam_service, radius_server, slapd_server

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def slapd():
    users = {"alice": "alice-pw", "bob": "bob-pw"}
    with slapd_server(users, {"kvm": ["alice"], "kvm-operators": ["alice"]}) as server:
        yield server


def ldap(server, **options) -> LdapAuth:
    config = {**server.plugin_config(), **options}
    del config["type"]
    return LdapAuth(LdapAuthConfig(**config))


async def test_ldap_right_wrong_and_not_in_the_group(slapd):
    auth = ldap(slapd)
    verdict = await auth.authorize("alice", "alice-pw")
    assert verdict.ok
    assert sorted(verdict.groups) == sorted(
        [slapd.group_dn("kvm"), slapd.group_dn("kvm-operators")]
    )
    assert await auth.authorize("alice", "wrong") == Verdict(ok=False)
    assert await auth.authorize("alice", "") == Verdict(ok=False)  # no anonymous bind
    assert await auth.authorize("bob", "bob-pw") == Verdict(ok=False)  # not in `kvm`
    assert await auth.authorize("nobody", "x") == Verdict(ok=False)


async def test_ldap_group_changes_count_at_the_next_login(slapd):
    auth = ldap(slapd)
    slapd.set_members("kvm", ["alice", "bob"])
    try:
        assert (await auth.authorize("bob", "bob-pw")).groups == (slapd.group_dn("kvm"),)
    finally:
        slapd.set_members("kvm", ["alice"])
    assert not (await auth.authorize("bob", "bob-pw")).ok


async def test_ldap_down_is_an_error_within_the_timeout(slapd):
    auth = ldap(slapd, url="ldap://127.0.0.1:1", timeout=2)
    started = time.monotonic()
    with pytest.raises(AuthServiceError, match="LDAP"):
        await auth.authorize("alice", "alice-pw")
    assert time.monotonic() - started < 10


def test_ldap_needs_pikvms_required_keys():
    with pytest.raises(ValueError, match="ldap needs `group`"):
        LdapAuthConfig(url="ldap://x", base="dc=x")


@pytest.fixture(scope="module")
def radius():
    users = {
        "alice": ("alice-pw", {"Class": "kvm-operators"}),
        "bob": ("bob-pw", {"Filter-Id": "kvm-viewers"}),
    }
    with radius_server(users, "s3cret") as server:
        yield server


async def test_radius_accept_with_its_attributes_and_reject(radius):
    auth = RadiusAuth(RadiusAuthConfig(host=radius.host, port=radius.port, secret=radius.secret))
    assert await auth.authorize("alice", "alice-pw") == Verdict(True, ("kvm-operators",))
    assert await auth.authorize("bob", "bob-pw") == Verdict(True, ("kvm-viewers",))
    assert await auth.authorize("alice", "wrong") == Verdict(ok=False)
    wrong_secret = RadiusAuth(
        RadiusAuthConfig(host=radius.host, port=radius.port, secret="other", timeout=0.5)
    )
    # A client with the wrong secret gets no answer it can trust: the server drops it.
    with pytest.raises(AuthServiceError):
        await wrong_secret.authorize("alice", "alice-pw")


async def test_radius_down_is_an_error_within_the_timeout(unused_udp_port):
    auth = RadiusAuth(
        RadiusAuthConfig(host="127.0.0.1", port=unused_udp_port, secret="x", timeout=0.5)
    )
    started = time.monotonic()
    with pytest.raises(AuthServiceError, match="RADIUS"):
        await auth.authorize("alice", "pw")
    assert time.monotonic() - started < 3


# PAM runs in the process that asks, so the plugin is asked in a child started with the
# service's environment (pam_wrapper: a service file and passwords of its own, no accounts).
PAM_CHECK = """
import asyncio, json, sys
from kvmd.auth.plugins.pam import PamAuth, PamAuthConfig
async def main():
    auth = PamAuth(PamAuthConfig(service=sys.argv[1], deny_users=["mallory"]))
    tries = [("alice", "alice-pw"), ("alice", "wrong"), ("mallory", "mallory-pw"), ("nobody", "x")]
    print(json.dumps([(await auth.authorize(u, p)).ok for (u, p) in tries]))
asyncio.run(main())
"""


def test_pam_right_wrong_and_denied_users():
    with pam_service({"alice": "alice-pw", "mallory": "mallory-pw"}) as pam:
        done = subprocess.run(
            [sys.executable, "-c", PAM_CHECK, pam.service],
            env=pam.env,
            capture_output=True,
            timeout=30,
            check=False,
        )
    assert done.returncode == 0, done.stderr.decode()
    # mallory's password is right, but deny_users comes first.
    assert json.loads(done.stdout) == [True, False, False, False]
