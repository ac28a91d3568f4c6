# SPDX-License-Identifier: GPL-3.0-or-later
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kvmd.config.dump import dump_config
from kvmd.config.load import config_files, load_config, load_files
from kvmd.errors import ConfigError
from kvmd.plugins.gpio.config import WolDriverConfig
from kvmd.plugins.streamer.config import UstreamerConfig


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_merge_order_main_then_override_d_sorted_then_override(tmp_path):
    main = write(tmp_path / "main.yaml", "kvmd:\n  server:\n    port: 1\n    host: main\n")
    write(tmp_path / "o.d" / "20-b.yaml", "kvmd:\n  server:\n    port: 3\n")
    write(tmp_path / "o.d" / "10-a.yaml", "kvmd:\n  server:\n    port: 2\n    host: a\n")
    write(tmp_path / "o.d" / ".hidden", "kvmd: {server: {port: 99}}\n")
    override = write(tmp_path / "override.yaml", "kvmd:\n  server:\n    heartbeat: 7\n")
    config = load_config(main, tmp_path / "o.d", override)
    assert config.kvmd.server.port == 3
    assert config.kvmd.server.host == "a"
    assert config.kvmd.server.heartbeat == 7.0
    assert [p.name for p in config_files(main, tmp_path / "o.d", override)] == [
        "main.yaml",
        "10-a.yaml",
        "20-b.yaml",
        "override.yaml",
    ]


def test_lists_are_replaced_not_appended(tmp_path):
    main = write(tmp_path / "m.yaml", "kvmd:\n  auth:\n    unauth_paths: [/a, /b]\n")
    over = write(tmp_path / "o.yaml", "kvmd:\n  auth:\n    unauth_paths: [/c]\n")
    assert load_files([main, over]).kvmd.auth.unauth_paths == ["/c"]


def test_a_pikvm_streamer_override_loads(tmp_path):
    # What PiKVM owners put in override.yaml to adjust ustreamer without repeating `cmd`.
    main = write(tmp_path / "m.yaml", "kvmd:\n  streamer:\n    type: ustreamer\n")
    over = write(
        tmp_path / "o.yaml",
        "kvmd:\n"
        "  streamer:\n"
        "    reset_delay: 2\n"
        "    h264_boost: true\n"
        "    passthrough: true\n"
        "    cmd_remove: [--persistent]\n"
        "    cmd_append: [--format=mjpeg, --encoder=hw]\n"
        "    pre_start_cmd: [/usr/bin/v4l2-ctl, --set-edid]\n"
        "    post_stop_cmd_append: [--bye]\n",
    )
    streamer = load_files([main, over]).kvmd.streamer
    assert isinstance(streamer, UstreamerConfig)
    full = streamer.full_cmd()
    assert "--persistent" not in full
    assert full[0] == "/usr/bin/ustreamer"
    assert full[-4:] == ["--format=mjpeg", "--encoder=hw", "--h264-boost", "--v4p"]
    assert streamer.pre_start() == ["/usr/bin/v4l2-ctl", "--set-edid"]
    assert streamer.post_stop() == []  # no command to append to
    assert streamer.reset_delay == 2.0


# Lines an owner's /etc/kvmd/override.yaml holds on a PiKVM: other daemons' sections and
# kvmd settings this daemon does not use. PiKVM ignores what a daemon does not know.
PIKVM_OVERRIDE = """\
vnc:
  keymap: /usr/share/kvmd/keymaps/de
  auth: {vncauth: {enabled: true}}
janus: {stun: {host: stun.example.org, port: 3478}}
nginx: {https: {port: 8443}}
otg:
  remote_wakeup: true
  devices: {ethernet: {enabled: true, driver: ecm}}
logging: {root: {level: DEBUG}}
kvmd:
  prometheus: {auth: {enabled: false}}
  auth: {usc: {users: [root]}, internal: {force_users: [admin], file: /etc/kvmd/htpasswd}}
  hid: {ignore_keys: [MetaLeft], jiggler: {active: true}}
"""


