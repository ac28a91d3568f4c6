# SPDX-License-Identifier: GPL-3.0-or-later
"""Simulated hardware processes for development and tests off a Pi."""
