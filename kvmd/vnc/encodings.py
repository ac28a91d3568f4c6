# SPDX-License-Identifier: GPL-3.0-or-later
"""RFB (RFC 6143) framebuffer encodings: pixel formats, Raw, ZRLE, Tight JPEG, pseudo-rects.

Pure functions over bytes, no I/O. Pixels come in as packed 8-bit RGB (Pillow's "RGB" mode);
the common client formats are packed by Pillow's C raw encoders, any other true-colour format
by per-channel lookup tables applied with Pillow, so no per-pixel Python loop runs anywhere.
Pillow is imported when pixels are first needed: a daemon whose VNC clients all take Tight
JPEG never loads it.
"""

import dataclasses
import functools
import io
import struct
import zlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

RAW = 0
COPYRECT = 1
TIGHT = 7
ZRLE = 16
OPEN_H264 = 50
JPEG_QUALITY_LOW = -32
JPEG_QUALITY_HIGH = -23
DESKTOP_SIZE = -223
EXT_KEY_EVENT = -258
LED_STATE = -261
DESKTOP_NAME = -307
CONTINUOUS_UPDATES = -313
EXT_MOUSE_BUTTONS = -316

_PIXEL_FORMAT = struct.Struct(">BBBBHHHBBB3x")
_RECT_HEADER = struct.Struct(">HHHHi")

# Tight's compact length has 7+7+8 bits.
_TIGHT_MAX_LENGTH = (1 << 22) - 1
# Tight compression-control byte: type 1001 (JPEG) in the high nibble, and the low nibble's
# "reset zlib stream 0..3" bits set, as PiKVM's kvmd-vnc sends it.
_TIGHT_JPEG_CONTROL = 0x9F

_ZRLE_TILE = 64
_ZRLE_RAW = 0
_ZRLE_SOLID = 1

# Layouts (one letter per byte in memory order) that Pillow packs from "RGB" in one C pass.
_PILLOW_RAW_MODES = frozenset({"RGB", "BGR", "RGBX", "XRGB", "BGRX", "XBGR"})


@dataclasses.dataclass(frozen=True, slots=True)
class PixelFormat:
    bits_per_pixel: int
    depth: int
    big_endian: bool
    true_colour: bool
    red_max: int
    green_max: int
    blue_max: int
    red_shift: int
    green_shift: int
    blue_shift: int

    @classmethod
    def parse(cls, data: bytes) -> "PixelFormat":
        if len(data) != _PIXEL_FORMAT.size:
            raise ValueError(f"PIXEL_FORMAT is {_PIXEL_FORMAT.size} bytes, got {len(data)}")
        bpp, depth, big_endian, true_colour, *rest = _PIXEL_FORMAT.unpack(data)
        fmt = cls(bpp, depth, bool(big_endian), bool(true_colour), *rest)
        fmt.validate()
        return fmt

    def validate(self) -> None:
        if self.bits_per_pixel not in (8, 16, 32):
            raise ValueError(f"Unsupported bits-per-pixel {self.bits_per_pixel}: not 8, 16 or 32")
        if not self.true_colour:
            raise ValueError("Colour-map pixel formats are not supported, only true colour")
        used = 0
        for name, max_, shift in self.channels():
            if max_ == 0:
                raise ValueError(f"The {name} maximum is 0")
            bits = max_ << shift
            if bits >> self.bits_per_pixel:
                raise ValueError(
                    f"The {name} channel (max {max_}, shift {shift})"
                    f" does not fit in {self.bits_per_pixel} bits"
                )
            if bits & used:
                raise ValueError(f"The {name} channel overlaps another channel")
            used |= bits

    def channels(self) -> tuple[tuple[str, int, int], ...]:
        return (
            ("red", self.red_max, self.red_shift),
            ("green", self.green_max, self.green_shift),
            ("blue", self.blue_max, self.blue_shift),
        )

    def pack(self) -> bytes:
        return _PIXEL_FORMAT.pack(
            self.bits_per_pixel,
            self.depth,
            self.big_endian,
            self.true_colour,
            self.red_max,
            self.green_max,
            self.blue_max,
            self.red_shift,
            self.green_shift,
            self.blue_shift,
        )


