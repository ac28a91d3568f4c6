# SPDX-License-Identifier: GPL-3.0-or-later
# ruff: noqa: E501, RUF001 -- the known mismatches are characters, one layout per entry
"""Typing per layout, checked by an independent reader: libxkbcommon (tests/xkb.py).

For every PiKVM/QEMU keymap file: every character kvmd's layout has a key for, and every
accented character and spacing accent it composes with a dead key, is planned, turned
into the boot keyboard reports the OTG backend writes (the same Shift/AltGr handling as
BaseHid.type_strokes, the same report encoder), and decoded with the XKB layout and
variant the file was generated from, dead keys through X11's en_US.UTF-8 Compose table.
What XKB reads must be what was typed, except for the known mismatches below: each is a
bug (of the file, or of kvmd's use of it) to fix, pinned here so none goes unnoticed.
"""

import unicodedata
from pathlib import Path

import pytest

from kvmd.plugins.hid.keys import KEYS
from kvmd.plugins.hid.layouts import SPACING, Layout, Stroke
from kvmd.plugins.hid.reports import KeyboardReports
from tests.xkb import XkbDecoder, xkb_names

QEMU = Path("/usr/share/qemu/keymaps")
NAMES = sorted(path.name for path in QEMU.iterdir()) if QEMU.is_dir() else []
_SHIFT = KEYS["ShiftLeft"]
_ALTGR = KEYS["AltRight"]

