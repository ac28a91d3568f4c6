# SPDX-License-Identifier: GPL-3.0-or-later
"""`kvmd.auth.external`: one of PiKVM's plugins, chosen by `type`."""

from kvmd.auth.plugins.http import HttpAuthConfig
from kvmd.auth.plugins.ldap import LdapAuthConfig
from kvmd.auth.plugins.pam import PamAuthConfig
from kvmd.auth.plugins.radius import RadiusAuthConfig

ExternalAuthConfig = HttpAuthConfig | LdapAuthConfig | RadiusAuthConfig | PamAuthConfig
