# SPDX-License-Identifier: GPL-3.0-or-later
"""kvmd: an asynchronous IP-KVM daemon speaking the PiKVM API."""

__version__ = "0.1.0"