# Layout -> (characters XKB reads differently, why). Everything else must round-trip.
KNOWN_MISMATCHES: dict[str, tuple[str, str]] = {
    "ar": (
        "ﻵﻷﻹﻻ",
        "lam-alef ligatures (U+FEF5..FEFB) are one keysym in the file; XKB types two characters (ل + alef)",
    ),
    "bepo": (
        "$`a{}£§«°±µº»¼½¾ÀÆÇÈÉÌÒÙæìòùŒœ€¨",
        "the file disagrees with xkb-data 2.35.1's fr(dvorak) on many AltGr levels and its dead keys",
    ),
    "cz": (
        "‘’´¨",
        "the file predates xkb-data 2.35.1: AltGr levels moved (ł Ł on AltGr+W, ‘ ’ “ ” on AltGr+Shift+V/B/N, § ─); ´¨ are dead acute/diaeresis + Space, which X11's Compose reads as ' and \" (kvmd's SPACING assumes ´ ¨)",
    ),
    "da": (
        "Łł‘’“”´¨",
        "the file predates xkb-data 2.35.1: AltGr levels moved (ł Ł on AltGr+W, ‘ ’ “ ” on AltGr+Shift+V/B/N, § ─); ´¨ are dead acute/diaeresis + Space, which X11's Compose reads as ' and \" (kvmd's SPACING assumes ´ ¨)",
    ),
    "de": (
        "Łł",
        "the file predates xkb-data 2.35.1: AltGr levels moved (ł Ł on AltGr+W, ‘ ’ “ ” on AltGr+Shift+V/B/N, § ─)",
    ),
    "de-ch": (
        "Łł‘’“”─´¨",
        "the file predates xkb-data 2.35.1: AltGr levels moved (ł Ł on AltGr+W, ‘ ’ “ ” on AltGr+Shift+V/B/N, § ─); ´¨ are dead acute/diaeresis + Space, which X11's Compose reads as ' and \" (kvmd's SPACING assumes ´ ¨)",
    ),
    "en-gb": (
        "§Łł‘’“”─´¨",
        "the file predates xkb-data 2.35.1: AltGr levels moved (ł Ł on AltGr+W, ‘ ’ “ ” on AltGr+Shift+V/B/N, § ─); ´¨ are dead acute/diaeresis + Space, which X11's Compose reads as ' and \" (kvmd's SPACING assumes ´ ¨)",
    ),
    "en-us": (
        "¦",
        "¦ | on AltGr(+Shift)+IntlBackslash: xkb-data 2.35.1 has no AltGr level there for this layout",
    ),
    "es": (
        "§Łł‘’“”─´ÃẼĨÕŨṼỸãẽĩõũṽỹ¨",
        "the file predates xkb-data 2.35.1: AltGr levels moved (ł Ł on AltGr+W, ‘ ’ “ ” on AltGr+Shift+V/B/N, § ─); ´¨ are dead acute/diaeresis + Space, which X11's Compose reads as ' and \" (kvmd's SPACING assumes ´ ¨); dead tilde is on AltGr+4 in xkb-data, AltGr+Equal is dead ogonek/cedilla",
    ),
    "et": (
        "|¦",
        "¦ | on AltGr(+Shift)+IntlBackslash: xkb-data 2.35.1 has no AltGr level there for this layout",
    ),
    "fi": (
        "´¨",
        "´¨ are dead acute/diaeresis + Space, which X11's Compose reads as ' and \" (kvmd's SPACING assumes ´ ¨)",
    ),
    "fo": (
        "Łł‘’“”´¨",
        "the file predates xkb-data 2.35.1: AltGr levels moved (ł Ł on AltGr+W, ‘ ’ “ ” on AltGr+Shift+V/B/N, § ─); ´¨ are dead acute/diaeresis + Space, which X11's Compose reads as ' and \" (kvmd's SPACING assumes ´ ¨)",
    ),
    "fr": (
        "‘’“”─",
        "the file predates xkb-data 2.35.1: AltGr levels moved (ł Ł on AltGr+W, ‘ ’ “ ” on AltGr+Shift+V/B/N, § ─)",
    ),
    "fr-be": (
        "Łł‘’“”─´¨",
        "the file predates xkb-data 2.35.1: AltGr levels moved (ł Ł on AltGr+W, ‘ ’ “ ” on AltGr+Shift+V/B/N, § ─); ´¨ are dead acute/diaeresis + Space, which X11's Compose reads as ' and \" (kvmd's SPACING assumes ´ ¨)",
    ),
    "fr-ca": (
        "´¨",
        "´¨ are dead acute/diaeresis + Space, which X11's Compose reads as ' and \" (kvmd's SPACING assumes ´ ¨)",
    ),
    "fr-ch": (
        "Łł‘’“”─´¨",
        "the file predates xkb-data 2.35.1: AltGr levels moved (ł Ł on AltGr+W, ‘ ’ “ ” on AltGr+Shift+V/B/N, § ─); ´¨ are dead acute/diaeresis + Space, which X11's Compose reads as ' and \" (kvmd's SPACING assumes ´ ¨)",
    ),
    "hr": (
        "“῭΅´",
        "the file predates xkb-data 2.35.1: AltGr levels moved (ł Ł on AltGr+W, ‘ ’ “ ” on AltGr+Shift+V/B/N, § ─); dead grave/acute + ¨ (῭ ΅) have no Compose sequence; ´¨ are dead acute/diaeresis + Space, which X11's Compose reads as ' and \" (kvmd's SPACING assumes ´ ¨)",
    ),
    "hu": (
        "‘’῭΅",
        "the file predates xkb-data 2.35.1: AltGr levels moved (ł Ł on AltGr+W, ‘ ’ “ ” on AltGr+Shift+V/B/N, § ─); dead grave/acute + ¨ (῭ ΅) have no Compose sequence",
    ),
    "is": (
        "§Łł‘’“”─´¨",
        "the file predates xkb-data 2.35.1: AltGr levels moved (ł Ł on AltGr+W, ‘ ’ “ ” on AltGr+Shift+V/B/N, § ─); ´¨ are dead acute/diaeresis + Space, which X11's Compose reads as ' and \" (kvmd's SPACING assumes ´ ¨)",
    ),
    "it": (
        "Łł´¨",
        "the file predates xkb-data 2.35.1: AltGr levels moved (ł Ł on AltGr+W, ‘ ’ “ ” on AltGr+Shift+V/B/N, § ─); ´¨ are dead acute/diaeresis + Space, which X11's Compose reads as ' and \" (kvmd's SPACING assumes ´ ¨)",
    ),
    "ja": (
        "¦",
        "¦ | on AltGr(+Shift)+IntlBackslash: xkb-data 2.35.1 has no AltGr level there for this layout",
    ),
    "lt": (
        "§Łł‘’”─¨",
        "the file predates xkb-data 2.35.1: AltGr levels moved (ł Ł on AltGr+W, ‘ ’ “ ” on AltGr+Shift+V/B/N, § ─); ´¨ are dead acute/diaeresis + Space, which X11's Compose reads as ' and \" (kvmd's SPACING assumes ´ ¨)",
    ),
    "lv": (
        "─",
        "the file predates xkb-data 2.35.1: AltGr levels moved (ł Ł on AltGr+W, ‘ ’ “ ” on AltGr+Shift+V/B/N, § ─)",
    ),
    "mk": (
        "|¦",
        "¦ | on AltGr(+Shift)+IntlBackslash: xkb-data 2.35.1 has no AltGr level there for this layout",
    ),
    "nl": (
        "Łł´¨",
        "the file predates xkb-data 2.35.1: AltGr levels moved (ł Ł on AltGr+W, ‘ ’ “ ” on AltGr+Shift+V/B/N, § ─); ´¨ are dead acute/diaeresis + Space, which X11's Compose reads as ' and \" (kvmd's SPACING assumes ´ ¨)",
    ),
    "no": (
        "Łł‘’“”´¨",
        "the file predates xkb-data 2.35.1: AltGr levels moved (ł Ł on AltGr+W, ‘ ’ “ ” on AltGr+Shift+V/B/N, § ─); ´¨ are dead acute/diaeresis + Space, which X11's Compose reads as ' and \" (kvmd's SPACING assumes ´ ¨)",
    ),
    "pl": (
        "´¨↚↛↮≉",
        "´¨ are dead acute/diaeresis + Space, which X11's Compose reads as ' and \" (kvmd's SPACING assumes ´ ¨); dead stroke + arrow/≈ (↚ ↛ ↮ ≉) have no Compose sequence",
    ),
    "pt": (
        "Łł‘’“”─´¨",
        "the file predates xkb-data 2.35.1: AltGr levels moved (ł Ł on AltGr+W, ‘ ’ “ ” on AltGr+Shift+V/B/N, § ─); ´¨ are dead acute/diaeresis + Space, which X11's Compose reads as ' and \" (kvmd's SPACING assumes ´ ¨)",
    ),
    "pt-br": (
        "‘’“”€─῭΅",
        "the file predates xkb-data 2.35.1: AltGr levels moved (ł Ł on AltGr+W, ‘ ’ “ ” on AltGr+Shift+V/B/N, § ─) (€ on AltGr+E gone); dead grave/acute + ¨ (῭ ΅) have no Compose sequence",
    ),
    "ru": (
        "¦₽",
        "¦ | on AltGr(+Shift)+IntlBackslash: xkb-data 2.35.1 has no AltGr level there for this layout; ₽ on AltGr+8 is not in xkb-data 2.35.1's ru",
    ),
    "sl": (
        "YZ^`yz~«¬°·»ÐßðŁ─ÀÈÌǸÒÙẀỲàèìǹòùẁỳ῭ῺÝŹýź΅´ÂĈÊĜĤÎĴÔŜÛŴŶẐâĉêĝĥîĵôŝûŵŷẑÃẼĨÑÕŨṼỸãẽĩñõũṽỹȲȳẎŻẏżŸÿÅŮåůẘẙẠḄḌẸḤỊḲḶṂṆỌṚṢṬỤṾẈỴẒạḅḍẹḥịḳḷṃṇọṛṣṭụṿẉỵẓÇḐȨĢḨĶĻŅŖŞŢçḑȩģḩķļņŗşţ",
        "old hand-written file, not XKB si: Y/Z swapped (QWERTY), AltGr row and dead keys differ",
    ),
    "sv": (
        "`´¨",
        "old hand-written file: ` ´ are dead keys in XKB se (no Space after them); ¨: ´¨ are dead acute/diaeresis + Space, which X11's Compose reads as ' and \" (kvmd's SPACING assumes ´ ¨)",
    ),
    "th": (
        "|¦",
        "¦ | on AltGr(+Shift)+IntlBackslash: xkb-data 2.35.1 has no AltGr level there for this layout",
    ),
    "tr": (
        "§‘’“”¨",
        "the file predates xkb-data 2.35.1: AltGr levels moved (ł Ł on AltGr+W, ‘ ’ “ ” on AltGr+Shift+V/B/N, § ─); ´¨ are dead acute/diaeresis + Space, which X11's Compose reads as ' and \" (kvmd's SPACING assumes ´ ¨)",
    ),
}


