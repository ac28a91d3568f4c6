# SPDX-License-Identifier: GPL-3.0-or-later
"""The auth plugins' test servers answer as real LDAP, RADIUS and PAM services do."""

import io
import subprocess
import sys
import warnings

import pytest
from pyrad import packet  # type: ignore[import-untyped]
from pyrad.client import Client  # type: ignore[import-untyped]
from pyrad.dictionary import Dictionary  # type: ignore[import-untyped]

from kvmd.auth.plugins.radius import DICTIONARY
from tests.authservers import pam_service, radius_server, slapd_server

# ldap3 2.9.1 (its last release, 2021) imports pyasn1 names that pyasn1 0.6 deprecates.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "tagMap is deprecated", DeprecationWarning)
    warnings.filterwarnings("ignore", "typeMap is deprecated", DeprecationWarning)
    import ldap3  # type: ignore[import-untyped]

USERS = {"alice": "alice-pw", "bob": "bob-pw"}


def _bind(url: str, user: str, passwd: str) -> str:
    conn = ldap3.Connection(ldap3.Server(url, connect_timeout=5), user=user, password=passwd)
    try:
        conn.bind()
        return str(conn.result["description"])
    finally:
        conn.unbind()


def _member_of(url: str, user: str, passwd: str, upn: str) -> list[str]:
    # No `with`: ldap3 leaves a connection that was bound before the block open after it.
    conn = ldap3.Connection(ldap3.Server(url, connect_timeout=5), user=user, password=passwd)
    try:
        assert conn.bind(), conn.result
        # The filter upstream's ldap plugin sends to Active Directory, group left out.
        conn.search(
            user.split(",", 1)[1].split(",", 1)[1],
            f"(&(objectClass=user)(userPrincipalName={upn}))",
            attributes=["memberOf"],
        )
        return [str(dn) for entry in conn.entries for dn in entry.memberOf.values]
    finally:
        conn.unbind()


def test_slapd_binds_users_and_tracks_group_membership() -> None:
    with slapd_server(USERS, {"kvmd": ["alice"], "admins": []}) as ldap:
        alice, bob = ldap.user_dn("alice"), ldap.user_dn("bob")
        assert _bind(ldap.url, alice, "alice-pw") == "success"
        assert _bind(ldap.url, alice, "bob-pw") == "invalidCredentials"
        assert _bind(ldap.url, ldap.user_dn("nobody"), "x") == "invalidCredentials"
        # A UPN is no DN to slapd: the AD-style bind name is refused (spec 2.3).
        assert _bind(ldap.url, ldap.upn("alice"), "alice-pw") == "invalidDNSyntax"
        kvmd = ldap.group_dn("kvmd")
        assert _member_of(ldap.url, alice, "alice-pw", ldap.upn("alice")) == [kvmd]
        assert _member_of(ldap.url, bob, "bob-pw", ldap.upn("BOB")) == []

        ldap.set_members("kvmd", ["bob"])
        ldap.set_members("admins", ["bob"])
        assert _member_of(ldap.url, alice, "alice-pw", ldap.upn("alice")) == []
        assert sorted(_member_of(ldap.url, bob, "bob-pw", ldap.upn("bob"))) == sorted(
            [kvmd, ldap.group_dn("admins")]
        )


def _radius(host: str, port: int, secret: str, user: str, passwd: str) -> packet.Packet:
    radius_dict = Dictionary(io.StringIO(DICTIONARY))  # the plugin's own
    client = Client(server=host, authport=port, secret=secret.encode(), dict=radius_dict)
    client.timeout = 2
    client.retries = 1
    try:
        request = client.CreateAuthPacket(code=packet.AccessRequest, User_Name=user)
        request["User-Password"] = request.PwCrypt(passwd)
        return client.SendPacket(request)
    finally:
        # pyrad keeps its UDP socket open and has no public close.
        client._CloseSocket()


def test_freeradius_accepts_with_reply_attributes_and_rejects_bad_passwords() -> None:
    users = {
        "alice": ("alice-pw", {"Class": "kvmd-operator"}),
        "bob": ("bob-pw", {"Filter-Id": "kvmd-viewer"}),
    }
    with radius_server(users, secret="s3cret") as radius:
        reply = _radius(radius.host, radius.port, radius.secret, "alice", "alice-pw")
        assert reply.code == packet.AccessAccept
        assert reply["Class"] == [b"kvmd-operator"]
        reply = _radius(radius.host, radius.port, radius.secret, "bob", "bob-pw")
        assert reply.code == packet.AccessAccept
        assert reply["Filter-Id"] == ["kvmd-viewer"]

        reply = _radius(radius.host, radius.port, radius.secret, "alice", "bob-pw")
        assert reply.code == packet.AccessReject
        assert "Class" not in reply
        reply = _radius(radius.host, radius.port, radius.secret, "nobody", "x")
        assert reply.code == packet.AccessReject

        radtest = subprocess.run(
            ["radtest", "alice", "alice-pw", f"{radius.host}:{radius.port}", "0", radius.secret],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        assert "Received Access-Accept" in radtest.stdout, radtest.stdout + radtest.stderr


# python-pam is what upstream's pam plugin calls; PAM runs in this child, which has the env.
PAM_CHECK = """\
import sys, pam
p = pam.pam()
ok = p.authenticate(sys.argv[1], sys.argv[2], service=sys.argv[3])
print(ok, p.code, p.reason)
"""


@pytest.mark.parametrize(
    ("user", "passwd", "ok"),
    [("alice", "alice-pw", True), ("alice", "bob-pw", False), ("nobody", "alice-pw", False)],
)
def test_pam_service_authenticates_in_a_process_started_with_its_env(
    user: str, passwd: str, ok: bool
) -> None:
    with pam_service(USERS) as pam:
        result = subprocess.run(
            [sys.executable, "-c", PAM_CHECK, user, passwd, pam.service],
            env=pam.env,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    assert result.stdout.split(" ", 1)[0] == str(ok), result.stdout + result.stderr
