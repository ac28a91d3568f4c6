# SPDX-License-Identifier: GPL-3.0-or-later
"""PiKVM's/QEMU's keymap files (Debian's qemu-system-data), read as they are."""

from pathlib import Path

import pytest

from kvmd.plugins.hid import keysyms
from kvmd.plugins.hid.keysyms import keysym_char
from kvmd.plugins.hid.layouts import Layout, LayoutError, Stroke

QEMU = Path("/usr/share/qemu/keymaps")
# PiKVM ships these 34 and two more (en-us-altgr-intl, en-us-colemak).
NAMES = [
    "ar",
    "bepo",
    "cz",
    "da",
    "de",
    "de-ch",
    "en-gb",
    "en-us",
    "es",
    "et",
    "fi",
    "fo",
    "fr",
    "fr-be",
    "fr-ca",
    "fr-ch",
    "hr",
    "hu",
    "is",
    "it",
    "ja",
    "lt",
    "lv",
    "mk",
    "nl",
    "no",
    "pl",
    "pt",
    "pt-br",
    "ru",
    "sl",
    "sv",
    "th",
    "tr",
]


@pytest.fixture(scope="module")
def qemu() -> Path:
    if not (QEMU / "en-us").exists():
        pytest.fail(f"{QEMU} is missing: `make test` installs Debian's qemu-system-data")
    return QEMU


def test_debian_ships_every_layout_and_each_loads(qemu: Path) -> None:
    assert sorted(p.name for p in qemu.iterdir()) == sorted(NAMES)
    for name in NAMES:
        plan = Layout.load(qemu / name).plan("0123456789 \n\t")
        # Thai has Thai digits on that row; `et` is XKB's "et", Ethiopic (not Estonian,
        # which XKB calls "ee"), as qemu-keymap generated it for QEMU and PiKVM alike.
        assert plan.skipped == ("0123456789" if name in ("et", "th") else ""), name
    assert Layout.load(qemu / "et").plan("\u1369").skipped == ""


def test_keysym_names_through_libxkbcommon() -> None:
    assert [keysym_char(n) for n in ("exclam", "EuroSign", "U20AC", "ssharp")] == list("!€€ß")
    assert keysym_char("dead_acute") == "\u0301"
    assert (keysym_char("Shift_L"), keysym_char("no_such_keysym")) == (None, None)


def test_german_takes_the_key_a_german_presses(qemu: Path) -> None:
    german = Layout.load(qemu / "de")  # de, variant nodeadkeys (the file's header says)
    plan = german.plan("zY@ß€|Ä")
    assert plan.strokes == [
        Stroke("KeyY"),  # z and y swap places
        Stroke("KeyZ", shift=True),
        Stroke("KeyQ", altgr=True),
        Stroke("Minus"),
        Stroke("KeyE", altgr=True),
        Stroke("IntlBackslash", altgr=True),  # 0x56, the ISO key left of Y
        Stroke("Quote", shift=True),
    ]
    assert plan.skipped == ""
    # No dead keys in this variant: what they would compose is reported, not dropped.
    assert german.plan("née").skipped == "é"


def test_extended_keys_in_either_spelling_and_flags() -> None:
    text = (
        "# a comment\n"
        "map 0x407\n"
        "include common\n"
        "a 0x1e addupper\n"
        "at 0x10 altgr\n"
        "eacute 0xb8 shift localstate\n"  # E0 38 in QEMU's spelling
        "egrave 0xe038\n"  # and in PiKVM's own table's
        "KP_7 0x47 numlock\n"
        "Control_L 0x1d\n"
        "x 0x2d ctrl\n"
    )
    layout = Layout.parse(text, "mine")
    assert layout.plan("aA@éè").strokes == [
        Stroke("KeyA"),
        Stroke("KeyA", shift=True),
        Stroke("KeyQ", altgr=True),
        Stroke("AltRight", shift=True),
        Stroke("AltRight"),
    ]
    # The keypad and Control chords type no text; Control_L types no character.
    assert layout.plan("7x").skipped == "7x"


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("a\n", "mine:2: expected a keysym name and a hex scancode"),
        ("a 30\n", "mine:2: expected a keysym name and a hex scancode"),
        ("a 0x1e shiftt\n", "mine:2: unknown flag 'shiftt'"),
    ],
)
def test_a_malformed_line_names_the_file_and_line(line: str, error: str) -> None:
    with pytest.raises(LayoutError, match=error):
        Layout.parse("b 0x30\n" + line, "mine")


