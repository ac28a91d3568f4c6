# SPDX-License-Identifier: GPL-3.0-or-later
"""The simulated host's keyboard: boot keyboard reports to text through libxkbcommon.

It knows nothing of kvmd's layouts, so it checks them: it compiles the XKB keymap a
PiKVM/QEMU keymap file was generated from (xkb-data) and replays the reports through an
xkb_state, dead keys through the X11 Compose table of en_US.UTF-8 (libx11-data), as a
Linux desktop on the target would.
"""

import ctypes
import ctypes.util
import functools
from collections.abc import Callable
from typing import Any

from kvmd.plugins.hid.keys import KEYS, Key

_KEY_DOWN = 1
_KEY_UP = 0
# enum xkb_compose_status
_COMPOSE_NOTHING = 0
_COMPOSE_COMPOSING = 1
_COMPOSE_COMPOSED = 2
_COMPOSE_CANCELLED = 3

_KEYS_BY_USAGE: dict[int, Key] = {key.usage: key for key in KEYS.values()}
_MODIFIERS: list[Key] = sorted(
    (key for key in KEYS.values() if key.is_modifier), key=lambda key: key.usage
)


class _RuleNames(ctypes.Structure):
    _fields_ = [
        ("rules", ctypes.c_char_p),
        ("model", ctypes.c_char_p),
        ("layout", ctypes.c_char_p),
        ("variant", ctypes.c_char_p),
        ("options", ctypes.c_char_p),
    ]


def _fn(lib: ctypes.CDLL, name: str, restype: object, *argtypes: object) -> None:
    function = getattr(lib, name)
    function.restype = restype
    function.argtypes = list(argtypes)


@functools.cache
def _library() -> ctypes.CDLL:
    lib = ctypes.CDLL(ctypes.util.find_library("xkbcommon") or "libxkbcommon.so.0")
    ptr = ctypes.c_void_p
    _fn(lib, "xkb_context_new", ptr, ctypes.c_int)
    _fn(lib, "xkb_context_unref", None, ptr)
    _fn(lib, "xkb_keymap_new_from_names", ptr, ptr, ctypes.POINTER(_RuleNames), ctypes.c_int)
    _fn(lib, "xkb_keymap_unref", None, ptr)
    _fn(lib, "xkb_keymap_layout_get_name", ctypes.c_char_p, ptr, ctypes.c_uint32)
    _fn(lib, "xkb_state_new", ptr, ptr)
    _fn(lib, "xkb_state_unref", None, ptr)
    _fn(lib, "xkb_state_update_key", ctypes.c_int, ptr, ctypes.c_uint32, ctypes.c_int)
    _fn(lib, "xkb_state_key_get_one_sym", ctypes.c_uint32, ptr, ctypes.c_uint32)
    _fn(lib, "xkb_keysym_get_name", ctypes.c_int, ctypes.c_uint32, ctypes.c_char_p, ctypes.c_size_t)
    _fn(
        lib,
        "xkb_state_key_get_utf8",
        ctypes.c_int,
        ptr,
        ctypes.c_uint32,
        ctypes.c_char_p,
        ctypes.c_size_t,
    )
    _fn(lib, "xkb_compose_table_new_from_locale", ptr, ptr, ctypes.c_char_p, ctypes.c_int)
    _fn(lib, "xkb_compose_table_unref", None, ptr)
    _fn(lib, "xkb_compose_state_new", ptr, ptr, ctypes.c_int)
    _fn(lib, "xkb_compose_state_unref", None, ptr)
    _fn(lib, "xkb_compose_state_feed", ctypes.c_int, ptr, ctypes.c_uint32)
    _fn(lib, "xkb_compose_state_reset", None, ptr)
    _fn(lib, "xkb_compose_state_get_status", ctypes.c_int, ptr)
    _fn(lib, "xkb_compose_state_get_utf8", ctypes.c_int, ptr, ctypes.c_char_p, ctypes.c_size_t)
    return lib


