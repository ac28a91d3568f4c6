# SPDX-License-Identifier: GPL-3.0-or-later
"""The `vnc:` section: PiKVM's keys and defaults, and kvmd's few of its own.

On PiKVM the section belongs to the kvmd-vnc service, which an owner switches on with
systemctl; here the server runs inside kvmd when `enabled` is true.
"""

from typing import Annotated, Literal

from msgspec import Meta, field

from kvmd.config.base import Section

_Port = Annotated[int, Meta(ge=0, le=65535)]
_Timeout = Annotated[float, Meta(gt=0.0, le=300.0)]


class VncKeepaliveConfig(Section, frozen=True):
    enabled: bool = True
    idle: Annotated[int, Meta(ge=1, le=3600)] = 10
    interval: Annotated[int, Meta(ge=1, le=60)] = 3
    count: Annotated[int, Meta(ge=1, le=10)] = 3


class VncX509Config(Section, frozen=True):
    # An empty `cert` turns the X509 security types off.
    cert: str = "/etc/kvmd/vnc/ssl/server.crt"
    key: str = "/etc/kvmd/vnc/ssl/server.key"


class VncTlsConfig(Section, frozen=True):
    # Empty: no TLS security types at all. PiKVM's default lets anonymous TLS in.
    ciphers: str = "ALL:@SECLEVEL=0"
    timeout: _Timeout = 30.0
    x509: VncX509Config = field(default_factory=VncX509Config)


class VncServerConfig(Section, frozen=True):
    host: str = ""
    port: _Port = 5900
    max_clients: Annotated[int, Meta(ge=1, le=1000)] = 10
    no_delay: bool = True
    keepalive: VncKeepaliveConfig = field(default_factory=VncKeepaliveConfig)
    tls: VncTlsConfig = field(default_factory=VncTlsConfig)


class VncMemsinkConfig(Section, frozen=True):
    """PiKVM's shared-memory frame source; read here from the streamer's HTTP stream."""

    sink: str = ""
    lock_timeout: _Timeout = 1.0
    wait_timeout: _Timeout = 1.0
    drop_same_frames: Annotated[float, Meta(ge=0.0, le=60.0)] = 1.0


class VncH264MemsinkConfig(VncMemsinkConfig, frozen=True):
    drop_same_frames: Annotated[float, Meta(ge=0.0, le=60.0)] = 0.0


class VncMemsinksConfig(Section, frozen=True):
    jpeg: VncMemsinkConfig = field(default_factory=VncMemsinkConfig)
    h264: VncH264MemsinkConfig = field(default_factory=VncH264MemsinkConfig)


class VncAuthVncConfig(Section, frozen=True):
    """VNCAuth: the passwords of a vncpasswd file (one a line), tied to no kvmd user."""

    enabled: bool = False
    file: str = "/etc/kvmd/vncpasswd"


class VncVencryptConfig(Section, frozen=True):
    enabled: bool = True


class VncAuthConfig(Section, frozen=True):
    vncauth: VncAuthVncConfig = field(default_factory=VncAuthVncConfig)
    vencrypt: VncVencryptConfig = field(default_factory=VncVencryptConfig)


class VncConfig(Section, frozen=True):
    # kvmd's own: whether kvmd serves VNC (PiKVM starts its kvmd-vnc service instead).
    enabled: bool = False
    desired_fps: Annotated[int, Meta(ge=0, le=120)] = 30
    mouse_output: Literal["usb", "usb_win98", "usb_rel", "ps2", "disabled"] = "usb"
    keymap: str = "/usr/share/kvmd/keymaps/en-us"
    scroll_rate: Annotated[int, Meta(ge=1, le=30)] = 4
    # kvmd's own: the fps cap of clients without Tight JPEG, whose frames are decoded and
    # sent as ZRLE or Raw (each costs the daemon CPU).
    decoded_fps: Annotated[int, Meta(ge=1, le=60)] = 10
    # kvmd's own: Left Alt tapped twice, then this key: the OCR text of the target's
    # screen goes to the client's clipboard (ServerCutText). Empty: off.
    ocr_key: str = "KeyC"
    server: VncServerConfig = field(default_factory=VncServerConfig)
    memsink: VncMemsinksConfig = field(default_factory=VncMemsinksConfig)
    auth: VncAuthConfig = field(default_factory=VncAuthConfig)