def reports(strokes: list[Stroke]) -> list[bytes]:
    """The keyboard reports BaseHid.type_strokes has the OTG backend write."""
    keyboard = KeyboardReports()
    out: list[bytes] = []
    (shift, altgr) = (False, False)
    for stroke in strokes:
        if stroke.shift != shift:
            shift = stroke.shift
            out += keyboard.press(_SHIFT) if shift else keyboard.release(_SHIFT)
        if stroke.altgr != altgr:
            altgr = stroke.altgr
            out += keyboard.press(_ALTGR) if altgr else keyboard.release(_ALTGR)
        key = KEYS[stroke.key]
        out += keyboard.press(key)
        out += keyboard.release(key)
    if shift:
        out += keyboard.release(_SHIFT)
    if altgr:
        out += keyboard.release(_ALTGR)
    return out


def typeable(layout: Layout) -> str:
    """Each character the layout has a key for, then what its dead keys compose."""
    chars = dict.fromkeys(sorted(layout._chars))
    composed: dict[str, None] = {}
    for mark in sorted(layout._dead):
        for base in chars:
            char = unicodedata.normalize("NFC", base + mark)
            if len(char) == 1 and char not in chars:
                composed[char] = None
        if mark in SPACING and SPACING[mark] not in chars:
            composed[SPACING[mark]] = None
    return "".join(chars) + "".join(composed)


