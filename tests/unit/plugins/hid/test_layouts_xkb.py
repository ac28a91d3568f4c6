# SPDX-License-Identifier: GPL-3.0-or-later
"""Typing per layout, checked by an independent reader: libxkbcommon (kvmd/sim/xkb.py).

For every PiKVM/QEMU keymap file: every character kvmd's layout has a key for, and every
accented character and spacing accent it composes with a dead key, is planned, turned
into the boot keyboard reports the OTG backend writes (the same Shift/AltGr handling as
BaseHid.type_strokes, the same report encoder), and decoded with the XKB layout and
variant the file was generated from, dead keys through X11's en_US.UTF-8 Compose table.
What XKB reads must be what was typed. The keys of the files that xkb-data has changed
since they were generated (kvmd/plugins/hid/moved.py) must be exactly those XKB disagrees
with, read as XKB has them.
"""

import unicodedata
from pathlib import Path

import pytest

from kvmd.plugins.hid.keys import KEYS
from kvmd.plugins.hid.keysyms import keysym_text
from kvmd.plugins.hid.layouts import SPACING, Layout, Stroke, parse_entries, xkb_source
from kvmd.plugins.hid.moved import MOVED
from kvmd.sim.xkb import XkbDecoder, keysym_name
from tests.hidenv import stroke_reports

QEMU = Path("/usr/share/qemu/keymaps")
NAMES = sorted(path.name for path in QEMU.iterdir()) if QEMU.is_dir() else []


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
    layout = Layout.load(QEMU / name)
    assert layout.source is not None, name
    (xkb_layout, variant) = layout.source
    (typed, skipped, mismatched) = ("", "", "")
    with XkbDecoder(xkb_layout, variant) as decoder:
        for char in typeable(layout):
            plan = layout.plan(char)
            if plan.skipped:
                skipped += char
                continue
            # Return's keysym reads as CR; kvmd types "\n" with it, as a user would.
            got = decoder.feed_all(stroke_reports(plan.strokes)).replace("\r", "\n")
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
        assert decoder.feed_all(stroke_reports(keys)) == "@Yzé'"
    sources = {name: Layout.load(QEMU / name).source for name in ("de", "fr-ca", "sv")}
    assert sources == {"de": ("de", "nodeadkeys"), "fr-ca": ("ca", "fr"), "sv": ("se", "")}


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
    assert {name: mismatched for (name, _, _, _, mismatched) in rows if mismatched} == {}
    for name, _, typed, _, _ in rows:
        assert len(typed) >= 75, name


def moved(path: Path) -> dict[str, str]:
    """The entries of a file (that type a character) XKB has changed: label -> keysym now."""
    text = path.read_text(encoding="utf-8")
    source = xkb_source(text, path.name)
    assert source is not None, path
    found: dict[str, str] = {}
    with XkbDecoder(*source) as decoder:
        for entry in parse_entries(text, path.name):
            if not entry.char:
                continue
            stroke = entry.stroke
            key = KEYS[stroke.key]
            got = decoder.keysym(key, shift=stroke.shift, altgr=stroke.altgr)
            # EuroSign and U20AC are two keysyms of one character.
            if got == entry.keysym or keysym_text(got) == entry.char:
                continue
            if stroke.altgr and got == decoder.keysym(key, shift=stroke.shift):
                got = 0  # AltGr does nothing there now (fr dvorak lost its AltGr level)
            found[entry.label] = keysym_name(got) if got else ""
    return found


@pytest.mark.skipif(not NAMES, reason="qemu-system-data is not installed")
def test_the_moved_keys_are_exactly_what_xkb_data_changed():
    found = {}
    for name in NAMES:
        source = xkb_source((QEMU / name).read_text(encoding="utf-8"), name)
        entries = moved(QEMU / name)
        if entries:
            found[source] = entries
    if found != MOVED:
        print("xkb-data changed: kvmd/plugins/hid/moved.py would now be")
        for source, entries in sorted(found.items()):
            print(f"    {source!r}: {entries!r},")
    assert found == MOVED


def generated_keymap(layout: str, variant: str) -> str:
    """A keymap file in PiKVM's format made from today's xkb-data, as qemu-keymap makes one.

    PiKVM ships two layouts Debian's qemu-system-data lacks (en-us-altgr-intl,
    en-us-colemak); this stands in for them, header and all.
    """
    lines = [f"# layout : {layout}", f"# variant : {variant or '-'}", "map 0x409"]
    with XkbDecoder(layout, variant) as decoder:
        for key in KEYS.values():
            if not 0 < key.evdev <= 0x58:  # the main block: set-1 scancode = evdev code
                continue
            for level in range(4):
                (shift, altgr) = (bool(level & 1), bool(level & 2))
                keysym = decoder.keysym(key, shift=shift, altgr=altgr)
                if keysym:
                    flags = " shift" * shift + " altgr" * altgr
                    lines.append(f"{keysym_name(keysym)} {key.evdev:#04x}{flags}")
    return "\n".join(lines) + "\n"


def test_dead_keys_compose_on_a_layout_pikvm_ships_beyond_debians():
    layout = Layout.parse(generated_keymap("us", "altgr-intl"), "en-us-altgr-intl")
    assert layout.source == ("us", "altgr-intl")
    # us(altgr-intl) has ñ on AltGr+N and é on AltGr+E; ǹ and ẽ only through dead keys.
    plan = layout.plan("ñéǹẽ")
    assert plan.skipped == ""
    assert plan.strokes[:2] == [Stroke("KeyN", altgr=True), Stroke("KeyE", altgr=True)]
    assert len(plan.strokes) == 6  # two direct keys, then two dead key + letter pairs
    with XkbDecoder("us", "altgr-intl") as decoder:
        assert decoder.feed_all(stroke_reports(plan.strokes)) == "ñéǹẽ"