class XkbDecoder:
    """Successive 8-byte boot keyboard reports to the text they type under XKB."""

    def __init__(self, layout: str, variant: str = "", locale: str = "en_US.UTF-8") -> None:
        self._lib = lib = _library()
        self._context = lib.xkb_context_new(0)
        if not self._context:
            raise RuntimeError("xkb_context_new failed")
        names = _RuleNames(b"evdev", b"pc105", layout.encode(), variant.encode(), b"")
        self._keymap = lib.xkb_keymap_new_from_names(self._context, ctypes.byref(names), 0)
        if not self._keymap:
            raise RuntimeError(f"no XKB keymap for layout {layout!r} variant {variant!r}")
        self.name = (lib.xkb_keymap_layout_get_name(self._keymap, 0) or b"").decode()
        self._state = lib.xkb_state_new(self._keymap)
        self._table = lib.xkb_compose_table_new_from_locale(self._context, locale.encode(), 0)
        if not self._table:
            raise RuntimeError(f"no Compose table for {locale} (apt-get install libx11-data)")
        self._compose = lib.xkb_compose_state_new(self._table, 0)
        self._previous = bytes(8)

    def close(self) -> None:
        lib = self._lib
        for function, pointer in (
            (lib.xkb_compose_state_unref, "_compose"),
            (lib.xkb_compose_table_unref, "_table"),
            (lib.xkb_state_unref, "_state"),
            (lib.xkb_keymap_unref, "_keymap"),
            (lib.xkb_context_unref, "_context"),
        ):
            if getattr(self, pointer):
                function(getattr(self, pointer))
                setattr(self, pointer, None)

    def __enter__(self) -> "XkbDecoder":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def feed(self, report: bytes) -> str:
        """What one report types, given the reports before it."""
        report = bytes(report)
        if len(report) != 8:
            raise ValueError(f"a boot keyboard report has 8 bytes, not {len(report)}")
        (old, new) = (self._previous, report)
        self._previous = report
        old_keys = [usage for usage in old[2:] if usage]
        new_keys = [usage for usage in new[2:] if usage]
        for usage in old_keys:
            if usage not in new_keys:
                self._update(_KEYS_BY_USAGE[usage], _KEY_UP)
        for key in _MODIFIERS:
            if old[0] & key.modifier_bit and not new[0] & key.modifier_bit:
                self._update(key, _KEY_UP)
        for key in _MODIFIERS:
            if new[0] & key.modifier_bit and not old[0] & key.modifier_bit:
                self._update(key, _KEY_DOWN)
        text = ""
        for usage in new_keys:
            if usage not in old_keys:
                key = _KEYS_BY_USAGE[usage]
                text += self._type(key)
                self._update(key, _KEY_DOWN)
        return text

    def keysym(self, key: Key, *, shift: bool = False, altgr: bool = False) -> int:
        """The keysym `key` gives with these modifiers and no other key down."""
        lib = self._lib
        state = lib.xkb_state_new(self._keymap)
        try:
            for held, modifier in ((shift, KEYS["ShiftLeft"]), (altgr, KEYS["AltRight"])):
                if held:
                    lib.xkb_state_update_key(state, modifier.evdev + 8, _KEY_DOWN)
            return int(lib.xkb_state_key_get_one_sym(state, key.evdev + 8))
        finally:
            lib.xkb_state_unref(state)

    def reset(self) -> None:
        """Forget a pending dead key (all keys must be up)."""
        self._lib.xkb_compose_state_reset(self._compose)

    def feed_all(self, reports: list[bytes]) -> str:
        return "".join(self.feed(report) for report in reports)

    def _update(self, key: Key, direction: int) -> None:
        self._lib.xkb_state_update_key(self._state, key.evdev + 8, direction)

    def _type(self, key: Key) -> str:
        """The text of a key pressed now, with the modifiers down now, through Compose."""
        lib = self._lib
        code = key.evdev + 8
        keysym = lib.xkb_state_key_get_one_sym(self._state, code)
        lib.xkb_compose_state_feed(self._compose, keysym)
        status = lib.xkb_compose_state_get_status(self._compose)
        if status == _COMPOSE_COMPOSING:
            return ""
        if status == _COMPOSE_CANCELLED:
            lib.xkb_compose_state_reset(self._compose)
            return ""
        if status == _COMPOSE_COMPOSED:
            text = _utf8(lambda buf, size: lib.xkb_compose_state_get_utf8(self._compose, buf, size))
            lib.xkb_compose_state_reset(self._compose)
            return text
        return _utf8(lambda buf, size: lib.xkb_state_key_get_utf8(self._state, code, buf, size))


def keysym_name(keysym: int) -> str:
    """The X name of a keysym (0x61 = `a`, 0xfe51 = `dead_acute`, 0x1000101 = `U0101`)."""
    lib = _library()
    return _utf8(lambda buf, size: lib.xkb_keysym_get_name(keysym, buf, size))


def _utf8(get: Callable[[Any, int], int]) -> str:
    buf = ctypes.create_string_buffer(64)
    size = get(buf, len(buf))
    if size < 0:
        return ""
    if size >= len(buf):
        buf = ctypes.create_string_buffer(size + 1)
        get(buf, len(buf))
    return buf.value.decode("utf-8", "replace")
