# SPDX-License-Identifier: GPL-3.0-or-later
from kvmd.auth.files import exposed_secrets


def test_exposed_secrets_names_each_unsafe_file(tmp_path):
    private = tmp_path / "private"
    group = tmp_path / "group"
    world = tmp_path / "world"
    loop = tmp_path / "loop"
    for path, mode in [(private, 0o600), (group, 0o640), (world, 0o666)]:
        path.write_text("secret\n")
        path.chmod(mode)
    loop.symlink_to(loop)
    findings = exposed_secrets([private, group, world, loop, tmp_path / "missing"])
    assert findings == [
        f"{world}: mode 0666 lets every user read it; chmod o-rwx {world}",
        f"{loop}: can't check its mode: Too many levels of symbolic links",
    ]
