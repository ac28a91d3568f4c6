# SPDX-License-Identifier: GPL-3.0-or-later
"""Snapshot thumbnails. Blocking (Pillow): call from a thread."""

import io


def make_preview(jpeg: bytes, max_width: int | None, max_height: int | None, quality: int) -> bytes:
    """A JPEG that fits the box with the aspect kept; no box means a fifth of the size."""
    # Imported here: Pillow costs several MB, and only previews need it.
    from PIL import Image  # noqa: PLC0415

    with Image.open(io.BytesIO(jpeg)) as image:
        (width, height) = image.size
        if max_width is None and max_height is None:
            box = (max(width // 5, 1), max(height // 5, 1))
        else:
            box = (max_width or width, max_height or height)
        if box[0] >= width and box[1] >= height:
            return jpeg
        image.thumbnail(box)
        out = io.BytesIO()
        image.convert("RGB").save(out, format="JPEG", quality=quality)
        return out.getvalue()