SERVER_FORMAT = PixelFormat(
    bits_per_pixel=32,
    depth=24,
    big_endian=False,
    true_colour=True,
    red_max=255,
    green_max=255,
    blue_max=255,
    red_shift=16,
    green_shift=8,
    blue_shift=0,
)


def _byte_offsets(fmt: PixelFormat) -> tuple[int, ...]:
    """The bit offset in the pixel value of each byte of the pixel, in memory order."""
    count = fmt.bits_per_pixel // 8
    if fmt.big_endian:
        return tuple(8 * (count - 1 - index) for index in range(count))
    return tuple(8 * index for index in range(count))


def _cpixel_positions(fmt: PixelFormat) -> tuple[int, ...]:
    """The bytes of a pixel that make ZRLE's CPIXEL (RFC 6143 §7.7.6), in memory order."""
    offsets = _byte_offsets(fmt)
    everything = tuple(range(len(offsets)))
    if fmt.bits_per_pixel != 32 or fmt.depth > 24:
        return everything
    used = 0
    for _, max_, shift in fmt.channels():
        used |= max_ << shift
    if used < (1 << 24):
        dropped = 24
    elif used & 0xFF == 0:
        dropped = 0
    else:
        return everything
    return tuple(pos for pos in everything if offsets[pos] != dropped)


def _scale(value: int, max_: int) -> int:
    # Rounded, so that 255 maps to max_ and mid-tones land on the nearest level.
    return (value * max_ + 127) // 255


@functools.lru_cache(maxsize=64)
def _layout(fmt: PixelFormat, positions: tuple[int, ...]) -> str | None:
    """Letters R/G/B/X for the given bytes if every channel is exactly one of them, else None."""
    offsets = _byte_offsets(fmt)
    letters = []
    for pos in positions:
        letter = "X"
        for name, max_, shift in fmt.channels():
            if max_ == 255 and shift == offsets[pos]:
                letter = name[0].upper()
            elif (max_ << shift) >> offsets[pos] & 0xFF:
                return None
        letters.append(letter)
    return "".join(letters)


@functools.lru_cache(maxsize=64)
def _luts(fmt: PixelFormat, positions: tuple[int, ...]) -> tuple[tuple[list[int], ...], ...]:
    """For each output byte, the lookup tables of the (red, green, blue) contributions to it."""
    offsets = _byte_offsets(fmt)
    return tuple(
        tuple(
            [(_scale(value, max_) << shift >> offsets[pos]) & 0xFF for value in range(256)]
            for _, max_, shift in fmt.channels()
        )
        for pos in positions
    )


def _pack_generic(image: "Image.Image", fmt: PixelFormat, positions: tuple[int, ...]) -> bytes:
    from PIL import Image, ImageChops  # noqa: PLC0415 -- see the module's docstring

    bands = image.split()
    out = []
    for luts in _luts(fmt, positions):
        parts = [band.point(lut) for band, lut in zip(bands, luts, strict=True) if any(lut)]
        byte = parts[0] if parts else Image.new("L", image.size, 0)
        for part in parts[1:]:
            # The channels' bits never overlap (PixelFormat.validate), so a sum is an OR.
            byte = ImageChops.add(byte, part)
        out.append(byte)
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[len(out)]
    return Image.merge(mode, out).tobytes("raw", mode)


