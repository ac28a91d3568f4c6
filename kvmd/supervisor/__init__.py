# SPDX-License-Identifier: GPL-3.0-or-later
"""Supervised child processes: the generic `ManagedProcess` and the streamer policy."""
