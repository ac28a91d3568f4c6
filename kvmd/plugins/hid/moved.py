# SPDX-License-Identifier: GPL-3.0-or-later
"""Keys of PiKVM's/QEMU's keymap files that today's xkb-data has moved.

qemu-keymap generated the files from the xkb-data of its day; xkb-data has changed a few
keys since (Debian 12's is 2.35.1): AltGr+W types a long s now, not ł, which moved to AltGr+L.
Typed as the file says, those characters would come out wrong on a Linux target, so the
loader reads such an entry as what xkb-data has on that key now ("" = nothing, as where a
layout lost its AltGr level); the character itself is typed through another key the file
lists, composed, or reported as skipped. Keyed by the XKB (layout, variant) a file names
in its header; an entry is "keysym scancode level" (level 1 = Shift, 2 = AltGr, 3 =
both) -> the keysym there now. tests/unit/plugins/hid/test_layouts_xkb.py checks the
table against libxkbcommon, entry by entry, and prints it anew when xkb-data changes.
"""

# Moves most layouts share (their AltGr levels come from xkb-data's latin(type4)).
_STROKE_ON_W = {"lstroke 0x11 2": "U017F", "Lstroke 0x11 3": "section"}
_QUOTES_ON_V_B = {
    "leftdoublequotemark 0x2f 2": "doublelowquotemark",
    "leftsinglequotemark 0x2f 3": "singlelowquotemark",
    "rightdoublequotemark 0x30 2": "leftdoublequotemark",
    "rightsinglequotemark 0x30 3": "leftsinglequotemark",
}
_SECTION_ON_S = {"section 0x1f 3": "U1E9E"}
_CONNECTOR_ON_COMMA = {"horizconnector 0x33 2": "U2022"}
_BARS_ON_ISO_KEY = {"bar 0x56 2": "", "brokenbar 0x56 3": ""}
MOVED: dict[tuple[str, str], dict[str, str]] = {
    ("be", ""): {**_STROKE_ON_W, **_QUOTES_ON_V_B, **_SECTION_ON_S, **_CONNECTOR_ON_COMMA},
    ("br", ""): {
        **_QUOTES_ON_V_B,
        **_SECTION_ON_S,
        **_CONNECTOR_ON_COMMA,
        "EuroSign 0x12 2": "degree",
        "masculine 0x56 2": "dead_caron",
    },
    ("ch", ""): {**_STROKE_ON_W, **_QUOTES_ON_V_B, **_SECTION_ON_S, **_CONNECTOR_ON_COMMA},
    ("ch", "fr"): {**_STROKE_ON_W, **_QUOTES_ON_V_B, **_SECTION_ON_S, **_CONNECTOR_ON_COMMA},
    ("cz", ""): {
        **_SECTION_ON_S,
        "Lstroke 0x11 3": "section",
        "leftsinglequotemark 0x2f 3": "singlelowquotemark",
        "rightsinglequotemark 0x30 3": "leftsinglequotemark",
    },
    ("de", "nodeadkeys"): {**_STROKE_ON_W},
    ("dk", ""): {**_STROKE_ON_W, **_QUOTES_ON_V_B, **_SECTION_ON_S},
    ("es", ""): {
        **_STROKE_ON_W,
        **_QUOTES_ON_V_B,
        **_SECTION_ON_S,
        **_CONNECTOR_ON_COMMA,
        "dead_tilde 0x0d 2": "dead_cedilla",
        "asciitilde 0x0d 3": "dead_ogonek",
        "asciitilde 0x27 2": "dead_tilde",
    },
    ("et", ""): {**_BARS_ON_ISO_KEY},
    ("fo", ""): {**_STROKE_ON_W, **_QUOTES_ON_V_B, **_SECTION_ON_S},
    ("fr", "dvorak"): {
        "plusminus 0x03 2": "",
        "onequarter 0x04 2": "",
        "onehalf 0x05 2": "",
        "threequarters 0x06 2": "",
        "grave 0x09 2": "",
        "ae 0x10 2": "",
        "AE 0x10 3": "",
        "dollar 0x11 2": "",
        "Eacute 0x12 2": "",
        "EuroSign 0x13 2": "",
        "degree 0x14 2": "",
        "ccedilla 0x17 2": "",
        "Ccedilla 0x17 3": "",
        "mu 0x18 2": "",
        "ograve 0x1e 2": "",
        "Ograve 0x1e 3": "",
        "agrave 0x1f 2": "",
        "Agrave 0x1f 3": "",
        "ugrave 0x20 2": "",
        "Ugrave 0x20 3": "",
        "egrave 0x21 2": "",
        "Egrave 0x21 3": "",
        "guillemotleft 0x24 2": "",
        "guillemotright 0x26 2": "",
        "oe 0x2c 2": "",
        "OE 0x2c 3": "",
        "braceleft 0x2d 2": "",
        "braceright 0x2e 2": "",
        "igrave 0x2f 2": "",
        "Igrave 0x2f 3": "",
        "sterling 0x30 2": "",
        "masculine 0x32 2": "",
        "section 0x34 2": "",
        "Agrave 0x56 2": "",
        "Ccedilla 0x56 3": "",
    },
    ("fr", "nodeadkeys"): {**_QUOTES_ON_V_B, **_SECTION_ON_S, **_CONNECTOR_ON_COMMA},
    ("gb", ""): {**_STROKE_ON_W, **_QUOTES_ON_V_B, **_SECTION_ON_S, **_CONNECTOR_ON_COMMA},
    ("hr", ""): {
        "leftdoublequotemark 0x20 2": "rightdoublequotemark",
        "asciicircum 0x32 2": "section",
    },
    ("hu", ""): {
        **_SECTION_ON_S,
        "Lstroke 0x11 3": "section",
        "dead_caron 0x28 3": "U1E9E",
        "leftsinglequotemark 0x2f 3": "singlelowquotemark",
        "rightsinglequotemark 0x30 3": "leftsinglequotemark",
    },
    ("is", ""): {
        **_STROKE_ON_W,
        **_QUOTES_ON_V_B,
        **_SECTION_ON_S,
        **_CONNECTOR_ON_COMMA,
        "thorn 0x19 2": "bar",
        "THORN 0x19 3": "Greek_pi",
    },
    ("it", ""): {**_STROKE_ON_W, **_SECTION_ON_S},
    ("jp", ""): {**_BARS_ON_ISO_KEY},
    ("lt", ""): {**_STROKE_ON_W, **_QUOTES_ON_V_B, **_SECTION_ON_S, **_CONNECTOR_ON_COMMA},
    ("lv", ""): {**_CONNECTOR_ON_COMMA},
    ("mk", ""): {**_BARS_ON_ISO_KEY},
    ("nl", ""): {**_STROKE_ON_W, **_SECTION_ON_S},
    ("no", ""): {**_STROKE_ON_W, **_QUOTES_ON_V_B, **_SECTION_ON_S},
    ("pt", ""): {**_STROKE_ON_W, **_QUOTES_ON_V_B, **_SECTION_ON_S, **_CONNECTOR_ON_COMMA},
    ("ru", ""): {**_BARS_ON_ISO_KEY, "U20BD 0x09 2": ""},
    ("se", ""): {"acute 0x0d 0": "dead_acute", "grave 0x0d 1": "dead_grave"},
    ("si", ""): {
        "y 0x15 0": "z",
        "Y 0x15 1": "Z",
        "z 0x2c 0": "y",
        "Z 0x2c 1": "Y",
        "asciitilde 0x02 2": "dead_tilde",
        "dead_tilde 0x02 3": "asciitilde",
        "asciicircum 0x04 2": "dead_circumflex",
        "dead_circumflex 0x04 3": "asciicircum",
        "degree 0x06 2": "dead_abovering",
        "dead_abovering 0x06 3": "degree",
        "grave 0x08 2": "dead_grave",
        "dead_grave 0x08 3": "grave",
        "ssharp 0x1f 2": "doublelowquotemark",
        "section 0x1f 3": "guillemotright",
        "eth 0x20 2": "leftdoublequotemark",
        "ETH 0x20 3": "guillemotleft",
        "Lstroke 0x26 2": "lstroke",
        "dead_cedilla 0x29 0": "cedilla",
        "notsign 0x29 2": "",
        "guillemotleft 0x2c 2": "leftsinglequotemark",
        "guillemotright 0x2d 2": "rightsinglequotemark",
        "horizconnector 0x33 2": "less",
        "periodcentered 0x34 2": "greater",
        "dead_belowdot 0x35 2": "emdash",
    },
    ("th", ""): {**_BARS_ON_ISO_KEY},
    ("tr", ""): {**_QUOTES_ON_V_B, "section 0x1f 2": "ssharp"},
    ("us", ""): {**_BARS_ON_ISO_KEY},
}