def test_an_owners_pikvm_override_loads_and_names_what_is_ignored(tmp_path):
    main = write(tmp_path / "m.yaml", "kvmd:\n  hid:\n    type: otg\n")  # the platform file
    over = write(tmp_path / "o.yaml", PIKVM_OVERRIDE)
    ignored: list[str] = []
    config = load_files([main, over], ignored)
    assert ignored == [
        "janus",
        "kvmd.auth.usc",
        "kvmd.hid.ignore_keys",
        "kvmd.prometheus",
        "logging.root",
        "nginx",
        "otg.devices",
        "otg.remote_wakeup",
    ]
    # Next to them, what this daemon does use is taken as usual: the VNC server's too.
    assert config.vnc.keymap == "/usr/share/kvmd/keymaps/de"
    assert config.vnc.auth.vncauth.enabled is True
    assert config.kvmd.auth.internal.file == "/etc/kvmd/htpasswd"
    assert config.kvmd.auth.internal.force_users == ["admin"]
    assert config.kvmd.hid.jiggler.active is True
    # A misspelt key is still refused, PiKVM's or not.
    typo = write(tmp_path / "t.yaml", "kvmd:\n  prometheus: {}\n  hid: {ignore_key: []}\n")
    with pytest.raises(ConfigError, match=r"kvmd\.hid\.ignore_key: unknown key"):
        load_files([main, typo])


def test_older_pikvm_spellings_are_read_as_pikvm_reads_them(tmp_path):
    main = write(tmp_path / "m.yaml", "kvmd:\n  streamer:\n    type: ustreamer\n")
    old = write(
        tmp_path / "o.yaml",
        "kvmd:\n"
        "  streamer:\n"
        "    desired_fps: 20\n"
        "    max_fps: 40\n"
        "    resolution: 1280x720\n"
        "    available_resolutions: [1280x720, 800x600]\n"
        "  wol:\n"
        "    mac: '52:54:00:12:34:56'\n"
        "    ip: 10.0.0.255\n"
        "otg:\n"
        "  msd: {start: true}\n",
    )
    ignored: list[str] = []
    config = load_files([main, old], ignored)
    streamer = config.kvmd.streamer
    assert isinstance(streamer, UstreamerConfig)
    assert (streamer.desired_fps.default, streamer.desired_fps.max) == (20, 40)
    assert streamer.resolution.default == "1280x720"
    assert streamer.resolution.available == ["1280x720", "800x600"]
    gpio = config.kvmd.gpio
    wol = gpio.drivers["__wol__"]
    assert isinstance(wol, WolDriverConfig)
    assert (wol.mac, wol.ip, wol.port) == ("52:54:00:12:34:56", "10.0.0.255", 9)
    channel = gpio.scheme["__wol__"]
    assert (channel.driver, channel.mode, channel.switch) == ("__wol__", "output", False)
    assert ignored == ["otg.msd"]
    # An empty MAC was PiKVM's "no Wake-on-LAN".
    off = write(tmp_path / "off.yaml", "kvmd:\n  wol:\n    mac: ''\n")
    assert "__wol__" not in load_files([main, off]).kvmd.gpio.scheme


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("kvmd:\n  gpio: 5\n  wol: {mac: x}\n", "kvmd.gpio: Expected `object`, got `int`"),
        (
            "kvmd:\n  streamer:\n    type: ustreamer\n    desired_fps: null\n    max_fps: 40\n",
            "kvmd.streamer.desired_fps: Expected `object`, got `null`",
        ),
    ],
)
def test_odd_older_spellings_stay_clear_errors(tmp_path, text, error):
    with pytest.raises(ConfigError, match=re.escape(error)):
        load_files([write(tmp_path / "o.yaml", text)])


