# SPDX-License-Identifier: GPL-3.0-or-later
"""Keyboard layouts: text to key strokes for `/api/hid/print`, keysyms to keys for VNC.

A layout is a PiKVM/QEMU keymap file, read as it is: per X keysym, the key (a PC
scancode) and the modifiers that type it. PiKVM installs 36 of them in
/usr/share/kvmd/keymaps, Debian's `qemu-system-data` 34 in /usr/share/qemu/keymaps.
qemu-keymap generated them years ago from xkb-data; the few keys xkb-data has changed
since are read as they are now (`moved.py`). Characters a layout has no key for are
composed with its dead keys where Unicode says how (`é` = dead acute, `e`); whatever is
left is reported to the caller, never dropped silently.
"""

import dataclasses
import functools
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path

from kvmd.auth.files import FileSignature, signature
from kvmd.plugins.hid.keys import KEYS_BY_EVDEV
from kvmd.plugins.hid.keysyms import KeysymError, char_keysym, keysym_char, keysym_number
from kvmd.plugins.hid.moved import MOVED

# What a dead key types when followed by Space: the accent on its own. Not the acute and
# the diaeresis: X11 types ' and " there (and the accent for the dead key twice), Windows
# the accent, so no one sequence is right on every target.
SPACING = {
    "\u0300": "`",
    "\u0302": "^",
    "\u0303": "~",
    "\u030a": "\u00b0",
    "\u030c": "\u02c7",
    "\u0327": "\u00b8",
    "\u0304": "\u00af",
    "\u0306": "\u02d8",
    "\u0307": "\u02d9",
    "\u030b": "\u02dd",
    "\u0328": "\u02db",
}
# Typographic characters that most layouts lack, typed as their plain ASCII cousins.
FOLDS = {
    "\u2014": "--",
    "\u2013": "-",
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u00ab": '"',
    "\u00bb": '"',
    "\u2026": "...",
    "\u00a0": " ",
}
# Keys that type the same thing on every layout.
_COMMON = {"Space": " ", "Enter": "\n", "Tab": "\t"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_HEADER = re.compile(r"^#\s+(layout|variant)\s*:\s*(\S+)\s*$")
# The two hand-written files (rdesktop's) have no header naming their XKB layout.
_OLD_SOURCES = {"sl": ("si", ""), "sv": ("se", "")}


class LayoutError(ValueError):
    pass


@dataclasses.dataclass(frozen=True, slots=True)
class Stroke:
    key: str
    shift: bool = False
    altgr: bool = False

    @property
    def level(self) -> int:
        return self.shift + 2 * self.altgr


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    """One line of a keymap file: this keysym (typing `char`, or "") comes from `stroke`."""

    keysym: int
    char: str
    stroke: Stroke
    # keysym name, scancode, level: how `moved.py` names the entry.
    label: str


@dataclasses.dataclass(frozen=True, slots=True)
class Plan:
    strokes: list[Stroke]
    # Characters that could not be typed, in order of appearance, each once.
    skipped: str


class Layout:
    def __init__(self, name: str, entries: list[Entry], source: tuple[str, str] | None) -> None:
        """`entries` in the file's order."""
        self.name = name
        # The XKB (layout, variant) the file was generated from, if it says.
        self.source = source
        self._keysyms: dict[int, list[Stroke]] = {}
        self._levels: dict[tuple[str, int], str] = {}
        for entry in entries:
            strokes = self._keysyms.setdefault(entry.keysym, [])
            if all(known.level != entry.stroke.level for known in strokes):
                strokes.append(entry.stroke)  # per modifier level, the first key listed wins
            if entry.char:
                self._levels.setdefault((entry.stroke.key, entry.stroke.level), entry.char)
        self._chars: dict[str, Stroke] = {}
        self._dead: dict[str, Stroke] = {}
        levels = [(key, level, char) for (key, level), char in self._levels.items()]
        levels += [(key, 0, char) for (key, char) in _COMMON.items()]
        for key, level, char in sorted(levels, key=lambda item: item[1]):
            stroke = Stroke(key, shift=bool(level & 1), altgr=bool(level & 2))
            table = self._dead if _is_mark(char) else self._chars
            table.setdefault(char, stroke)  # the lowest level wins: fewer modifiers

    @classmethod
    def load(cls, path: Path) -> "Layout":
        """The layout in file `path`, read again only when the file changed."""
        version = signature(path)
        if version is None:
            raise LayoutError(f"can't read layout {path}: no such file")
        return _load(path, version)

    @classmethod
    def parse(cls, text: str, name: str) -> "Layout":
        source = xkb_source(text, name)
        moved = MOVED.get(source, {}) if source else {}
        entries = [
            _as_now(entry, moved[entry.label]) if entry.label in moved else entry
            for entry in parse_entries(text, name)
        ]
        return cls(name, [entry for entry in entries if entry.keysym], source)

    def plan(self, text: str) -> Plan:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        strokes: list[Stroke] = []
        skipped: dict[str, None] = {}
        for char in text:
            found = self._strokes(char)
            if found is None:
                skipped[char] = None
            else:
                strokes.extend(found)
        return Plan(strokes=strokes, skipped="".join(skipped))

    def keysym(self, keysym: int) -> list[Stroke]:
        """The keys that type X keysym `keysym`, fewest modifiers first (for VNC clients)."""
        return sorted(self._keysyms.get(keysym, []), key=lambda stroke: stroke.level)

    def legend(self) -> dict[str, list[str]]:
        """What each key types plain, with Shift, AltGr and both; a dead key as its accent."""
        legend: dict[str, list[str]] = {}
        for (key, level), char in self._levels.items():
            # A dead key shows its accent alone, or on ◌ (the dotted circle).
            shown = SPACING.get(char, "\u25cc" + char) if _is_mark(char) else char
            legend.setdefault(key, ["", "", "", ""])[level] = shown
        return legend

    def _strokes(self, char: str, *, fold: bool = True) -> list[Stroke] | None:
        if char in self._chars:
            return [self._chars[char]]
        for mark, spacing in SPACING.items():
            if char == spacing and mark in self._dead:
                return [self._dead[mark], self._chars[" "]]
        decomposed = unicodedata.normalize("NFD", char)
        if (
            len(decomposed) == 2
            and decomposed[0] in self._chars
            and decomposed[1] in self._dead
            # Dead keys accent letters; an accented symbol (῭ = ¨ + `) has no sequence.
            and unicodedata.category(decomposed[0]).startswith("L")
        ):
            return [self._dead[decomposed[1]], self._chars[decomposed[0]]]
        folded = FOLDS.get(char) or _shaped_letters(char)
        if fold and folded:
            strokes: list[Stroke] = []
            for part in folded:
                found = self._strokes(part, fold=False)
                if found is None:
                    return None
                strokes.extend(found)
            return strokes
        return None


@functools.lru_cache(maxsize=16)
def _load(path: Path, version: FileSignature) -> Layout:
    del version  # the cache's key: a changed file is read again
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LayoutError(f"can't read layout {path}: {exc}") from None
    return Layout.parse(text, path.name)


def _is_mark(char: str) -> bool:
    return unicodedata.combining(char) != 0


def _shaped_letters(char: str) -> str:
    """The letters of a presentation form (lam-alef: lam, alef); shaping is the renderer's."""
    if len(char) != 1:
        return ""
    tag = unicodedata.decomposition(char).split(" ", 1)[0]
    if tag in ("<isolated>", "<initial>", "<medial>", "<final>"):
        return unicodedata.normalize("NFKC", char)
    return ""


def xkb_source(text: str, name: str) -> tuple[str, str] | None:
    """The XKB (layout, variant) a keymap file was generated from, as its header says."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            break
        match = _HEADER.match(line)
        if match:
            found.setdefault(match.group(1), match.group(2))
    if "layout" not in found:
        return _OLD_SOURCES.get(name)
    variant = found.get("variant", "-")
    return (found["layout"], "" if variant == "-" else variant)


# PC/XT scan codes (set 1) of the keys whose Linux evdev code differs from the code; up to
# 0x58 they are equal but for 0x54 (SysRq, Alt+PrintScreen's code). QEMU writes an
# E0-prefixed key with bit 7 set (Alt_R = 0xb8), PiKVM's own table as 0xe0xx: both are read.
_SCANCODES = {
    0x54: 99, 0x70: 93, 0x73: 89, 0x79: 92, 0x7B: 94, 0x7D: 124,
    0xE01C: 96, 0xE01D: 97, 0xE035: 98, 0xE037: 99, 0xE038: 100, 0xE047: 102, 0xE048: 103,
    0xE049: 104, 0xE04B: 105, 0xE04D: 106, 0xE04F: 107, 0xE050: 108, 0xE051: 109,
    0xE052: 110, 0xE053: 111, 0xE05B: 125, 0xE05C: 126, 0xE05D: 127,
}  # fmt: skip
_HEX = re.compile(r"^0[xX][0-9a-fA-F]+$")
_FLAGS = frozenset({"shift", "altgr", "ctrl", "addupper", "numlock"})
# Flags of a line that say nothing about typing (rdesktop's heritage).
_IGNORED_FLAGS = frozenset({"localstate", "inhibit"})


def scancode_key(code: int) -> str | None:
    """The key of a PC/XT (set 1) scancode, in QEMU's (0x80 | code) or PiKVM's (0xe0xx) form."""
    if 0x80 <= code <= 0xFF:
        code = 0xE000 | (code & 0x7F)
    evdev = _SCANCODES.get(code, code if 0 < code <= 0x58 else None)
    key = KEYS_BY_EVDEV.get(evdev) if evdev is not None else None
    return key.name if key is not None else None


def _text(keysym_name: str, key: str) -> str:
    """What a keysym on `key` types as text: a character, a dead key's mark, or ""."""
    char = keysym_char(keysym_name) or ""
    # The keypad types digits only with Num Lock, which text typing does not assume.
    # A shaped form (Arabic's lam-alef key) types its letters, not itself.
    if key.startswith("Numpad") or not (char.isprintable() or _is_mark(char)):
        return ""
    return "" if _shaped_letters(char) else char


def _as_now(entry: Entry, keysym_name: str) -> Entry:
    """An entry xkb-data has moved, as the key is now (keysym 0: it types nothing)."""
    if not keysym_name:
        return dataclasses.replace(entry, keysym=0, char="")
    char = _text(keysym_name, entry.stroke.key)
    return dataclasses.replace(entry, keysym=keysym_number(keysym_name), char=char)


def parse_entries(text: str, name: str) -> list[Entry]:
    """`<keysym> <scancode> [shift] [altgr] [addupper] ...` lines, in the file's order."""
    try:
        return list(_entries(text, name))
    except KeysymError as exc:  # no libxkbcommon: no keysym names to read
        raise LayoutError(f"{name}: {exc}") from None


def _entries(text: str, name: str) -> Iterator[Entry]:
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith("#") or fields[0] in ("map", "include"):
            continue
        where = f"{name}:{number}"
        if len(fields) < 2 or not _HEX.match(fields[1]):
            raise LayoutError(f"{where}: expected a keysym name and a hex scancode")
        (keysym_name, code, flags) = (fields[0], int(fields[1], 16), set(fields[2:]))
        unknown = flags - _FLAGS - _IGNORED_FLAGS
        if unknown:
            raise LayoutError(f"{where}: unknown flag {sorted(unknown)[0]!r}")
        key = scancode_key(code)
        keysym = keysym_number(keysym_name)
        if key is None or keysym == 0 or "ctrl" in flags:
            continue
        stroke = Stroke(key, shift="shift" in flags, altgr="altgr" in flags)
        char = _text(keysym_name, key)
        yield Entry(keysym, char, stroke, f"{keysym_name} {code:#04x} {stroke.level}")
        upper = char.upper()
        if "addupper" in flags and len(upper) == 1 and upper != char:
            shifted = Stroke(key, shift=True, altgr=stroke.altgr)
            yield Entry(char_keysym(upper), upper, shifted, f"{upper} {code:#04x} {shifted.level}")


def layout_path(folder: Path, name: str) -> Path:
    """The file of layout `name` in `folder`; a name never reaches outside the folder."""
    if not _NAME.match(name):
        raise LayoutError(f"bad layout name {name!r}")
    return folder / name