def _pack(image: "Image.Image", fmt: PixelFormat, positions: tuple[int, ...]) -> bytes:
    layout = _layout(fmt, positions)
    if layout not in _PILLOW_RAW_MODES:
        return _pack_generic(image, fmt, positions)
    data = image.tobytes("raw", layout)
    if layout == "RGBX":
        # Pillow copies its internal padding (0xFF) here; the other modes write 0 like the
        # generic path, so clear it to send the same bytes whichever way a format is packed.
        buf = bytearray(data)
        buf[3::4] = bytes(len(buf) // 4)
        data = bytes(buf)
    return data


def _image(rgb: bytes, width: int, height: int) -> "Image.Image":
    from PIL import Image  # noqa: PLC0415 -- see the module's docstring

    if width <= 0 or height <= 0 or len(rgb) != width * height * 3:
        raise ValueError(f"{len(rgb)} bytes are not a {width}x{height} RGB picture")
    return Image.frombuffer("RGB", (width, height), rgb, "raw", "RGB", 0, 1)


def convert(rgb: bytes, width: int, height: int, fmt: PixelFormat) -> bytes:
    """Packed 8-bit RGB to pixels in the client's format."""
    return _pack(_image(rgb, width, height), fmt, tuple(range(fmt.bits_per_pixel // 8)))


def raw(rgb: bytes, width: int, height: int, fmt: PixelFormat) -> bytes:
    """The body of a Raw rectangle."""
    return convert(rgb, width, height, fmt)


def decode_jpeg(jpeg: bytes) -> tuple[bytes, int, int]:
    """A JPEG picture as packed 8-bit RGB, its width and its height."""
    from PIL import Image  # noqa: PLC0415 -- see the module's docstring

    try:
        with Image.open(io.BytesIO(jpeg), formats=["JPEG"]) as image:
            image.load()
            rgb = image.convert("RGB")
    except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ValueError(f"Broken JPEG: {exc}") from exc
    return rgb.tobytes(), rgb.width, rgb.height


def _tight_length(length: int) -> bytes:
    if length <= 0x7F:
        return bytes([length])
    if length <= 0x3FFF:
        return bytes([length & 0x7F | 0x80, length >> 7])
    if length <= _TIGHT_MAX_LENGTH:
        return bytes([length & 0x7F | 0x80, length >> 7 & 0x7F | 0x80, length >> 14])
    raise ValueError(f"{length} bytes are too long for Tight (at most {_TIGHT_MAX_LENGTH})")


def tight_jpeg(jpeg: bytes) -> bytes:
    """The body of a Tight rectangle carrying a JPEG as it is."""
    return bytes([_TIGHT_JPEG_CONTROL]) + _tight_length(len(jpeg)) + jpeg


def rect_header(x: int, y: int, w: int, h: int, encoding: int) -> bytes:
    return _RECT_HEADER.pack(x, y, w, h, encoding)


def update_header(count: int) -> bytes:
    """FramebufferUpdate (message type 0), padding, the number of rectangles."""
    return struct.pack(">BxH", 0, count)


def desktop_size(w: int, h: int) -> bytes:
    return rect_header(0, 0, w, h, DESKTOP_SIZE)


def desktop_name(name: str) -> bytes:
    encoded = name.encode("utf-8")
    return rect_header(0, 0, 0, 0, DESKTOP_NAME) + struct.pack(">I", len(encoded)) + encoded


def led_state(scroll: bool, num: bool, caps: bool) -> bytes:
    bits = int(scroll) | int(num) << 1 | int(caps) << 2
    return rect_header(0, 0, 0, 0, LED_STATE) + bytes([bits])


class ZrleEncoder:
    """ZRLE for one connection: its zlib stream lasts as long as the connection."""

    # Level 3: on a 1920x1080 desktop decoded from the streamer's JPEG (whose noise leaves few
    # solid tiles), zlib's default 6 took 66 ms for 517 KB where 3 took 34 ms for 491 KB.
    def __init__(self, level: int = 3) -> None:
        self._zlib = zlib.compressobj(level)

    def encode(self, rgb: bytes, width: int, height: int, fmt: PixelFormat) -> bytes:
        """The body of a ZRLE rectangle: u32 length, then zlib data up to a sync flush."""
        positions = _cpixel_positions(fmt)
        cpixels = _pack(_image(rgb, width, height), fmt, positions)
        size = len(positions)
        stride = width * size
        chunks = []
        for top in range(0, height, _ZRLE_TILE):
            bottom = min(top + _ZRLE_TILE, height)
            for left in range(0, stride, _ZRLE_TILE * size):
                right = min(left + _ZRLE_TILE * size, stride)
                tile = b"".join(
                    cpixels[row + left : row + right]
                    for row in range(top * stride, bottom * stride, stride)
                )
                first = tile[:size]
                if tile == first * (len(tile) // size):
                    chunks.append(bytes([_ZRLE_SOLID]) + first)
                else:
                    chunks.append(bytes([_ZRLE_RAW]) + tile)
        data = self._zlib.compress(b"".join(chunks)) + self._zlib.flush(zlib.Z_SYNC_FLUSH)
        return struct.pack(">I", len(data)) + data
