# SPDX-License-Identifier: GPL-3.0-or-later
"""Real LDAP, RADIUS, PAM and OpenID Connect services for the auth plugins' tests.

Each context manager runs Debian's own server (slapd, FreeRADIUS, pam_wrapper's pam_matrix)
from a temp dir on a free 127.0.0.1 port, waits until it answers and stops it on exit, so no
process outlives the test. A missing package fails the test with its name: these tests are
part of `make test`, and a skip would hide an unchecked plugin.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

# slapd and freeradius answer within a second here; the bound only stops a broken config
# from hanging the test past pytest-timeout's 10 s with no log to read.
START_TIMEOUT = 5.0
STOP_TIMEOUT = 3.0
CLIENT_TIMEOUT = 5.0


def _require(command: str, package: str) -> str:
    # Daemons live in /usr/sbin, which a non-root PATH may lack.
    path = shutil.which(command) or shutil.which(command, path="/usr/sbin:/sbin")
    if path is None:
        pytest.fail(f"{command} is missing: apt-get install {package} (make installs it)")
    return path


def _free_port(kind: socket.SocketKind) -> int:
    # Closed before the server binds it; another process could take it in between, which
    # the start-up wait then reports with the server's log.
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT)


def _wait_ready(
    proc: subprocess.Popen[bytes], log: Path, is_ready: Callable[[], bool], name: str
) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not is_ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            state = "exited" if proc.poll() is not None else "did not answer"
            pytest.fail(
                f"{name} {state} within {START_TIMEOUT} s; log:\n{log.read_text(errors='replace')}"
            )
        time.sleep(0.05)


@contextlib.contextmanager
def _daemon(argv: list[str], log: Path, is_ready: Callable[[], bool], name: str) -> Iterator[None]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        _wait_ready(proc, log, is_ready, name)
        yield
    finally:
        _stop(proc)


# Active Directory's names for what upstream's ldap plugin searches for, with AD's own
# OIDs: (&(objectClass=user)(userPrincipalName=<login>)(memberOf=<group>)). AD matches
# userPrincipalName case-insensitively; memberOf comes from slapd's memberof overlay.
_AD_SCHEMA = """\
attributetype ( 1.2.840.113556.1.4.656 NAME 'userPrincipalName'
    EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( 1.2.840.113556.1.5.9 NAME 'user' SUP top AUXILIARY
    MAY userPrincipalName )
"""

_SLAPD_CONF = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include {dir}/ad.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
pidfile {dir}/slapd.pid
argsfile {dir}/slapd.args

database mdb
suffix "{base}"
rootdn "{rootdn}"
rootpw {rootpw}
directory {dir}/db
maxsize 10485760
access to attrs=userPassword by anonymous auth by * none
access to * by * read
overlay memberof
"""


@dataclass(frozen=True, kw_only=True)
class SlapdServer:
    """A running slapd: users are inetOrgPerson + AD's user class, groups groupOfNames."""

    url: str
    base: str
    domain: str
    rootdn: str
    rootpw: str
    log: Path

    def user_dn(self, name: str) -> str:
        return f"uid={name},ou=people,{self.base}"

    def group_dn(self, name: str) -> str:
        return f"cn={name},ou=groups,{self.base}"

    def upn(self, name: str) -> str:
        return f"{name}@{self.domain}"

    def plugin_config(self, group: str = "kvm") -> dict[str, str]:
        """`kvmd.auth.external` for this server, members of `group` allowed in.

        slapd binds with a DN, not AD's user@domain: kvmd's `user_dn`, and a search by uid.
        """
        return {
            "type": "ldap",
            "url": self.url,
            "base": self.base,
            "group": self.group_dn(group),
            "user_dn": f"uid={{user}},ou=people,{self.base}",
            "filter": "(&(uid={user})(memberOf={group}))",
        }

    def set_members(self, group: str, users: list[str]) -> None:
        """Replaces the group's members; the memberof overlay updates the users' memberOf."""
        self.modify(
            f"dn: {self.group_dn(group)}\nchangetype: modify\nreplace: member\n"
            + "".join(f"member: {m}\n" for m in self._members(users))
        )

    def modify(self, ldif: str) -> None:
        """Applies an LDIF change record as the root DN with OpenLDAP's ldapmodify."""
        argv = ["ldapmodify", "-x", "-H", self.url, "-D", self.rootdn, "-w", self.rootpw]
        result = subprocess.run(
            argv, input=ldif.encode(), capture_output=True, timeout=CLIENT_TIMEOUT, check=False
        )
        if result.returncode != 0:
            raise AssertionError(f"ldapmodify failed: {result.stderr.decode()}\n{ldif}")

    def _members(self, users: list[str]) -> list[str]:
        # groupOfNames must have a member; an empty group holds the (entry-less) root DN,
        # which the overlay ignores as dangling.
        return [self.user_dn(u) for u in users] or [self.rootdn]


@contextlib.contextmanager
def slapd_server(
    users: dict[str, str], groups: dict[str, list[str]], base: str = "dc=example,dc=test"
) -> Iterator[SlapdServer]:
    """Runs slapd with the users (name → password) and groups (name → user names)."""
    slapd = _require("slapd", "slapd")
    _require("ldapmodify", "ldap-utils")
    port = _free_port(socket.SOCK_STREAM)
    with tempfile.TemporaryDirectory(prefix="kvmd-slapd-") as tmp:
        work = Path(tmp)
        (work / "db").mkdir()
        (work / "ad.schema").write_text(_AD_SCHEMA)
        domain = ".".join(part.split("=", 1)[1] for part in base.split(","))
        server = SlapdServer(
            url=f"ldap://127.0.0.1:{port}",
            base=base,
            domain=domain,
            rootdn=f"cn=admin,{base}",
            rootpw="admin-secret",
            log=work / "slapd.log",
        )
        conf = work / "slapd.conf"
        conf.write_text(
            _SLAPD_CONF.format(dir=work, base=base, rootdn=server.rootdn, rootpw=server.rootpw)
        )
        # -d keeps slapd in the foreground (even at level 0); root keeps root, no -u/-g.
        argv = [slapd, "-d", "0", "-f", str(conf), "-h", f"{server.url}/"]
        with _daemon(argv, server.log, lambda: _is_listening(port), "slapd"):
            # Loaded online, not by slapadd, so that the memberof overlay sees the groups.
            server.modify(_ldif(server, users, groups))
            yield server


def _is_listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _ldif(server: SlapdServer, users: dict[str, str], groups: dict[str, list[str]]) -> str:
    top = server.base.split(",")[0].split("=", 1)[1]
    records = [
        f"dn: {server.base}\nchangetype: add\nobjectClass: dcObject\nobjectClass: organization"
        f"\ndc: {top}\no: {top}\n",
        f"dn: ou=people,{server.base}\nchangetype: add\nobjectClass: organizationalUnit"
        "\nou: people\n",
        f"dn: ou=groups,{server.base}\nchangetype: add\nobjectClass: organizationalUnit"
        "\nou: groups\n",
    ]
    records += [
        f"dn: {server.user_dn(name)}\nchangetype: add\nobjectClass: inetOrgPerson"
        f"\nobjectClass: user\nuid: {name}\ncn: {name}\nsn: {name}"
        f"\nuserPrincipalName: {server.upn(name)}\nuserPassword: {passwd}\n"
        for name, passwd in users.items()
    ]
    records += [
        f"dn: {server.group_dn(name)}\nchangetype: add\nobjectClass: groupOfNames\ncn: {name}\n"
        + "".join(f"member: {m}\n" for m in server._members(members))
        for name, members in groups.items()
    ]
    return "\n".join(records)


@dataclass(kw_only=True)
class RadiusServer:
    host: str
    port: int
    secret: str
    log: Path
    users_file: Path
    restart: Callable[[], None] = lambda: None

    def set_users(self, users: dict[str, tuple[str, dict[str, str]]]) -> None:
        """New users and reply attributes, with FreeRADIUS restarted on the same port.

        Not a HUP: it ignores one sooner than 5 s after its start.
        """
        _write_radius_users(self.users_file, users)
        self.restart()


# One auth listener on our port, PAP against the users file; Debian's default and
# inner-tunnel sites (ports 1812/1813/18120, EAP) are not enabled in the copy.
_RADIUS_SITE = """\
server default {{
    listen {{
        type = auth
        ipaddr = 127.0.0.1
        port = {port}
    }}
    authorize {{
        files
        pap
    }}
    authenticate {{
        Auth-Type PAP {{
            pap
        }}
    }}
    post-auth {{
        # As Debian's default site: a reject carries no reply items the files module set.
        Post-Auth-Type REJECT {{
            attr_filter.access_reject
        }}
    }}
}}
"""

# pyrad, like upstream's plugin, sends no Message-Authenticator.
_RADIUS_CLIENTS = """\
client localhost {{
    ipaddr = 127.0.0.1
    secret = "{secret}"
    require_message_authenticator = no
}}
"""


@contextlib.contextmanager
def radius_server(
    users: dict[str, tuple[str, dict[str, str]]], secret: str
) -> Iterator[RadiusServer]:
    """Runs FreeRADIUS with users as name → (password, reply attributes)."""
    freeradius = _require("freeradius", "freeradius")
    debian_conf = Path("/etc/freeradius/3.0")
    if not (debian_conf / "radiusd.conf").exists():
        pytest.fail("/etc/freeradius/3.0 is missing: apt-get install freeradius-config")
    port = _free_port(socket.SOCK_DGRAM)
    with tempfile.TemporaryDirectory(prefix="kvmd-radius-") as tmp:
        work = Path(tmp)
        raddb = work / "raddb"
        # symlinks=True keeps the postinst's mods-enabled links (relative, into the copy).
        shutil.copytree(debian_conf, raddb, symlinks=True)
        _configure_radius(raddb, work, port, secret, users)
        server = RadiusServer(
            host="127.0.0.1",
            port=port,
            secret=secret,
            log=work / "radius.log",
            users_file=raddb / "mods-config" / "files" / "authorize",
        )
        # -X: foreground, single-threaded, debug log on stdout (read when start-up fails).
        argv = [freeradius, "-X", "-d", str(raddb)]
        with contextlib.ExitStack() as running:

            def restart() -> None:
                running.close()
                ready = lambda: _has_line(server.log, "Ready to process")  # noqa: E731
                running.enter_context(_daemon(argv, server.log, ready, "freeradius"))

            restart()
            server.restart = restart
            yield server


def _configure_radius(
    raddb: Path, work: Path, port: int, secret: str, users: dict[str, tuple[str, dict[str, str]]]
) -> None:
    conf = raddb / "radiusd.conf"
    text = conf.read_text()
    for key, value in {
        "logdir": work,
        "run_dir": work,
        "db_dir": work,
        "pidfile": work / "radiusd.pid",
    }.items():
        text = re.sub(rf"(?m)^{key}\s*=.*$", f"{key} = {value}", text)
    # Debian delays each Access-Reject by 1 s against password guessing; tests reject a lot.
    text = re.sub(r"(?m)^(\s*)reject_delay\s*=.*$", r"\1reject_delay = 0", text)
    # Not root-dropping to freerad: it could not read the copy in our 0700 temp dir.
    text = re.sub(r"(?m)^(\s*)(user|group)\s*=", r"\1#\2 =", text)
    conf.write_text(text)
    for site in (raddb / "sites-enabled").iterdir():
        site.unlink()
    (raddb / "sites-enabled" / "kvmd-test").write_text(_RADIUS_SITE.format(port=port))
    # EAP needs the snakeoil certs and nothing here uses it.
    (raddb / "mods-enabled" / "eap").unlink(missing_ok=True)
    (raddb / "clients.conf").write_text(_RADIUS_CLIENTS.format(secret=_quote(secret)))
    _write_radius_users(raddb / "mods-config" / "files" / "authorize", users)


def _write_radius_users(path: Path, users: dict[str, tuple[str, dict[str, str]]]) -> None:
    path.write_text("".join(_radius_user(name, pw, reply) for name, (pw, reply) in users.items()))


def _radius_user(name: str, passwd: str, reply: dict[str, str]) -> str:
    check = f'"{_quote(name)}" Cleartext-Password := "{_quote(passwd)}"\n'
    items = ",\n".join(f'\t{attr} := "{_quote(value)}"' for attr, value in reply.items())
    return check + (items + "\n" if items else "") + "\n"


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _has_line(log: Path, text: str) -> bool:
    return log.exists() and text in log.read_text(errors="replace")


@dataclass(frozen=True, kw_only=True)
class PamService:
    """A PAM service for a process started with `env` (PAM runs in the caller's process)."""

    service: str
    env: dict[str, str] = field(default_factory=dict)


@contextlib.contextmanager
def pam_service(users: dict[str, str], service: str = "kvmd-test") -> Iterator[PamService]:
    """Writes a pam_matrix service with the users (name → password), no system accounts."""
    libs = sorted(Path("/usr/lib").glob("*/libpam_wrapper.so"))
    matrix = sorted(Path("/usr/lib").glob("*/pam_wrapper/pam_matrix.so"))
    if not libs or not matrix:
        pytest.fail("pam_wrapper is missing: apt-get install libpam-wrapper")
    with tempfile.TemporaryDirectory(prefix="kvmd-pam-") as tmp:
        work = Path(tmp)
        passdb = work / "passdb"
        # pam_matrix's format: user:password:service it may log in to.
        passdb.write_text("".join(f"{name}:{pw}:{service}\n" for name, pw in users.items()))
        services = work / "services"
        services.mkdir()
        (services / service).write_text(
            "".join(
                f"{kind}\trequired\t{matrix[0]} passdb={passdb}\n"
                for kind in ("auth", "account", "password", "session")
            )
        )
        # python-pam and pamela call libpam through ctypes (dlopen + dlsym on libpam.so.0's
        # own handle), which bypasses LD_PRELOAD's interposition: libpam.so.0 in the search
        # path must be the wrapper itself. The wrapper loads the real libpam by full path.
        shim = work / "lib"
        shim.mkdir()
        (shim / "libpam.so.0").symlink_to(libs[0])
        library_path = os.pathsep.join(filter(None, [str(shim), os.environ.get("LD_LIBRARY_PATH")]))
        env = {
            **os.environ,
            "LD_LIBRARY_PATH": library_path,
            "LD_PRELOAD": str(libs[0]),
            "PAM_WRAPPER": "1",
            "PAM_WRAPPER_SERVICE_DIR": str(services),
        }
        yield PamService(service=service, env=env)


@dataclass
class OidcProvider:
    """oidc-provider-mock on 127.0.0.1: discovery, keys, a login form, users' claims."""

    issuer: str

    def set_user(self, sub: str, claims: dict[str, object]) -> None:
        """The claims the provider puts in `sub`'s tokens from now on (PUT /users/<sub>)."""
        self._put(f"/users/{sub}", json.dumps(claims).encode())

    def fail_with(self, status: int) -> None:
        """Answer every request with `status` from now on (0: work again)."""
        self._put(f"/_test/failing/{status}", b"")

    def recorded(self) -> dict[str, list[Any]]:
        """What clients sent: `authorize` queries, `token` forms and `token_auth` headers."""
        url = f"{self.issuer}/_test/recorded"
        with urllib.request.urlopen(url, timeout=CLIENT_TIMEOUT) as answer:  # noqa: S310
            return json.loads(answer.read())

    def _put(self, path: str, body: bytes) -> None:
        request = urllib.request.Request(  # noqa: S310 -- the provider's own http URL
            self.issuer + path,
            data=body,
            method="PUT",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=CLIENT_TIMEOUT) as answer:  # noqa: S310
            assert answer.status == 204


@contextlib.contextmanager
def oidc_provider() -> Iterator[OidcProvider]:
    """tests/oidcmock.py in its own process (see there why), stopped on exit."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.oidcmock"],
        cwd=Path(__file__).parent.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        port = proc.stdout.readline().decode().strip()
        if not port.isdigit():
            pytest.fail("oidc-provider-mock did not start: pip install oidc-provider-mock")
        yield OidcProvider(issuer=f"http://127.0.0.1:{port}")
    finally:
        _stop(proc)
        if proc.stdout is not None:
            proc.stdout.close()
