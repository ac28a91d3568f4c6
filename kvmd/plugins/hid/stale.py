# SPDX-License-Identifier: GPL-3.0-or-later
"""Entries of PiKVM's/QEMU's keymap files that today's xkb-data no longer has.

qemu-keymap generated the files from the xkb-data of its day; xkb-data has moved a few
keys since (Debian 12's 2.35.1). Typed as the file says, these would come out as
something else on a Linux target, so they are not used, and their characters are typed
through another key the file lists, composed, or reported as skipped. Keyed by the XKB
(layout, variant) a file names in its header; an entry is "keysym scancode level" (level
1 = Shift, 2 = AltGr, 3 = both). tests/unit/plugins/hid/test_layouts_xkb.py checks this
list against libxkbcommon, entry by entry.
"""

# Moves most layouts share (their AltGr levels come from xkb-data's latin(type4)).
_STROKE_ON_W = frozenset(["Lstroke 0x11 3", "lstroke 0x11 2"])
_QUOTES_ON_V_B = frozenset(
    [
        "leftdoublequotemark 0x2f 2",
        "leftsinglequotemark 0x2f 3",
        "rightdoublequotemark 0x30 2",
        "rightsinglequotemark 0x30 3",
    ]
)
_SECTION_ON_S = frozenset(["section 0x1f 3"])
_CONNECTOR_ON_COMMA = frozenset(["horizconnector 0x33 2"])
_BARS_ON_ISO_KEY = frozenset(["bar 0x56 2", "brokenbar 0x56 3"])

