# SPDX-License-Identifier: GPL-3.0-or-later
import io
import random
import struct
import zlib

import pytest
from PIL import Image, ImageDraw

from kvmd.vnc import encodings
from kvmd.vnc.encodings import PixelFormat


def fmt(bpp, depth, big_endian, maxes, shifts):
    return PixelFormat(bpp, depth, big_endian, True, *maxes, *shifts)


FORMATS = {
    "server": encodings.SERVER_FORMAT,
    "be32-r16g8b0": fmt(32, 24, True, (255, 255, 255), (16, 8, 0)),
    "le32-r0g8b16": fmt(32, 24, False, (255, 255, 255), (0, 8, 16)),
    "be32-r0g8b16": fmt(32, 24, True, (255, 255, 255), (0, 8, 16)),
    "le32-r24g16b8": fmt(32, 24, False, (255, 255, 255), (24, 16, 8)),
    "be32-r24g16b8": fmt(32, 24, True, (255, 255, 255), (24, 16, 8)),
    "le32-g0r8b16": fmt(32, 24, False, (255, 255, 255), (8, 0, 16)),
    "le32-r10g10b10": fmt(32, 30, False, (1023, 1023, 1023), (20, 10, 0)),
    "le16-rgb565": fmt(16, 16, False, (31, 63, 31), (11, 5, 0)),
    "be16-rgb565": fmt(16, 16, True, (31, 63, 31), (11, 5, 0)),
    "le16-rgb555": fmt(16, 15, False, (31, 31, 31), (10, 5, 0)),
    "bgr233": fmt(8, 8, False, (7, 7, 3), (0, 3, 6)),
}


def reference_pixel(rgb, f):
    """One pixel, computed the slow obvious way from RFC 6143 §7.4."""
    value = 0
    for channel, max_, shift in zip(
        rgb,
        (f.red_max, f.green_max, f.blue_max),
        (f.red_shift, f.green_shift, f.blue_shift),
        strict=True,
    ):
        value |= round(channel * max_ / 255) << shift
    return value.to_bytes(f.bits_per_pixel // 8, "big" if f.big_endian else "little")


def reference_convert(rgb, f):
    return b"".join(reference_pixel(rgb[i : i + 3], f) for i in range(0, len(rgb), 3))


def distinct_picture(width=7, height=5):
    rnd = random.Random(7)  # noqa: S311 -- a fixed picture, the same on every run
    corners = [(0, 0, 0), (255, 255, 255), (255, 0, 0), (0, 255, 0), (0, 0, 255), (128, 127, 1)]
    pixels = corners + [
        (rnd.randrange(256), rnd.randrange(256), rnd.randrange(256))
        for _ in range(width * height - len(corners))
    ]
    return bytes(c for pixel in pixels for c in pixel), width, height


SERVER_BYTES = bytes.fromhex("20 18 00 01 00 ff 00 ff 00 ff 10 08 00 00 00 00")


def test_server_format_bytes():
    assert encodings.SERVER_FORMAT.pack() == SERVER_BYTES
    assert PixelFormat.parse(SERVER_BYTES) == encodings.SERVER_FORMAT


@pytest.mark.parametrize("name", FORMATS)
def test_pixel_format_round_trip(name):
    f = FORMATS[name]
    data = f.pack()
    assert len(data) == 16
    assert data[13:] == b"\x00\x00\x00"
    assert PixelFormat.parse(data) == f


def test_pixel_format_parse_fields():
    data = bytes.fromhex("10 10 01 01 00 1f 00 3f 00 1f 0b 05 00 00 00 00")
    assert PixelFormat.parse(data) == FORMATS["be16-rgb565"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("18 18 00 01 00 ff 00 ff 00 ff 10 08 00 000000", "bits-per-pixel 24"),
        ("08 08 00 00 00 07 00 07 00 03 00 03 06 000000", "Colour-map"),
        ("20 18 00 01 00 00 00 ff 00 ff 10 08 00 000000", "red maximum is 0"),
        ("10 10 00 01 00 1f 00 3f 00 1f 0c 05 00 000000", "red channel .* does not fit"),
        ("08 08 00 01 00 07 00 07 00 07 00 03 06 000000", "blue channel .* does not fit"),
        ("20 18 00 01 00 ff 00 ff 00 ff 10 0c 00 000000", "green channel overlaps"),
        ("20 18 00 01 00 ff 00 ff 00 ff 10 08 00 0000", "16 bytes"),
    ],
)
def test_bad_pixel_formats(data, message):
    with pytest.raises(ValueError, match=message):
        PixelFormat.parse(bytes.fromhex(data))


