# SPDX-License-Identifier: GPL-3.0-or-later
"""The typed config: one frozen Struct per section, validated once at start-up.

Key names follow PiKVM's `kvmd:` section where both have the option, so that
override snippets written for PiKVM read the same here.
"""

from typing import Annotated, Literal

from msgspec import Meta, field

from kvmd.auth.oidc.config import OidcConfig
from kvmd.auth.plugins.config import ExternalAuthConfig
from kvmd.config.base import Section
from kvmd.hw.gadget_config import OtgConfig
from kvmd.media.config import MediaConfig
from kvmd.plugins.atx.config import AtxConfig, DisabledAtxConfig
from kvmd.plugins.gpio.config import GpioConfig
from kvmd.plugins.hid.config import DisabledHidConfig, HidConfig
from kvmd.plugins.msd.config import DisabledMsdConfig, MsdConfig
from kvmd.plugins.streamer.config import DisabledStreamerConfig, StreamerConfig
from kvmd.vnc.config import VncConfig

Port = Annotated[int, Meta(ge=0, le=65535)]
Seconds = Annotated[float, Meta(ge=0.0, le=86400.0 * 366)]
PollSeconds = Annotated[float, Meta(ge=0.1, le=3600.0)]


class ServerConfig(Section, frozen=True):
    """Where the API listens: a unix socket (behind nginx), TCP, or both."""

    unix: str = "/run/kvmd/kvmd.sock"
    unix_rm: bool = True
    unix_mode: Annotated[int, Meta(ge=0, le=0o777)] = 0o660
    host: str = "127.0.0.1"
    port: Port = 0
    heartbeat: Annotated[float, Meta(ge=1.0, le=3600.0)] = 15.0
    access_log: bool = True
    shutdown_timeout: Annotated[float, Meta(ge=0.1, le=60.0)] = 5.0


class HtpasswdAuthConfig(Section, frozen=True, tag_field="type", tag="htpasswd"):
    """Passwords from an Apache htpasswd file (bcrypt, sha256/sha512-crypt, apr1, {SSHA})."""

    file: str = "/etc/kvmd/htpasswd"
    # With an external service: these users still log in with the htpasswd file (PiKVM's).
    force_users: list[str] = field(default_factory=list)


class TotpSecretConfig(Section, frozen=True):
    """Where the base32 TOTP secret lives; an empty path or file turns 2FA off."""

    file: str = "/etc/kvmd/totp.secret"


class TotpConfig(Section, frozen=True):
    """Second factor: the current 6-digit code appended to every password."""

    secret: TotpSecretConfig = field(default_factory=TotpSecretConfig)


class AuthFilesConfig(Section, frozen=True):
    """Where roles and keys live; passwords stay in `internal.file` (htpasswd)."""

    # user -> {roles, disabled, must_change_passwd, note}; a user without an entry
    # holds `default_role`.
    users: str = "/etc/kvmd/users.yaml"
    # Custom roles: name -> {permissions}.
    roles: str = "/etc/kvmd/roles.yaml"
    # API keys with their secrets' SHA-256, mode 0600, on a writable partition.
    keys: str = "/var/lib/kvmd/apikeys.json"
    # What the external service said at each directory user's last login (groups, time),
    # so that their API keys keep their owner's roles across restarts; "" keeps it in memory.
    directory: str = "/var/lib/kvmd/directory.json"


class LockoutConfig(Section, frozen=True):
    """A user is locked for `minutes` after `attempts` failed passwords in a row."""

    attempts: Annotated[int, Meta(ge=1, le=1000)] = 10
    minutes: Annotated[float, Meta(ge=0.0, le=1440.0)] = 5.0


class ThrottleConfig(Section, frozen=True):
    """A source address waits `seconds` after `attempts` failed credentials."""

    attempts: Annotated[int, Meta(ge=1, le=1000)] = 5
    seconds: Annotated[float, Meta(ge=0.0, le=86400.0)] = 60.0