def test_missing_override_files_are_fine(tmp_path):
    main = write(tmp_path / "m.yaml", "")
    config = load_config(main, tmp_path / "nope.d", tmp_path / "nope.yaml")
    assert config.kvmd.server.unix == "/run/kvmd/kvmd.sock"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kvmd:\n  server:\n    bogus: 1\n", "kvmd.server.bogus: unknown key"),
        ("kvmd:\n  server:\n    port: 99999\n", "kvmd.server.port: Expected `int` <= 65535"),
        ("kvmd:\n  server:\n    port: eighty\n", "kvmd.server.port: Expected `int`, got `str`"),
        ("kvmd:\n  atx:\n    type: gpoi\n", "kvmd.atx.type: Invalid value 'gpoi'"),
        (
            "kvmd:\n  auth:\n    unauth_paths: [1]\n",
            "kvmd.auth.unauth_paths.0: Expected `str`, got `int`",
        ),
        ("nonsense: 1\n", "nonsense: unknown key"),
    ],
)
def test_errors_name_the_file_and_key(tmp_path, text, message):
    main = write(tmp_path / "main.yaml", "kvmd:\n  server:\n    port: 8080\n")
    bad = write(tmp_path / "override.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_files([main, bad])
    assert str(info.value) == f"{bad}: {message}"


def test_yaml_yes_no_are_strings_not_booleans(tmp_path):
    main = write(tmp_path / "m.yaml", "kvmd:\n  auth:\n    enabled: no\n")
    with pytest.raises(ConfigError, match=r"kvmd.auth.enabled: Expected `bool`, got `str`"):
        load_files([main])


def test_syntax_and_top_level_errors(tmp_path):
    broken = write(tmp_path / "a.yaml", "kvmd: [\n")
    with pytest.raises(ConfigError, match=r"a.yaml: invalid YAML"):
        load_files([broken])
    listed = write(tmp_path / "b.yaml", "- 1\n")
    with pytest.raises(ConfigError, match=r"b.yaml: the top level must be a mapping"):
        load_files([listed])
    with pytest.raises(ConfigError, match=r"can't read"):
        load_files([tmp_path / "missing.yaml"])


def test_dump_changed_only(tmp_path):
    main = write(tmp_path / "m.yaml", "kvmd:\n  server:\n    port: 8080\n  auth:\n    expire: 60\n")
    text = dump_config(load_files([main]), changed_only=True)
    assert text == "kvmd:\n  server:\n    port: 8080\n  auth:\n    expire: 60\n"
    full = dump_config(load_files([main]))
    assert "unix: /run/kvmd/kvmd.sock\n" in full
    assert "type: disabled\n" in full


def run_kvmd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kvmd", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_cli_exits_78_with_one_line(tmp_path):
    main = write(tmp_path / "m.yaml", "kvmd:\n  server:\n    prot: 1\n")
    result = run_kvmd("--main-config", str(main), "--override-dir", str(tmp_path / "x"))
    assert result.returncode == 78
    assert result.stderr == f"kvmd: config error: {main}: kvmd.server.prot: unknown key\n"


def test_cli_refuses_nothing_to_listen_on(tmp_path):
    main = write(tmp_path / "m.yaml", "kvmd:\n  server:\n    unix: ''\n    port: 0\n")
    result = run_kvmd("--main-config", str(main), "--override-dir", str(tmp_path / "x"))
    assert result.returncode == 78
    assert "nothing to listen on" in result.stderr


def test_cli_dump_config(tmp_path):
    main = write(tmp_path / "m.yaml", "kvmd:\n  server:\n    port: 8081\n")
    result = run_kvmd("--main-config", str(main), "--override-dir", str(tmp_path / "x"), "-M")
    assert result.returncode == 0
    assert result.stdout == "kvmd:\n  server:\n    port: 8081\n"


def test_yaml_octal_modes(tmp_path):
    main = write(tmp_path / "m.yaml", "kvmd:\n  server:\n    unix_mode: 0o640\n")
    assert load_files([main]).kvmd.server.unix_mode == 0o640
    legacy = write(tmp_path / "l.yaml", "kvmd:\n  server:\n    unix_mode: 0600\n")
    assert load_files([legacy]).kvmd.server.unix_mode == 0o600


@pytest.mark.parametrize("path", ["configs/kvmd/boards/rpi4-csi.yaml", "testenv/kvmd.yaml"])
def test_shipped_configs_load(path):
    repo = Path(__file__).resolve().parents[3]
    config = load_files([repo / path])
    assert config.kvmd.server.unix_mode == 0o660


def test_cli_refuses_world_readable_secrets(tmp_path):
    htpasswd = write(tmp_path / "htpasswd", "admin:$2b$04$x\n")
    totp = write(tmp_path / "totp.secret", "JBSWY3DPEHPK3PXP\n")
    keys = write(tmp_path / "keys.json", '{"keys": []}\n')
    htpasswd.chmod(0o644)
    totp.chmod(0o602)
    keys.chmod(0o640)  # group-readable is allowed: nginx's or kvmd's group
    auth = (
        f"kvmd:\n  server:\n    port: 1\n  auth:\n    internal:\n      file: {htpasswd}\n"
        f"    totp:\n      secret:\n        file: {totp}\n    files:\n      keys: {keys}\n"
    )
    main = write(tmp_path / "m.yaml", auth)
    result = run_kvmd("--main-config", str(main), "--override-dir", str(tmp_path / "x"))
    assert result.returncode == 78
    assert result.stderr == (
        f"kvmd: config error: {htpasswd}: mode 0644 lets every user read it; "
        f"chmod o-rwx {htpasswd}; {totp}: mode 0602 lets every user write it; "
        f"chmod o-rwx {totp}\n"
    )
    htpasswd.chmod(0o600)
    totp.chmod(0o600)
    # Who may rewrite the roles may make themselves admin: world-readable is fine, writable not.
    roles = write(tmp_path / "roles.yaml", "{}\n")
    roles.chmod(0o646)
    main.write_text(f"{auth}      roles: {roles}\n")  # under auth.files, after keys
    result = run_kvmd("--main-config", str(main), "--override-dir", str(tmp_path / "x"))
    assert (result.returncode, result.stderr) == (
        78,
        f"kvmd: config error: {roles}: mode 0646 lets every user write it; chmod o-w {roles}\n",
    )
    roles.chmod(0o644)
    # Nor the groups a directory named, which pick roles too.
    directory = write(tmp_path / "directory.json", '{"users": {}}\n')
    directory.chmod(0o662)
    main.write_text(f"{auth}      roles: {roles}\n      directory: {directory}\n")
    result = run_kvmd("--main-config", str(main), "--override-dir", str(tmp_path / "x"))
    assert (result.returncode, result.stderr) == (
        78,
        f"kvmd: config error: {directory}: mode 0662 lets every user write it; "
        f"chmod o-w {directory}\n",
    )
    directory.chmod(0o600)
    result = run_kvmd("--main-config", str(main), "--override-dir", str(tmp_path / "x"), "-M")
    assert (result.returncode, result.stderr) == (0, "")


def test_cli_refuses_a_broken_keymap_naming_file_and_line(tmp_path):
    keymap = write(tmp_path / "keymaps" / "de", "a 0x1e\nb 0x30 shift\nc\n")
    main = write(
        tmp_path / "m.yaml",
        f"kvmd:\n  server:\n    port: 8081\n  hid:\n    type: otg\n    keymap: {keymap}\n",
    )
    result = run_kvmd("--main-config", str(main), "--override-dir", str(tmp_path / "x"))
    assert result.returncode == 78
    assert result.stderr == (
        f"kvmd: config error: kvmd.hid.keymap: {keymap}:3:"
        " expected a keysym name and a hex scancode\n"
    )


def test_pikvms_external_auth_loads_and_a_wrong_key_is_named(tmp_path):
    main = write(tmp_path / "m.yaml", "kvmd:\n  hid:\n    type: otg\n")
    ldap = (
        "kvmd:\n  auth:\n    external:\n      type: ldap\n      url: ldaps://dc.example.com\n"
        "      base: dc=example,dc=com\n      group: cn=kvm,dc=example,dc=com\n"
    )
    config = load_files([main, write(tmp_path / "o.yaml", ldap)])
    external = config.kvmd.auth.external
    assert (type(external).__name__, getattr(external, "url", None)) == (
        "LdapAuthConfig",
        "ldaps://dc.example.com",
    )
    typo = write(tmp_path / "t.yaml", ldap + "      gruop: x\n")
    with pytest.raises(ConfigError, match=r"kvmd\.auth\.external\.gruop"):
        load_files([main, typo])
