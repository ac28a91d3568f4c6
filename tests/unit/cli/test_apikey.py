# SPDX-License-Identifier: GPL-3.0-or-later
import json

from kvmd.cli.apikey import main


def test_create_rotate_list_remove(tmp_path, capsys):
    path = str(tmp_path / "keys.json")
    assert main(["--file", path, "create", "--permissions", "atx,msd", "--expire", "60",
                 "--allowed-nets", "10.0.0.0/8,127.0.0.1"]) == 0  # fmt: skip
    (key_id, secret) = capsys.readouterr().out.split()
    stored = json.loads((tmp_path / "keys.json").read_text())["keys"][0]
    assert (stored["id"], stored["permissions"]) == (key_id, ["atx", "msd"])
    assert stored["allowed_nets"] == ["10.0.0.0/8", "127.0.0.1/32"]
    assert secret not in (tmp_path / "keys.json").read_text()
    assert main(["--file", path, "rotate", key_id]) == 0
    assert capsys.readouterr().out.strip() not in ("", secret)
    assert main(["--file", path, "list"]) == 0
    line = capsys.readouterr().out
    assert line.startswith(f"{key_id}\tadmin\tatx,msd\trw\tenabled\texpires=20")
    assert main(["--file", path, "remove", key_id]) == 0
    assert json.loads((tmp_path / "keys.json").read_text()) == {"keys": []}


def test_refusals_are_one_line(tmp_path, capsys):
    path = str(tmp_path / "keys.json")
    cases = [
        (["create", "--permissions", "fly"], "kvmd-apikey: unknown permission 'fly'\n"),
        (["create", "--allowed-nets", "x"], "kvmd-apikey: bad network 'x'\n"),
        (["create", "--owner", "Bad!"], "kvmd-apikey: invalid owner 'Bad!'\n"),
        (["create", "--expire", "-1"], "kvmd-apikey: --expire must be positive\n"),
        (["remove", "_key.aaaaaaaaaaaa"], "kvmd-apikey: No such API key: '_key.aaaaaaaaaaaa'\n"),
    ]
    for args, message in cases:
        assert main(["--file", path, *args]) == 1, args
        assert capsys.readouterr().err == message
    (tmp_path / "keys.json").write_text("{broken")
    assert main(["--file", path, "list"]) == 1
    assert "keys.json" in capsys.readouterr().err
