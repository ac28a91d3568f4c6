# SPDX-License-Identifier: GPL-3.0-or-later
"""Keyboard layouts: text to key strokes for `/api/hid/print`, and strokes back to text.

Two file formats load into the same table. PiKVM's and QEMU's keymaps (Debian's
`qemu-system-data` has them in /usr/share/qemu/keymaps) list per keysym the key (a PC
scancode) and the modifiers that type it; kvmd's own files in `configs/keymaps/` list,
per physical key, what it types plain, with Shift, with AltGr and with both.
Characters a layout has no key for are composed with its dead keys where Unicode says
how (`é` = dead acute, `e`); whatever is left is reported to the caller, never dropped
silently. The same table decodes strokes, which is how the simulated USB host reads what
was typed.
"""

import dataclasses
import re
import unicodedata
from pathlib import Path

from kvmd.plugins.hid.keys import KEYS, KEYS_BY_EVDEV
from kvmd.plugins.hid.keysyms import DEAD_MARKS, KeysymError, keysym_char

# What a dead key types when followed by Space: the accent on its own.
SPACING = {
    "\u0300": "`",
    "\u0301": "\u00b4",
    "\u0302": "^",
    "\u0303": "~",
    "\u0308": "\u00a8",
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


class LayoutError(ValueError):
    pass


@dataclasses.dataclass(frozen=True, slots=True)
class Stroke:
    key: str
    shift: bool = False
    altgr: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class Plan:
    strokes: list[Stroke]
    # Characters that could not be typed, in order of appearance, each once.
    skipped: str


class Layout:
    def __init__(self, name: str, levels: dict[tuple[str, int], str]) -> None:
        self.name = name
        # (key, level) -> a character, or a combining mark for a dead key.
        self._levels = levels
        self._chars: dict[str, Stroke] = {}
        self._dead: dict[str, Stroke] = {}
        for (key, level), item in sorted(levels.items(), key=lambda item: item[0][1]):
            stroke = Stroke(key, shift=bool(level & 1), altgr=bool(level & 2))
            table = self._dead if _is_mark(item) else self._chars
            table.setdefault(item, stroke)  # the lowest level wins: fewer modifiers

    @classmethod
    def load(cls, path: Path) -> "Layout":
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise LayoutError(f"can't read layout {path}: {exc}") from None
        return cls.parse(text, path.name)

    @classmethod
    def parse(cls, text: str, name: str) -> "Layout":
        if _is_qemu(text):
            try:
                return cls(name, _parse_qemu(text, name))
            except KeysymError as exc:  # no libxkbcommon: no keysym names to read
                raise LayoutError(f"{name}: {exc}") from None
        levels = {(key, 0): char for (key, char) in _COMMON.items()}
        for number, line in enumerate(text.splitlines(), 1):
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            (key, items) = (fields[0], fields[1:])
            if key not in KEYS or not 1 <= len(items) <= 4:
                raise LayoutError(f"{name}:{number}: expected a key name and 1..4 levels")
            for level, item in enumerate(items):
                if item != "-":
                    levels[(key, level)] = _parse_token(item, f"{name}:{number}")
        return cls(name, levels)

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

    def _strokes(self, char: str, *, fold: bool = True) -> list[Stroke] | None:
        if char in self._chars:
            return [self._chars[char]]
        for mark, spacing in SPACING.items():
            if char == spacing and mark in self._dead:
                return [self._dead[mark], self._chars[" "]]
        decomposed = unicodedata.normalize("NFD", char)
        if len(decomposed) == 2 and decomposed[0] in self._chars and decomposed[1] in self._dead:
            return [self._dead[decomposed[1]], self._chars[decomposed[0]]]
        if fold and char in FOLDS:
            strokes: list[Stroke] = []
            for part in FOLDS[char]:
                found = self._strokes(part, fold=False)
                if found is None:
                    return None
                strokes.extend(found)
            return strokes
        return None

    def decoder(self) -> "Decoder":
        return Decoder(self._levels)


class Decoder:
    """Key presses (with Shift/AltGr/Caps Lock state) back to text, dead keys included."""

    def __init__(self, levels: dict[tuple[str, int], str]) -> None:
        self._levels = levels
        self._mark = ""

    def press(self, key: str, *, shift: bool, altgr: bool, caps: bool = False) -> str:
        item = self._levels.get((key, shift + 2 * altgr))
        if item is None:
            return ""
        if _is_mark(item):
            # A second dead key gives up the first one, typed on its own.
            (pending, self._mark) = (SPACING.get(self._mark, ""), item)
            return pending
        if caps and item.isalpha() and len(item.swapcase()) == 1:
            item = item.swapcase()
        if not self._mark:
            return item
        (mark, self._mark) = (self._mark, "")
        if item == " ":
            return SPACING[mark]
        composed = unicodedata.normalize("NFC", item + mark)
        return composed if len(composed) == 1 else SPACING[mark] + item


def _is_mark(item: str) -> bool:
    return unicodedata.combining(item) != 0


def _parse_token(item: str, where: str) -> str:
    if item in DEAD_MARKS:
        return DEAD_MARKS[item]
    if item.startswith("U+") and len(item) > 2:
        try:
            return chr(int(item[2:], 16))
        except ValueError:
            pass
    elif len(item) == 1 and not _is_mark(item):
        return item
    raise LayoutError(f"{where}: bad level {item!r}")


# PC/XT scan codes (set 1) of the keys whose Linux evdev code differs from the code; up to
# 0x58 they are equal. QEMU writes an E0-prefixed key with bit 7 set (Alt_R = 0xb8),
# PiKVM's own table as 0xe0xx: both are read.
_SCANCODES = {
    0x70: 93, 0x73: 89, 0x79: 92, 0x7B: 94, 0x7D: 124,
    0xE01C: 96, 0xE01D: 97, 0xE035: 98, 0xE037: 99, 0xE038: 100, 0xE047: 102, 0xE048: 103,
    0xE049: 104, 0xE04B: 105, 0xE04D: 106, 0xE04F: 107, 0xE050: 108, 0xE051: 109,
    0xE052: 110, 0xE053: 111, 0xE05B: 125, 0xE05C: 126, 0xE05D: 127,
}  # fmt: skip
_HEX = re.compile(r"^0[xX][0-9a-fA-F]+$")
# Flags of a qemu keymap line that say nothing about printing (rdesktop's heritage).
_IGNORED_FLAGS = frozenset({"localstate", "inhibit"})


def _is_qemu(text: str) -> bool:
    for line in text.splitlines():
        fields = line.split()
        if fields and not fields[0].startswith("#"):
            return fields[0] in ("map", "include") or (
                len(fields) > 1 and bool(_HEX.match(fields[1]))
            )
    return False


def _scancode_key(code: int) -> str | None:
    if 0x80 <= code <= 0xFF:
        code = 0xE000 | (code & 0x7F)
    evdev = code if 0 < code <= 0x58 else _SCANCODES.get(code)
    key = KEYS_BY_EVDEV.get(evdev) if evdev is not None else None
    return key.name if key is not None else None


def _parse_qemu(text: str, name: str) -> dict[tuple[str, int], str]:
    """PiKVM's/QEMU's keymap: `<keysym> <scancode> [shift] [altgr] [addupper] ...` lines."""
    levels = {(key, 0): char for (key, char) in _COMMON.items()}
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith("#") or fields[0] in ("map", "include"):
            continue
        where = f"{name}:{number}"
        if len(fields) < 2 or not _HEX.match(fields[1]):
            raise LayoutError(f"{where}: expected a keysym name and a hex scancode")
        (keysym, code, flags) = (fields[0], int(fields[1], 16), set(fields[2:]))
        unknown = flags - {"shift", "altgr", "ctrl", "addupper", "numlock"} - _IGNORED_FLAGS
        if unknown:
            raise LayoutError(f"{where}: unknown flag {sorted(unknown)[0]!r}")
        key = _scancode_key(code)
        char = keysym_char(keysym)
        # Keypad keys and Control chords type nothing a text needs; the number row does.
        if key is None or char is None or "ctrl" in flags or key.startswith("Numpad"):
            continue
        if not (char.isprintable() or _is_mark(char)):
            continue
        level = ("shift" in flags) + 2 * ("altgr" in flags)
        levels.setdefault((key, level), char)
        upper = char.upper()
        if "addupper" in flags and len(upper) == 1 and upper != char:
            levels.setdefault((key, level | 1), upper)
    return levels


def layout_path(folder: Path, name: str) -> Path:
    """The file of layout `name` in `folder`; a name never reaches outside the folder."""
    if not _NAME.match(name):
        raise LayoutError(f"bad layout name {name!r}")
    return folder / name