@pytest.mark.parametrize("name", FORMATS)
def test_convert_matches_per_pixel_reference(name):
    f = FORMATS[name]
    rgb, width, height = distinct_picture()
    expected = reference_convert(rgb, f)
    assert encodings.convert(rgb, width, height, f) == expected
    assert encodings.raw(rgb, width, height, f) == expected
    # The lookup-table path, which the Pillow raw modes stand in for, agrees as well.
    everything = tuple(range(f.bits_per_pixel // 8))
    image = Image.frombytes("RGB", (width, height), rgb)
    assert encodings._pack_generic(image, f, everything) == expected


def test_convert_server_format_exact_bytes():
    rgb = bytes([0x11, 0x22, 0x33, 0xFF, 0x00, 0x80])
    assert encodings.convert(rgb, 2, 1, encodings.SERVER_FORMAT) == bytes.fromhex(
        "33 22 11 00 80 00 ff 00"
    )


def test_convert_rgb565_exact_bytes():
    # White, pure red, pure green: 0xffff, 0xf800, 0x07e0.
    rgb = bytes([255, 255, 255, 255, 0, 0, 0, 255, 0])
    assert encodings.convert(rgb, 3, 1, FORMATS["le16-rgb565"]) == bytes.fromhex("ffff 00f8 e007")
    assert encodings.convert(rgb, 3, 1, FORMATS["be16-rgb565"]) == bytes.fromhex("ffff f800 07e0")


def test_convert_rejects_wrong_size():
    with pytest.raises(ValueError, match="not a 2x2 RGB picture"):
        encodings.convert(bytes(11), 2, 2, encodings.SERVER_FORMAT)


@pytest.mark.parametrize(
    ("length", "prefix"),
    [
        (0, "9f 00"),
        (127, "9f 7f"),
        (128, "9f 80 01"),
        (16383, "9f ff 7f"),
        (16384, "9f 80 80 01"),
        (1_000_000, "9f c0 84 3d"),
        (4_194_303, "9f ff ff ff"),
    ],
)
def test_tight_jpeg_compact_length(length, prefix):
    jpeg = b"\xab" * length
    header = bytes.fromhex(prefix)
    assert encodings.tight_jpeg(jpeg) == header + jpeg


def test_tight_jpeg_too_long():
    with pytest.raises(ValueError, match="too long"):
        encodings.tight_jpeg(bytes(4_194_304))


def test_headers_and_pseudo_rectangles():
    assert encodings.update_header(3) == bytes.fromhex("00 00 0003")
    assert encodings.rect_header(1, 2, 640, 480, encodings.ZRLE) == bytes.fromhex(
        "0001 0002 0280 01e0 00000010"
    )
    assert encodings.desktop_size(1920, 1080) == bytes.fromhex("0000 0000 0780 0438 ffffff21")
    assert encodings.desktop_name("Pi ü") == bytes.fromhex(
        "0000 0000 0000 0000 fffffecd 00000005 50 69 20 c3 bc"
    )
    assert encodings.led_state(scroll=False, num=True, caps=True) == bytes.fromhex(
        "0000 0000 0000 0000 fffffefb 06"
    )
    assert encodings.led_state(scroll=True, num=False, caps=False)[-1] == 1


def test_encoding_numbers():
    assert (encodings.RAW, encodings.COPYRECT, encodings.TIGHT, encodings.ZRLE) == (0, 1, 7, 16)
    assert encodings.JPEG_QUALITY_HIGH - encodings.JPEG_QUALITY_LOW == 9
    assert (encodings.EXT_KEY_EVENT, encodings.EXT_MOUSE_BUTTONS) == (-258, -316)
    assert (encodings.CONTINUOUS_UPDATES, encodings.OPEN_H264) == (-313, 50)


def make_jpeg(image, fmt="JPEG"):
    buf = io.BytesIO()
    image.save(buf, fmt)
    return buf.getvalue()


def test_decode_jpeg():
    rgb, width, height = encodings.decode_jpeg(make_jpeg(Image.new("RGB", (40, 30), (200, 30, 60))))
    assert (width, height, len(rgb)) == (40, 30, 40 * 30 * 3)
    for i in range(0, len(rgb), 3):
        assert all(abs(a - b) <= 8 for a, b in zip(rgb[i : i + 3], (200, 30, 60), strict=True))


def test_decode_grey_jpeg_gives_rgb():
    rgb, width, height = encodings.decode_jpeg(make_jpeg(Image.new("L", (8, 8), 100)))
    assert (width, height, len(rgb)) == (8, 8, 8 * 8 * 3)


@pytest.mark.parametrize(
    "data",
    [
        b"not a jpeg at all",
        b"",
        make_jpeg(Image.new("RGB", (64, 64), (1, 2, 3)))[:200],
        make_jpeg(Image.new("RGB", (4, 4)), "PNG"),
    ],
)
def test_decode_jpeg_garbage(data):
    with pytest.raises(ValueError, match="Broken JPEG"):
        encodings.decode_jpeg(data)


class ZrleDecoder:
    """An independent ZRLE reader (RFC 6143 §7.7.6) for the subencodings the server sends."""

    def __init__(self):
        self._zlib = zlib.decompressobj()
        self.subencodings = []

    @staticmethod
    def cpixel_layout(f):
        """(CPIXEL size, the zero bytes that make a pixel of it: before, after)."""
        used = f.red_max << f.red_shift | f.green_max << f.green_shift
        used |= f.blue_max << f.blue_shift
        if f.true_colour and f.bits_per_pixel == 32 and f.depth <= 24:
            if used < 1 << 24:  # the least significant three bytes
                return 3, (b"\x00", b"") if f.big_endian else (b"", b"\x00")
            if used & 0xFF == 0:  # the most significant three bytes
                return 3, (b"", b"\x00") if f.big_endian else (b"\x00", b"")
        return f.bits_per_pixel // 8, (b"", b"")

    def decode(self, body, width, height, f):
        (length,) = struct.unpack(">I", body[:4])
        assert len(body) == 4 + length
        stream = io.BytesIO(self._zlib.decompress(body[4:]))
        size, (before, after) = self.cpixel_layout(f)
        pixel_size = f.bits_per_pixel // 8

        def cpixels(count):
            data = stream.read(count * size)
            assert len(data) == count * size
            return [before + data[i : i + size] + after for i in range(0, len(data), size)]

        rows = [[b""] * width for _ in range(height)]
        for ty in range(0, height, 64):
            for tx in range(0, width, 64):
                tw, th = min(64, width - tx), min(64, height - ty)
                subencoding = stream.read(1)[0]
                self.subencodings.append(subencoding)
                if subencoding == 0:
                    pixels = cpixels(tw * th)
                elif subencoding == 1:
                    pixels = cpixels(1) * (tw * th)
                else:
                    pytest.fail(f"Unexpected subencoding {subencoding}")
                for i, pixel in enumerate(pixels):
                    assert len(pixel) == pixel_size
                    rows[ty + i // tw][tx + i % tw] = pixel
        assert stream.read() == b""
        return b"".join(b"".join(row) for row in rows)


def zrle_picture(seed, width=130, height=70):
    """Flat areas (solid tiles, including the narrow right and short bottom ones) and noise."""
    image = Image.new("RGB", (width, height), (20, 90, 200))
    draw = ImageDraw.Draw(image)
    draw.rectangle((64, 0, 127, 63), fill=(250, 250, 250))
    rnd = random.Random(seed)  # noqa: S311 -- a fixed picture per seed
    for y in range(min(5, height - 1), min(60, height)):
        for x in range(3, min(50, width)):
            image.putpixel((x, y), (rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)))
    draw.text((70, 66), "kvmd", fill=(0, 0, 0))
    return image.tobytes()


@pytest.mark.parametrize(
    "name", ["server", "le16-rgb565", "be32-r16g8b0", "le32-r24g16b8", "le32-r10g10b10", "bgr233"]
)
def test_zrle_two_rectangles_on_one_stream(name):
    f = FORMATS[name]
    encoder = encodings.ZrleEncoder()
    decoder = ZrleDecoder()
    for seed, (width, height) in [(1, (130, 70)), (2, (130, 70)), (3, (5, 3))]:
        rgb = zrle_picture(seed, width, height)
        body = encoder.encode(rgb, width, height, f)
        assert decoder.decode(body, width, height, f) == encodings.convert(rgb, width, height, f)
    assert set(decoder.subencodings) == {0, 1}


def test_zrle_cpixel_sizes():
    assert ZrleDecoder.cpixel_layout(encodings.SERVER_FORMAT)[0] == 3
    assert encodings._cpixel_positions(encodings.SERVER_FORMAT) == (0, 1, 2)
    assert encodings._cpixel_positions(FORMATS["be32-r16g8b0"]) == (1, 2, 3)
    assert encodings._cpixel_positions(FORMATS["le32-r24g16b8"]) == (1, 2, 3)
    assert encodings._cpixel_positions(FORMATS["be32-r24g16b8"]) == (0, 1, 2)
    assert encodings._cpixel_positions(FORMATS["le32-r10g10b10"]) == (0, 1, 2, 3)
    assert encodings._cpixel_positions(FORMATS["le16-rgb565"]) == (0, 1)


def test_zrle_solid_frame_bytes():
    # One 64x64 tile of a single colour: subencoding 1 and a 3-byte CPIXEL (B, G, R).
    body = encodings.ZrleEncoder().encode(
        bytes([1, 2, 3]) * 64 * 64, 64, 64, encodings.SERVER_FORMAT
    )
    assert zlib.decompressobj().decompress(body[4:]) == bytes([1, 3, 2, 1])
