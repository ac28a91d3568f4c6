# SPDX-License-Identifier: GPL-3.0-or-later
"""Web key names (`KeyboardEvent.code`) with their USB HID usage and Linux evdev code.

USB usages are from the HID Usage Tables, Keyboard/Keypad page (0x07); evdev codes from
linux/input-event-codes.h. Binary websocket frames may name a key by its evdev code.
"""

import dataclasses


@dataclasses.dataclass(frozen=True, slots=True)
class Key:
    name: str
    usage: int  # USB HID usage, Keyboard/Keypad page
    evdev: int

    @property
    def is_modifier(self) -> bool:
        return 0xE0 <= self.usage <= 0xE7

    @property
    def modifier_bit(self) -> int:
        """The bit in the report's modifier byte (LeftCtrl 0x01 ... RightMeta 0x80)."""
        return 1 << (self.usage - 0xE0) if self.is_modifier else 0


def _table() -> list[Key]:
    keys: list[Key] = []
    letters_evdev = {
        "A": 30, "B": 48, "C": 46, "D": 32, "E": 18, "F": 33, "G": 34, "H": 35, "I": 23,
        "J": 36, "K": 37, "L": 38, "M": 50, "N": 49, "O": 24, "P": 25, "Q": 16, "R": 19,
        "S": 31, "T": 20, "U": 22, "V": 47, "W": 17, "X": 45, "Y": 21, "Z": 44,
    }  # fmt: skip
    for offset, letter in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZ"):
        keys.append(Key(f"Key{letter}", 0x04 + offset, letters_evdev[letter]))
    for digit in range(1, 10):
        keys.append(Key(f"Digit{digit}", 0x1E + digit - 1, 2 + digit - 1))
    keys.append(Key("Digit0", 0x27, 11))
    for number in range(1, 13):
        keys.append(
            Key(
                f"F{number}",
                0x3A + number - 1,
                59 + number - 1 if number <= 10 else 87 + number - 11,
            )
        )
    for number in range(13, 25):
        keys.append(Key(f"F{number}", 0x68 + number - 13, 183 + number - 13))
    for digit in range(1, 10):
        # Numpad1..9 are USB 0x59..0x61; evdev lays them out by rows (KP7=71 ... KP3=81).
        keys.append(
            Key(
                f"Numpad{digit}",
                0x59 + digit - 1,
                {1: 79, 2: 80, 3: 81, 4: 75, 5: 76, 6: 77, 7: 71, 8: 72, 9: 73}[digit],
            )
        )
    keys.extend(
        Key(name, usage, evdev)
        for (name, usage, evdev) in (
            ("Enter", 0x28, 28), ("Escape", 0x29, 1), ("Backspace", 0x2A, 14), ("Tab", 0x2B, 15),
            ("Space", 0x2C, 57), ("Minus", 0x2D, 12), ("Equal", 0x2E, 13),
            ("BracketLeft", 0x2F, 26), ("BracketRight", 0x30, 27), ("Backslash", 0x31, 43),
            ("Semicolon", 0x33, 39), ("Quote", 0x34, 40), ("Backquote", 0x35, 41),
            ("Comma", 0x36, 51), ("Period", 0x37, 52), ("Slash", 0x38, 53),
            ("CapsLock", 0x39, 58),
            ("PrintScreen", 0x46, 99), ("ScrollLock", 0x47, 70), ("Pause", 0x48, 119),
            ("Insert", 0x49, 110), ("Home", 0x4A, 102), ("PageUp", 0x4B, 104),
            ("Delete", 0x4C, 111),
            ("End", 0x4D, 107), ("PageDown", 0x4E, 109), ("ArrowRight", 0x4F, 106),
            ("ArrowLeft", 0x50, 105), ("ArrowDown", 0x51, 108), ("ArrowUp", 0x52, 103),
            ("NumLock", 0x53, 69), ("NumpadDivide", 0x54, 98), ("NumpadMultiply", 0x55, 55),
            ("NumpadSubtract", 0x56, 74), ("NumpadAdd", 0x57, 78), ("NumpadEnter", 0x58, 96),
            ("Numpad0", 0x62, 82), ("NumpadDecimal", 0x63, 83), ("IntlBackslash", 0x64, 86),
            ("ContextMenu", 0x65, 127), ("Power", 0x66, 116), ("NumpadEqual", 0x67, 117),
            ("AudioVolumeMute", 0x7F, 113), ("AudioVolumeUp", 0x80, 115),
            ("AudioVolumeDown", 0x81, 114),
            ("IntlRo", 0x87, 89), ("KanaMode", 0x88, 93), ("IntlYen", 0x89, 124),
            ("Convert", 0x8A, 92), ("NonConvert", 0x8B, 94),
            ("ControlLeft", 0xE0, 29), ("ShiftLeft", 0xE1, 42), ("AltLeft", 0xE2, 56),
            ("MetaLeft", 0xE3, 125), ("ControlRight", 0xE4, 97), ("ShiftRight", 0xE5, 54),
            ("AltRight", 0xE6, 100), ("MetaRight", 0xE7, 126),
        )
    )  # fmt: skip
    return keys


KEYS: dict[str, Key] = {key.name: key for key in _table()}
KEYS_BY_EVDEV: dict[int, Key] = {key.evdev: key for key in KEYS.values()}

# Mouse buttons: bit in the report's button byte, and evdev code. "up"/"down" are the
# side buttons (back/forward), as PiKVM names them.
MOUSE_BUTTONS: dict[str, tuple[int, int]] = {
    "left": (0x01, 0x110),
    "right": (0x02, 0x111),
    "middle": (0x04, 0x112),
    "up": (0x08, 0x116),
    "down": (0x10, 0x115),
}
MOUSE_BUTTONS_BY_EVDEV: dict[int, str] = {
    evdev: name for (name, (_, evdev)) in MOUSE_BUTTONS.items()
}

# The keyboard LED output report (one byte, host to device): the lock key each bit shows.
LOCK_LEDS: dict[str, int] = {"NumLock": 0x01, "CapsLock": 0x02, "ScrollLock": 0x04}
