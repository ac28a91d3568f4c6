# SPDX-License-Identifier: GPL-3.0-or-later
"""kvmd's VNC server (RFB 3.3/3.7/3.8): PiKVM's kvmd-vnc, inside the daemon."""
