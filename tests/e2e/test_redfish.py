# SPDX-License-Identifier: GPL-3.0-or-later
"""Redfish as DMTF's own clients use it, on `make run` and through the shipped nginx
(issue 19, items 9 to 11): redfishtool, python-redfish-library, and plain HTTP."""

import http.client
import json
import re
import subprocess
import sys
from base64 import b64encode
from pathlib import Path

import pytest
import redfish

from tests.e2e.test_nginx import Nginx, nginx  # noqa: F401 -- the fixture, used below
from tests.e2e.webui import Kvm, wait_for

pytestmark = pytest.mark.timeout(120)

REDFISHTOOL = str(Path(sys.executable).parent / "redfishtool")
BASIC = {"Authorization": "Basic " + b64encode(b"admin:admin").decode()}
DRIVE = "/redfish/v1/Managers/BMC/VirtualMedia/MSD"


def request(
    kvm: Kvm,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One request as written (`//x` too), as the admin unless `headers`; no redirect followed."""
    connection = http.client.HTTPConnection("127.0.0.1", kvm.port, timeout=30)
    try:
        connection.request(method, path, body, BASIC if headers is None else headers)
        response = connection.getresponse()
        return (response.status, dict(response.getheaders()), response.read())
    finally:
        connection.close()


# Item 9: the paths DMTF's clients start with.


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ("/redfish/v1/", "/redfish/v1"),
        ("/redfish/v1/Systems/", "/redfish/v1/Systems"),
        ("/api/info/", "/api/info"),
        ("//api/info", "/api/info"),
        ("/api/info/?fields=meta", "/api/info?fields=meta"),
    ],
)
def test_a_slashed_path_is_redirected_to_the_route(kvm: Kvm, path: str, target: str) -> None:
    (status, headers, _) = request(kvm, "GET", path, headers={})
    assert (status, headers.get("Location")) == (308, target)
    (status, _, body) = request(kvm, "GET", target)
    assert status == 200
    assert json.loads(body)


def test_no_redirect_to_a_path_that_is_not_there(kvm: Kvm) -> None:
    (status, headers, _) = request(kvm, "GET", "/redfish/v2/")
    assert (status, headers.get("Location")) == (404, None)


def test_python_redfish_library_logs_in_and_reads(kvm: Kvm) -> None:
    # It asks for /redfish/v1/ first, and follows the 308.
    client = redfish.redfish_client(
        base_url=kvm.url, username="admin", password="admin", default_prefix="/redfish/v1/"
    )
    client.login(auth="basic")
    try:
        assert client.root["RedfishVersion"] == "1.6.0"
        assert client.root["Managers"] == {"@odata.id": "/redfish/v1/Managers"}
        system = client.get("/redfish/v1/Systems/0")
        assert system.status == 200
        assert system.dict["PowerState"] in ("On", "Off")
        drive = client.get(DRIVE)
        assert (drive.status, drive.dict["Id"]) == (200, "MSD")
        assert client.get("/redfish/v1/Systems/1").status == 400
    finally:
        client.logout()


# Item 11: the virtual media of make run's drive, by its Redfish actions.


def test_insert_and_eject_an_image_on_make_run(kvm: Kvm) -> None:
    uploaded = request(kvm, "POST", "/api/msd/write?image=redfish.img", b"r" * 65536)
    assert uploaded[0] == 200, uploaded
    try:
        insert = json.dumps({"Image": "redfish.img", "WriteProtected": False}).encode()
        assert request(kvm, "POST", f"{DRIVE}/Actions/VirtualMedia.InsertMedia", insert)[0] == 204
        drive = json.loads(request(kvm, "GET", DRIVE)[2])
        assert (drive["Image"], drive["Inserted"], drive["WriteProtected"]) == (
            "redfish.img",
            True,
            False,
        )
        msd = kvm.api("GET", "/msd")["result"]["drive"]
        assert (msd["image"]["name"], msd["connected"], msd["rw"]) == ("redfish.img", True, True)
        (status, _, body) = request(kvm, "POST", f"{DRIVE}/Actions/VirtualMedia.InsertMedia", b"{")
        assert (status, json.loads(body)["result"]["error"]) == (400, "ValidatorError")
    finally:
        eject = request(kvm, "POST", f"{DRIVE}/Actions/VirtualMedia.EjectMedia", b"")
        assert kvm.api("POST", "/msd/remove?image=redfish.img")["ok"] is True
    assert eject[0] == 204
    assert json.loads(request(kvm, "GET", DRIVE)[2])["Inserted"] is False


# Item 10: through nginx, over HTTPS with Basic credentials, as an admin's script would.


def test_redfish_is_passed_through_nginx(nginx: Nginx) -> None:  # noqa: F811 -- the fixture
    basic = ["--user", "admin:admin"]
    systems = json.loads(nginx.curl(*basic, f"{nginx.url}/redfish/v1/Systems").stdout)
    assert systems["Members"] == [{"@odata.id": "/redfish/v1/Systems/0"}]
    # kvmd's redirect and its 401, not nginx's pages.
    root = json.loads(nginx.curl("--location", f"{nginx.url}/redfish/v1/").stdout)
    assert root["Id"] == "RootService"
    denied = nginx.curl(f"{nginx.url}/redfish/v1/Managers")
    assert json.loads(denied.stdout)["result"]["error"] == "UnauthorizedError"
    for link in ("/redfish/v1/Managers", "/redfish/v1/Managers/BMC", DRIVE):
        assert nginx.status(*basic, f"{nginx.url}{link}") == "200", link
    assert nginx.status(*basic, f"{nginx.url}/api/redfish/v1/Managers/BMC") == "200"


def redfishtool(nginx: Nginx, *args: str) -> subprocess.CompletedProcess[str]:  # noqa: F811
    host = nginx.url.removeprefix("https://")
    # -S Always: https for every request, as over nginx; Basic is its default.
    argv = [REDFISHTOOL, "-r", host, "-u", "admin", "-p", "admin", "-S", "Always", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def test_redfishtool_systems_through_nginx(nginx: Nginx) -> None:  # noqa: F811
    listed = redfishtool(nginx, "Systems")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["Members"] == [{"@odata.id": "/redfish/v1/Systems/0"}]
    system = redfishtool(nginx, "Systems", "-I", "0")
    assert system.returncode == 0, system.stderr
    assert json.loads(system.stdout)["Boot"]["BootSourceOverrideEnabled"] == "Disabled"


def test_redfishtool_graceful_restart_through_nginx(nginx: Nginx, kvm: Kvm) -> None:  # noqa: F811
    # redfishtool reads the allowed reset types first, then sends; the simulated target
    # shuts down at the short press and boots at the second one.
    kvm.api("POST", "/atx/power?action=on&wait=1")
    wait_for("the target is on", lambda: "target power on" in target(kvm))
    found = re.search(r"boots (\d+)", target(kvm))
    assert found is not None
    boots = int(found[1])
    restarted = redfishtool(nginx, "Systems", "reset", "GracefulRestart")
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    wait_for(
        "the target shut down and booted again",
        lambda: f"target power on, hdd idle, boots {boots + 1}," in target(kvm),
        seconds=30,
        explain=lambda: target(kvm),
    )
    audit = (kvm.run / "audit.log").read_text()
    assert '"redfish.reset"' in audit
    # The session's target is off for the tests that follow (once the restart's last
    # press has let the button go).
    wait_for("the power button is free", lambda: not kvm.api("GET", "/atx")["result"]["busy"])
    assert kvm.api("POST", "/atx/power?action=off&wait=1")["ok"] is True
    wait_for("the target is off again", lambda: "target power off" in target(kvm), seconds=15)


def target(kvm: Kvm) -> str:
    path = kvm.run / "target.txt"
    return path.read_text() if path.exists() else ""
