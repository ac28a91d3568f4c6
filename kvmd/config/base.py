# SPDX-License-Identifier: GPL-3.0-or-later
"""The base of every config Struct."""

import msgspec


class Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A config section: immutable, and an unknown key is an error, not a silent no-op."""
