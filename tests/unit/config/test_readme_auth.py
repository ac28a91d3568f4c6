# SPDX-License-Identifier: GPL-3.0-or-later
"""The README's override.yaml examples for logins from a directory and single sign-on load.

Each is an owner's whole override on top of the Pi's config, so a key the README spells
wrong (or a key renamed later without the README) fails here, naming it.
"""

import re
from pathlib import Path

import pytest

from kvmd.auth.oidc.config import OidcConfig
from kvmd.auth.plugins.config import ExternalAuthConfig
from kvmd.config.load import load_files

REPO = Path(__file__).resolve().parents[3]
README = (REPO / "README.md").read_text()
SECTION = README[README.index("### Logins from a directory") : README.index("\n## Tools\n")]
EXAMPLES = re.findall(r"```yaml\n(.*?)```", SECTION, re.DOTALL)


def test_each_plugin_and_sso_has_an_example():
    pattern = re.compile(r"^      type: (\w+)$|^    (oidc):$", re.MULTILINE)
    kinds = [pattern.findall(text) for text in EXAMPLES]
    assert kinds == [[(k, "")] for k in ("ldap", "radius", "pam", "http")] + [[("", "oidc")]]


@pytest.mark.parametrize("text", EXAMPLES, ids=lambda text: text.split("\n")[3].strip())
def test_the_example_loads_over_the_pi_config(text, tmp_path):
    override = tmp_path / "override.yaml"
    override.write_text(text)
    auth = load_files([REPO / "configs/kvmd/boards/rpi4-csi.yaml", override]).kvmd.auth
    assert auth.external is None or isinstance(auth.external, ExternalAuthConfig)
    assert auth.role_map or auth.default_role == "viewer"
    if "oidc:" in text:
        assert isinstance(auth.oidc, OidcConfig)
        assert sorted(auth.oidc.providers) == ["authentik", "keycloak"]
        keycloak = auth.oidc.providers["keycloak"]
        assert keycloak.issuer == "https://sso.example.com/realms/homelab"
        assert (keycloak.user_claim, keycloak.groups_claim) == ("preferred_username", "groups")
    else:
        assert auth.internal.force_users == ["admin"]
        assert auth.external is not None
