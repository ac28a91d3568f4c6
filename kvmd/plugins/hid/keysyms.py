# SPDX-License-Identifier: GPL-3.0-or-later
"""X11 keysym names to characters, through libxkbcommon (Debian's libxkbcommon0).

PiKVM's and QEMU's keymap files name what a key types by keysym (`exclam`, `EuroSign`,
`dead_acute`, `U20AC`); libxkbcommon holds the maintained table of those names and their
Unicode values, so none is copied here.
"""

import ctypes
import ctypes.util
import functools

# Dead keysyms by name, as the combining mark they put on the next character.
DEAD_MARKS = {
    "dead_grave": "\u0300",
    "dead_acute": "\u0301",
    "dead_circumflex": "\u0302",
    "dead_tilde": "\u0303",
    "dead_macron": "\u0304",
    "dead_breve": "\u0306",
    "dead_abovedot": "\u0307",
    "dead_diaeresis": "\u0308",
    "dead_hook": "\u0309",
    "dead_abovering": "\u030a",
    "dead_doubleacute": "\u030b",
    "dead_caron": "\u030c",
    "dead_horn": "\u031b",
    "dead_belowdot": "\u0323",
    "dead_belowcomma": "\u0326",
    "dead_cedilla": "\u0327",
    "dead_ogonek": "\u0328",
    "dead_belowmacron": "\u0331",
    "dead_stroke": "\u0338",
}


class KeysymError(RuntimeError):
    pass


@functools.cache
def _library() -> ctypes.CDLL:
    name = ctypes.util.find_library("xkbcommon") or "libxkbcommon.so.0"
    try:
        lib = ctypes.CDLL(name)
    except OSError as exc:
        raise KeysymError(
            f"libxkbcommon is missing ({exc}): apt-get install libxkbcommon0"
        ) from exc
    lib.xkb_keysym_from_name.argtypes = [ctypes.c_char_p, ctypes.c_int]
    lib.xkb_keysym_from_name.restype = ctypes.c_uint32
    lib.xkb_keysym_to_utf32.argtypes = [ctypes.c_uint32]
    lib.xkb_keysym_to_utf32.restype = ctypes.c_uint32
    lib.xkb_utf32_to_keysym.argtypes = [ctypes.c_uint32]
    lib.xkb_utf32_to_keysym.restype = ctypes.c_uint32
    return lib


@functools.cache
def keysym_number(name: str) -> int:
    """The X keysym `name` stands for (`a` = 0x61, `U20AC` = 0x10020ac), 0 if unknown."""
    return int(_library().xkb_keysym_from_name(name.encode("ascii", "replace"), 0))


def char_keysym(char: str) -> int:
    """The keysym of a character (`é` = 0xe9, `€` = 0x20ac's legacy EuroSign)."""
    return int(_library().xkb_utf32_to_keysym(ord(char)))


@functools.cache
def keysym_char(name: str) -> str | None:
    """What keysym `name` types: a character, a combining mark for a dead key, or None.

    None for unknown names and for keysyms that type no character (Shift_L, F1, ...).
    """
    if name in DEAD_MARKS:
        return DEAD_MARKS[name]
    return keysym_text(keysym_number(name))


def keysym_text(keysym: int) -> str | None:
    """The character keysym number `keysym` types, or None (0, Shift_L, F1, dead keys...)."""
    code = _library().xkb_keysym_to_utf32(keysym) if keysym else 0
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return None
    return chr(code)