def check(name: str) -> tuple[str, str, str, str]:
    """(XKB names, typed, skipped, mismatched) of one layout, one character at a time."""
    path = QEMU / name
    layout = Layout.load(path)
    (xkb_layout, variant) = xkb_names(path)
    (typed, skipped, mismatched) = ("", "", "")
    with XkbDecoder(xkb_layout, variant) as decoder:
        for char in typeable(layout):
            plan = layout.plan(char)
            if plan.skipped:
                skipped += char
                continue
            # Return's keysym reads as CR; kvmd types "\n" with it, as a user would.
            got = decoder.feed_all(reports(plan.strokes)).replace("\r", "\n")
            decoder.reset()  # a dead key XKB left pending must not spill into the next one
            typed += char
            if got != char:
                mismatched += char
    return (f"{xkb_layout}/{variant or '-'}", typed, skipped, mismatched)


def test_the_xkb_reader_reads_german_and_its_dead_keys():
    with XkbDecoder("de") as decoder:
        # AltGr+Q, Shift+Z (the key, QWERTZ), Y, dead acute + e, dead acute + space.
        keys = [Stroke("KeyQ", altgr=True), Stroke("KeyZ", shift=True), Stroke("KeyY")]
        keys += [Stroke("Equal"), Stroke("KeyE"), Stroke("Equal"), Stroke("Space")]
        assert decoder.feed_all(reports(keys)) == "@Yzé'"
    assert xkb_names(QEMU / "de") == ("de", "nodeadkeys")
    assert xkb_names(QEMU / "fr-ca") == ("ca", "fr")
    assert xkb_names(QEMU / "sv") == ("se", "")


@pytest.mark.skipif(not NAMES, reason="qemu-system-data is not installed")
def test_every_layout_types_what_xkb_reads(capsys):
    rows = [(name, *check(name)) for name in NAMES]
    with capsys.disabled():
        print(f"\n{'layout':8} {'xkb':12} {'typed':>5} {'skipped':>7} {'mismatches':>10}")
        for name, xkb, typed, skipped, mismatched in rows:
            print(
                f"{name:8} {xkb:12} {len(typed):5} {len(skipped):7} {len(mismatched):10}"
                + (f"  {mismatched}" if mismatched else "")
            )
    found = {name: mismatched for (name, _, typed, _, mismatched) in rows if mismatched}
    assert found == {name: chars for (name, (chars, _)) in KNOWN_MISMATCHES.items()}
    for name, _, typed, _, _ in rows:
        assert len(typed) >= 80, name
