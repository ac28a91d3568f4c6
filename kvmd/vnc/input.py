# SPDX-License-Identifier: GPL-3.0-or-later
"""A VNC client's keyboard and mouse, as key presses and pointer moves of the HID backend.

KeyEvents carry X keysyms, which the configured keymap (a PiKVM keymap file) turns into
keys. Where the keysym needs other modifiers than the client holds (a US client typing
`@` to a German target: AltGr+Q there, Shift+2 here), the modifiers are changed around
that one key and put back; PiKVM drops such keys. QEMU's extended key events carry
scancodes and need no keymap. Every key and button this session holds is released when
it ends, whatever the client did.
"""

import logging

from kvmd.plugins.hid.base import HidBackend
from kvmd.plugins.hid.keys import KEYS, Key
from kvmd.plugins.hid.layouts import Layout, Stroke, scancode_key

logger = logging.getLogger(__name__)

_SHIFT = KEYS["ShiftLeft"]
_ALTGR = KEYS["AltRight"]
# Keysyms of the modifiers a client holds (X11): Shift, AltGr, and Alt_R, which clients
# on systems without AltGr send for the right Alt key.
_SHIFTS = frozenset({0xFFE1, 0xFFE2})
_ALTGRS = frozenset({0xFE03, 0xFF7E, 0xFFEA})
_KEYSYM_KEYS = {0xFFE1: "ShiftLeft", 0xFFE2: "ShiftRight", 0xFE03: "AltRight", 0xFFEA: "AltRight"}
# RFB pointer mask bits: buttons, then the wheel (4 up, 5 down, 6 left, 7 right).
_BUTTONS = {0x01: "left", 0x02: "middle", 0x04: "right"}
# ExtendedMouseButtons' extra byte: forward and back (PiKVM's "down" and "up").
_EXTRA_BUTTONS = {0x01: "down", 0x02: "up"}
# Where the absolute mouse's range ends: -32768..32767.
_AXIS = 65535


class VncInput:
    def __init__(self, hid: HidBackend, layout: Layout | None, scroll_rate: int) -> None:
        self._hid = hid
        self._layout = layout
        self._scroll = scroll_rate
        self._shift = False  # the client holds Shift
        self._altgr = False
        # keysym or scancode -> the key pressed for it, and the modifiers changed around it.
        self._keys: dict[tuple[str, int], Key] = {}
        self._buttons = 0
        self._extra = 0
        self._position: tuple[int, int, int, int] | None = None
        self.warned: set[str] = set()

    # --- keyboard -----------------------------------------------------------------

    def keysym(self, keysym: int, *, down: bool) -> None:
        if keysym in _SHIFTS:
            self._shift = down
        elif keysym in _ALTGRS:
            self._altgr = down
        ident = ("sym", keysym)
        if not down:
            self._release(ident)
            return
        if ident in self._keys:
            return  # auto-repeat of a held key: the target repeats by itself
        if keysym in _KEYSYM_KEYS:
            self._press(ident, KEYS[_KEYSYM_KEYS[keysym]])
            return
        strokes = self._layout.keysym(keysym) if self._layout is not None else []
        if not strokes:
            self.warn("keysym", "VNC: no key for keysym 0x%x in the keymap", keysym)
            return
        level = self._shift + 2 * self._altgr
        stroke = next((s for s in strokes if s.level == level), None)
        if stroke is None and self._shift:
            # A shifted symbol sent with Shift held that the layout types unshifted.
            stroke = next((s for s in strokes if s.level == level - 1), None)
        if stroke is not None:
            self._press(ident, KEYS[stroke.key])
        else:
            self._tap_with(strokes[0])

    def scancode(self, code: int, *, down: bool) -> None:
        """QEMU's extended key event: an XT scancode, whatever the layout."""
        if code == 0xB7:
            code = 0x54  # SysRq, as QEMU sends PrintScreen
        name = scancode_key(code)
        if name is None:
            self.warn("scancode", "VNC: unknown scancode 0x%x", code)
            return
        key = KEYS[name]
        if key in (KEYS["ShiftLeft"], KEYS["ShiftRight"]):
            self._shift = down
        elif key is _ALTGR:
            self._altgr = down
        ident = ("code", code)
        if down:
            self._press(ident, key)
        else:
            self._release(ident)

    def _press(self, ident: tuple[str, int], key: Key) -> None:
        self._keys[ident] = key
        self._hid.send_key(key, state=True)

    def _release(self, ident: tuple[str, int]) -> None:
        key = self._keys.pop(ident, None)
        if key is not None and key not in self._keys.values():
            self._hid.send_key(key, state=False)

    def _tap_with(self, stroke: Stroke) -> None:
        """Press and release a key with other modifiers than the client holds."""
        changes = [(_SHIFT, stroke.shift, self._shift), (_ALTGR, stroke.altgr, self._altgr)]
        held = set(self._keys.values())
        for modifier, wanted, holding in changes:
            if wanted != holding:
                self._set_modifier(modifier, wanted, held)
        key = KEYS[stroke.key]
        self._hid.send_key(key, state=True)
        self._hid.send_key(key, state=False)
        for modifier, wanted, holding in reversed(changes):
            if wanted != holding:
                self._set_modifier(modifier, holding, held)

    def _set_modifier(self, modifier: Key, down: bool, held: set[Key]) -> None:
        # What the client holds as Shift or AltGr may be the right-hand key: that one is
        # let go and pressed again, or the left-hand one when it holds none.
        keys = {key for key in held if _same_role(key, modifier)} or {modifier}
        for key in sorted(keys, key=lambda key: key.name):
            self._hid.send_key(key, state=down)

    # --- pointer --------------------------------------------------------------------

    def pointer(self, mask: int, x: int, y: int, width: int, height: int, extra: int = 0) -> None:
        position = (width, height, x, y)
        if position != self._position:
            self._position = position
            self._hid.send_mouse_move(_scale(x, width), _scale(y, height))
        for bit, button in _BUTTONS.items():
            if (mask ^ self._buttons) & bit:
                self._hid.send_mouse_button(button, state=bool(mask & bit))
        for bit, button in _EXTRA_BUTTONS.items():
            if (extra ^ self._extra) & bit:
                self._hid.send_mouse_button(button, state=bool(extra & bit))
        (self._buttons, self._extra) = (mask & 0x07, extra)
        dx = self._scroll * (bool(mask & 0x20) - bool(mask & 0x40))
        dy = self._scroll * (bool(mask & 0x08) - bool(mask & 0x10))
        if dx or dy:
            self._hid.send_mouse_wheel(dx, dy)

    # --- the end -------------------------------------------------------------------

    def release(self) -> None:
        """Let go of everything this session holds."""
        for key in set(self._keys.values()):
            self._hid.send_key(key, state=False)
        self._keys.clear()
        for bit, button in _BUTTONS.items():
            if self._buttons & bit:
                self._hid.send_mouse_button(button, state=False)
        for bit, button in _EXTRA_BUTTONS.items():
            if self._extra & bit:
                self._hid.send_mouse_button(button, state=False)
        (self._buttons, self._extra) = (0, 0)

    def warn(self, what: str, msg: str, *args: object) -> None:
        if what not in self.warned:
            self.warned.add(what)
            logger.warning(msg, *args)


def _scale(value: int, size: int) -> int:
    if size <= 1:
        return 0
    return min(max(value, 0), size - 1) * _AXIS // (size - 1) - 32768


def _same_role(key: Key, modifier: Key) -> bool:
    if modifier is _SHIFT:
        return key.name in ("ShiftLeft", "ShiftRight")
    return key.name == "AltRight"
