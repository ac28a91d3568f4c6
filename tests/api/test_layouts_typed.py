# SPDX-License-Identifier: GPL-3.0-or-later
"""Every layout, every character: typed through `/api/hid/print`, read by libxkbcommon.

The daemon types into the simulated USB host over the OTG backend's sockets; the host
reads the reports as a Linux desktop with the XKB layout and variant the keymap file
names would (kvmd/sim/xkb.py, which knows nothing of kvmd's tables). The text of a
layout is every character XKB's layout produces on a key (plain, Shift, AltGr, both)
plus every character kvmd composes with its dead keys. What the host reads must be that
text without the characters the answer lists as `skipped`, and with the typographic
characters the layout has no key for typed as their ASCII cousins (layouts.FOLDS).

The table printed also shows what PiKVM's printer would do with the same text, from the
facts of its algorithm (PiKVM 4.197's text printer, restated here): the file's first entry per
keysym, extended keys in QEMU's spelling dropped (a builtin US table fills in), no
dead keys, — dropped, unknown characters skipped without a word.
"""

import asyncio
import contextlib
import dataclasses
import unicodedata
from collections.abc import Callable
from pathlib import Path

import pytest

from kvmd.plugins.hid.keys import KEYS
from kvmd.plugins.hid.keysyms import char_keysym
from kvmd.plugins.hid.layouts import FOLDS, Layout, Stroke, parse_entries
from kvmd.sim.usbhost import UsbHost
from kvmd.sim.xkb import XkbDecoder
from tests.conftest import ADMIN
from tests.hidenv import KEYMAPS, otg_config, stroke_reports, usb_host, wait_until

NAMES = sorted(path.name for path in KEYMAPS.iterdir()) if KEYMAPS.is_dir() else []
# Keys whose characters count as the layout's: the typing keys (not the keypad).
_PUNCTUATION = "Backquote Minus Equal BracketLeft BracketRight Backslash Semicolon Quote Comma"
_TYPING = [
    *(key for key in KEYS.values() if key.name.startswith(("Key", "Digit", "Intl"))),
    *(KEYS[name] for name in (*_PUNCTUATION.split(), "Period", "Slash", "Space")),
]


def xkb_characters(decoder: XkbDecoder) -> str:
    """What XKB's layout types on a key at one of the four levels (dead keys aside)."""
    found: dict[str, None] = {}
    for key in _TYPING:
        for shift, altgr in ((False, False), (True, False), (False, True), (True, True)):
            char = decoder.feed_all(stroke_reports([Stroke(key.name, shift, altgr)]))
            decoder.reset()
            # One character: not a dead key (nothing), not Arabic's lam-alef key (two).
            if len(char) == 1 and char.isprintable() and not unicodedata.combining(char):
                found[char] = None
    return "".join(found)


def composed(layout: Layout) -> str:
    """What kvmd types with a dead key: accented letters and spacing accents."""
    found: dict[str, None] = {}
    for char in map(chr, range(0xA0, 0x2000)):
        if unicodedata.normalize("NFC", char) != char:
            continue  # U+1FFB is U+038F to Unicode (and to XKB's Compose)
        plan = layout.plan(char)
        if not plan.skipped and len(plan.strokes) == 2:
            found[char] = None
    return "".join(found)


def folded(layout: Layout, char: str) -> bool:
    """Whether kvmd types `char` as its ASCII cousin (a quote mark as ') for want of a key."""
    return char in FOLDS and layout.plan(char).strokes == layout.plan(FOLDS[char]).strokes


def text_of(layout: Layout, decoder: XkbDecoder) -> str:
    chars = dict.fromkeys(xkb_characters(decoder) + composed(layout))
    chars.pop(" ", None)
    return "".join(sorted(chars))


@dataclasses.dataclass
class Row:
    name: str
    xkb: str
    text: str
    skipped: str
    folded: str = ""
    pikvm_wrong: str = ""
    pikvm_dropped: str = ""


# PiKVM's printer as it behaves (our own code, not PiKVM's).
_PIKVM_SUBSTITUTES = {
    "\u201a": "'",
    "\u2018": "'",
    "\u2019": "'",
    "\u201e": '"',
    "\u201c": '"',
    "\u201d": '"',
    "\u2013": "-",
}