class AuthConfig(Section, frozen=True):
    """Who may use the API and how credentials are checked."""

    enabled: bool = True
    # Upper bound of a login session in seconds; 0 means sessions end only at logout.
    expire: Annotated[int, Meta(ge=0)] = 0
    allow_redirects: list[str] = field(default_factory=lambda: ["/", "/kvm", "/kvm/"])
    unauth_paths: list[str] = field(default_factory=list)
    cookie_samesite: Literal["strict", "lax", "none"] = "strict"
    # How long a verified header/basic password stays in the in-memory cache (0 = never).
    cache_ttl: Seconds = 60.0
    internal: HtpasswdAuthConfig = field(default_factory=HtpasswdAuthConfig)
    # PiKVM's external service: everyone but `internal.force_users` logs in through it.
    external: ExternalAuthConfig | None = None
    # A group the external service names (LDAP group DN, RADIUS Class, ...) -> a role.
    role_map: dict[str, str] = field(default_factory=dict)
    # Single sign-on with OpenID Connect providers (beyond PiKVM).
    oidc: OidcConfig = field(default_factory=OidcConfig)
    totp: TotpConfig = field(default_factory=TotpConfig)
    # The role of a user with no entry in `files.users`: `admin` behaves as PiKVM does.
    default_role: str = "admin"
    # Users may create and manage API keys of their own, up to their own permissions.
    self_keys: bool = False
    files: AuthFilesConfig = field(default_factory=AuthFilesConfig)
    lockout: LockoutConfig = field(default_factory=LockoutConfig)
    throttle: ThrottleConfig = field(default_factory=ThrottleConfig)


class AuditConfig(Section, frozen=True):
    """The audit trail: JSON lines, rotated by size; an empty `file` keeps it in memory."""

    file: str = "/var/lib/kvmd/audit.log"
    max_size: Annotated[int, Meta(ge=4096)] = 4 * 1024 * 1024
    backups: Annotated[int, Meta(ge=0, le=100)] = 4


class InfoHwConfig(Section, frozen=True):
    """Sources of /api/info hw: the platform file and the Raspberry Pi throttling tool."""

    platform: str = "/usr/lib/kvmd/platform"
    vcgencmd_cmd: list[str] = field(default_factory=lambda: ["/usr/bin/vcgencmd"])
    ignore_past: bool = False
    state_poll: PollSeconds = 5.0


class InfoFanConfig(Section, frozen=True):
    """The optional kvmd-fan daemon, asked for its state over a unix socket."""

    unix: str = ""
    timeout: Annotated[float, Meta(ge=0.1, le=60.0)] = 5.0
    state_poll: PollSeconds = 5.0


class InfoConfig(Section, frozen=True):
    """Sources of /api/info."""

    meta: str = "/etc/kvmd/meta.yaml"
    extras: str = "/usr/share/kvmd/extras"
    hw: InfoHwConfig = field(default_factory=InfoHwConfig)
    fan: InfoFanConfig = field(default_factory=InfoFanConfig)


class LogReaderConfig(Section, frozen=True):
    """Where /api/log reads from: journald under systemd, else the daemon's own ring buffer."""

    enabled: bool = True
    source: Literal["auto", "journal", "memory"] = "auto"
    journalctl_cmd: list[str] = field(default_factory=lambda: ["/usr/bin/journalctl"])
    # Records kept by the in-memory ring buffer (about 200 bytes each).
    buffer_lines: Annotated[int, Meta(ge=100, le=1_000_000)] = 20_000


class OcrConfig(Section, frozen=True):
    """Text recognition in snapshots with the tesseract program; off when it is missing."""

    cmd: list[str] = field(default_factory=lambda: ["/usr/bin/tesseract"])
    langs: list[str] = field(default_factory=lambda: ["eng"])
    timeout: Annotated[float, Meta(ge=0.5, le=120.0)] = 10.0


class KvmdConfig(Section, frozen=True):
    """The daemon's own section."""

    # Prefix for /proc and /sys reads, so that a fake tree can stand in for them off a Pi.
    sysroot: str = "/"
    server: ServerConfig = field(default_factory=ServerConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    info: InfoConfig = field(default_factory=InfoConfig)
    log_reader: LogReaderConfig = field(default_factory=LogReaderConfig)
    ocr: OcrConfig = field(default_factory=OcrConfig)
    hid: HidConfig = field(default_factory=DisabledHidConfig)
    atx: AtxConfig = field(default_factory=DisabledAtxConfig)
    msd: MsdConfig = field(default_factory=DisabledMsdConfig)
    gpio: GpioConfig = field(default_factory=GpioConfig)
    streamer: StreamerConfig = field(default_factory=DisabledStreamerConfig)


class LoggingConfig(Section, frozen=True):
    """Log verbosity of the daemon."""

    level: Literal["debug", "info", "warning", "error"] = "info"


class Config(Section, frozen=True):
    """The whole effective configuration."""

    kvmd: KvmdConfig = field(default_factory=KvmdConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    otg: OtgConfig = field(default_factory=OtgConfig)
    vnc: VncConfig = field(default_factory=VncConfig)
    media: MediaConfig = field(default_factory=MediaConfig)