def test_without_libxkbcommon_a_qemu_keymap_is_a_layout_error(monkeypatch) -> None:
    # A board without libxkbcommon0: the keymap is refused with the reason, not a 500.
    monkeypatch.setattr("ctypes.util.find_library", lambda _: "libxkbcommon-missing.so.0")
    keysyms._library.cache_clear()
    keysyms.keysym_char.cache_clear()
    try:
        with pytest.raises(LayoutError, match=r"^mine: libxkbcommon is missing .*libxkbcommon0"):
            Layout.parse("a 0x1e\n", "mine")
    finally:
        keysyms._library.cache_clear()
        keysyms.keysym_char.cache_clear()


# X keysyms of the keys every layout lists, some in QEMU's E0 spelling (0x80 | code).
EXTENDED = {
    0xFF52: "ArrowUp",  # Up 0xc8
    0xFF63: "Insert",  # 0xd2
    0xFF50: "Home",  # 0xc7
    0xFF8D: "NumpadEnter",  # KP_Enter 0x9c
    0xFF95: "Numpad7",  # KP_Home 0x47
    0xFFB7: "Numpad7",  # KP_7 0x47 numlock
    0xFFEB: "MetaLeft",  # Super_L 0xdb
    0xFF67: "ContextMenu",  # Menu 0xdd
    0xFE03: "AltRight",  # ISO_Level3_Shift 0xb8: AltGr
    0xFF0D: "Enter",
    0xFF61: "PrintScreen",  # Print 0x54, SysRq's scancode
}


def test_extended_keys_by_keysym_in_every_layout(qemu: Path) -> None:
    for name in NAMES:
        layout = Layout.load(qemu / name)
        keys = {keysym: [s.key for s in layout.keysym(keysym)][:1] for keysym in EXTENDED}
        assert keys == {keysym: [key] for keysym, key in EXTENDED.items()}, name


def test_keysyms_to_keys_for_vnc(qemu: Path) -> None:
    german = Layout.load(qemu / "de")
    assert german.keysym(0x40) == [Stroke("KeyQ", altgr=True)]  # at
    assert german.keysym(0x7A) == [Stroke("KeyY")]  # z
    assert german.keysym(0x5A) == [Stroke("KeyY", shift=True)]  # Z
    assert german.keysym(0x20AC) == [Stroke("KeyE", altgr=True)]  # EuroSign
    assert german.keysym(0x10020AC) == []  # U20AC is not what the file names
    # ł moved from AltGr+W to AltGr+L in xkb-data (moved.py): only L is offered, and
    # AltGr+W is the long s it types now.
    assert german.keysym(0x1B3) == [Stroke("KeyL", altgr=True)]
    assert german.keysym(0x100017F) == [Stroke("KeyW", altgr=True)]
    assert german.plan("\u017f\u0142").strokes == [
        Stroke("KeyW", altgr=True),
        Stroke("KeyL", altgr=True),
    ]
    assert german.legend()["KeyQ"] == ["q", "Q", "@", "\u03a9"]
    assert german.legend()["Digit2"][:2] == ["2", '"']


def test_legend_shows_dead_keys_as_their_accent(qemu: Path) -> None:
    spanish = Layout.load(qemu / "es")
    # es: dead acute and diaeresis on the key right of Ñ; dead grave and ^ left of Enter.
    assert spanish.legend()["Quote"][:2] == ["\u25cc\u0301", "\u25cc\u0308"]
    assert spanish.legend()["BracketLeft"][:2] == ["`", "^"]
    assert spanish.plan("ñÑáü").strokes == [
        Stroke("Semicolon"),
        Stroke("Semicolon", shift=True),
        Stroke("Quote"),
        Stroke("KeyA"),
        Stroke("Quote", shift=True),
        Stroke("KeyU"),
    ]


def test_a_layout_is_read_again_when_its_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "mine"
    path.write_text("a 0x1e\n")
    first = Layout.load(path)
    assert Layout.load(path) is first  # one parse per file version, not per request
    path.write_text("a 0x30\nb 0x1e\n")
    assert Layout.load(path).plan("ab").strokes == [Stroke("KeyB"), Stroke("KeyA")]
    path.unlink()
    with pytest.raises(LayoutError, match="can't read layout"):
        Layout.load(path)