def pikvm_symmap(path: Path, us: Path) -> dict[int, dict[int, str]]:
    """keysym -> {modifier level: key}: the file first, then the builtin US table."""
    symmap: dict[int, dict[int, str]] = {}
    for source in (path, us):
        for entry in parse_entries(source.read_text(encoding="utf-8"), source.name):
            code = int(entry.label.split()[1], 16)
            if 0x80 <= code <= 0xFF:
                continue  # QEMU's E0 spelling: no evdev key in PiKVM's table
            if source is us and entry.stroke.altgr:
                continue  # the builtin table is US: no AltGr
            symmap.setdefault(entry.keysym, {}).setdefault(entry.stroke.level, entry.stroke.key)
    return symmap


def pikvm_strokes(symmap: dict[int, dict[int, str]], text: str) -> list[Stroke | None]:
    """Per character: the stroke PiKVM types, or None where it drops the character."""
    out: list[Stroke | None] = []
    for original in text:
        char = _PIKVM_SUBSTITUTES.get(original, original)
        variants = symmap.get(char_keysym(char)) if char != "\u2014" else None
        if not variants:
            out.append(None)
            continue
        (level, key) = next(iter(variants.items()))  # the first variant in the file's order
        out.append(Stroke(key, shift=bool(level & 1), altgr=bool(level & 2)))
    return out


def judge_pikvm(row: Row, path: Path, decoder: XkbDecoder) -> None:
    symmap = pikvm_symmap(path, KEYMAPS / "en-us")
    for char, stroke in zip(row.text, pikvm_strokes(symmap, row.text), strict=True):
        if stroke is None:
            row.pikvm_dropped += char
            continue
        got = decoder.feed_all(stroke_reports([stroke]))
        decoder.reset()
        if got != char:
            row.pikvm_wrong += char


@pytest.mark.timeout(300)
@pytest.mark.skipif(not NAMES, reason="qemu-system-data is not installed")
async def test_every_layout_types_every_character_through_the_api(make_client, make_config, capsys):
    rows: list[Row] = []
    async with usb_host() as (host, folder):
        config = make_config(kvmd={"hid": otg_config(folder)})
        (client, _) = await make_client(config, loops=True)
        await wait_until(host, lambda: len(host.reports["mouse_alt"]) >= 2)
        for name in NAMES:
            layout = Layout.load(KEYMAPS / name)
            assert layout.source is not None, name
            host.read_as(layout.source)
            host.text = ""
            with XkbDecoder(*layout.source) as decoder:
                text = text_of(layout, decoder)
                row = Row(name, "/".join(layout.source).rstrip("/"), text, "")
                judge_pikvm(row, KEYMAPS / name, decoder)
            response = await client.post(
                "/api/hid/print",
                params={"keymap": name, "limit": "0"},
                data=text.encode(),
                headers=ADMIN,
            )
            body = await response.json()
            assert body["ok"], (name, body)
            row.skipped = body["result"].get("skipped", "")
            row.folded = "".join(char for char in text if folded(layout, char))
            expected = "".join(
                FOLDS[char] if char in row.folded else char
                for char in text
                if char not in row.skipped
            )
            with contextlib.suppress(AssertionError):
                await wait_until(host, shows(host, expected), timeout=20)
            assert host.text == expected, (name, _diff(expected, host.text))
            await asyncio.sleep(0)
            rows.append(row)
    with capsys.disabled():
        print(
            f"\n{'layout':8} {'xkb':14} {'chars':>5} {'typed':>5} {'folded':>6} {'skipped':>7}"
            f" | PiKVM: {'wrong':>5} {'dropped':>7}"
        )
        for row in rows:
            typed = len(row.text) - len(row.skipped) - len(row.folded)
            print(
                f"{row.name:8} {row.xkb:14} {len(row.text):5} {typed:5} {len(row.folded):6}"
                f" {len(row.skipped):7}"
                f" |        {len(row.pikvm_wrong):5} {len(row.pikvm_dropped):7}"
            )
    assert len(rows) == len(NAMES)
    # Every layout types most of what it has; the rest is listed (and shown above).
    for row in rows:
        assert len(row.text) - len(row.skipped) >= 70, row


def shows(host: UsbHost, text: str) -> Callable[[], bool]:
    return lambda: host.text == text


def _diff(expected: str, got: str) -> str:
    for index, (one, other) in enumerate(zip(expected, got, strict=False)):
        if one != other:
            (want, have) = (expected[index : index + 10], got[index : index + 10])
            return f"at {index}: wanted {want!r}, got {have!r}"
    return f"lengths {len(expected)} and {len(got)}"