STALE: dict[tuple[str, str], frozenset[str]] = {
    ("be", ""): frozenset(_STROKE_ON_W | _QUOTES_ON_V_B | _SECTION_ON_S | _CONNECTOR_ON_COMMA),
    ("br", ""): frozenset(
        _QUOTES_ON_V_B
        | _SECTION_ON_S
        | _CONNECTOR_ON_COMMA
        | {"EuroSign 0x12 2", "masculine 0x56 2"}
    ),
    ("ch", ""): frozenset(_STROKE_ON_W | _QUOTES_ON_V_B | _SECTION_ON_S | _CONNECTOR_ON_COMMA),
    ("ch", "fr"): frozenset(_STROKE_ON_W | _QUOTES_ON_V_B | _SECTION_ON_S | _CONNECTOR_ON_COMMA),
    ("cz", ""): frozenset(
        _SECTION_ON_S
        | {"Lstroke 0x11 3", "leftsinglequotemark 0x2f 3", "rightsinglequotemark 0x30 3"}
    ),
    ("de", "nodeadkeys"): frozenset(_STROKE_ON_W),
    ("dk", ""): frozenset(_STROKE_ON_W | _QUOTES_ON_V_B | _SECTION_ON_S),
    ("es", ""): frozenset(
        _STROKE_ON_W
        | _QUOTES_ON_V_B
        | _SECTION_ON_S
        | _CONNECTOR_ON_COMMA
        | {"dead_tilde 0x0d 2", "asciitilde 0x0d 3", "asciitilde 0x27 2"}
    ),
    ("et", ""): frozenset(_BARS_ON_ISO_KEY),
    ("fo", ""): frozenset(_STROKE_ON_W | _QUOTES_ON_V_B | _SECTION_ON_S),
    ("fr", "dvorak"): frozenset(
        {
            "plusminus 0x03 2",
            "onequarter 0x04 2",
            "onehalf 0x05 2",
            "threequarters 0x06 2",
            "grave 0x09 2",
            "ae 0x10 2",
            "AE 0x10 3",
            "dollar 0x11 2",
            "Eacute 0x12 2",
            "EuroSign 0x13 2",
            "degree 0x14 2",
            "ccedilla 0x17 2",
            "Ccedilla 0x17 3",
            "mu 0x18 2",
            "ograve 0x1e 2",
            "Ograve 0x1e 3",
            "agrave 0x1f 2",
            "Agrave 0x1f 3",
            "ugrave 0x20 2",
            "Ugrave 0x20 3",
            "egrave 0x21 2",
            "Egrave 0x21 3",
            "guillemotleft 0x24 2",
            "guillemotright 0x26 2",
            "oe 0x2c 2",
            "OE 0x2c 3",
            "braceleft 0x2d 2",
            "braceright 0x2e 2",
            "igrave 0x2f 2",
            "Igrave 0x2f 3",
            "sterling 0x30 2",
            "masculine 0x32 2",
            "section 0x34 2",
            "Agrave 0x56 2",
            "Ccedilla 0x56 3",
        }
    ),
    ("fr", "nodeadkeys"): frozenset(_QUOTES_ON_V_B | _SECTION_ON_S | _CONNECTOR_ON_COMMA),
    ("gb", ""): frozenset(_STROKE_ON_W | _QUOTES_ON_V_B | _SECTION_ON_S | _CONNECTOR_ON_COMMA),
    ("hr", ""): frozenset({"leftdoublequotemark 0x20 2", "asciicircum 0x32 2"}),
    ("hu", ""): frozenset(
        _SECTION_ON_S
        | {
            "Lstroke 0x11 3",
            "dead_caron 0x28 3",
            "leftsinglequotemark 0x2f 3",
            "rightsinglequotemark 0x30 3",
        }
    ),
    ("is", ""): frozenset(
        _STROKE_ON_W
        | _QUOTES_ON_V_B
        | _SECTION_ON_S
        | _CONNECTOR_ON_COMMA
        | {"thorn 0x19 2", "THORN 0x19 3"}
    ),
    ("it", ""): frozenset(_STROKE_ON_W | _SECTION_ON_S),
    ("jp", ""): frozenset(_BARS_ON_ISO_KEY),
    ("lt", ""): frozenset(_STROKE_ON_W | _QUOTES_ON_V_B | _SECTION_ON_S | _CONNECTOR_ON_COMMA),
    ("lv", ""): frozenset(_CONNECTOR_ON_COMMA),
    ("mk", ""): frozenset(_BARS_ON_ISO_KEY),
    ("nl", ""): frozenset(_STROKE_ON_W | _SECTION_ON_S),
    ("no", ""): frozenset(_STROKE_ON_W | _QUOTES_ON_V_B | _SECTION_ON_S),
    ("pt", ""): frozenset(_STROKE_ON_W | _QUOTES_ON_V_B | _SECTION_ON_S | _CONNECTOR_ON_COMMA),
    ("ru", ""): frozenset(_BARS_ON_ISO_KEY | {"U20BD 0x09 2"}),
    ("se", ""): frozenset({"acute 0x0d 0", "grave 0x0d 1"}),
    ("si", ""): frozenset(
        _SECTION_ON_S
        | _CONNECTOR_ON_COMMA
        | {
            "y 0x15 0",
            "Y 0x15 1",
            "z 0x2c 0",
            "Z 0x2c 1",
            "asciitilde 0x02 2",
            "dead_tilde 0x02 3",
            "asciicircum 0x04 2",
            "dead_circumflex 0x04 3",
            "degree 0x06 2",
            "dead_abovering 0x06 3",
            "grave 0x08 2",
            "dead_grave 0x08 3",
            "ssharp 0x1f 2",
            "eth 0x20 2",
            "ETH 0x20 3",
            "Lstroke 0x26 2",
            "dead_cedilla 0x29 0",
            "notsign 0x29 2",
            "guillemotleft 0x2c 2",
            "guillemotright 0x2d 2",
            "periodcentered 0x34 2",
            "dead_belowdot 0x35 2",
        }
    ),
    ("th", ""): frozenset(_BARS_ON_ISO_KEY),
    ("tr", ""): frozenset(_QUOTES_ON_V_B | {"section 0x1f 2"}),
    ("us", ""): frozenset(_BARS_ON_ISO_KEY),
}
