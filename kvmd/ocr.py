# SPDX-License-Identifier: GPL-3.0-or-later
"""OCR of snapshots with tesseract, run as a program so that nothing native loads into kvmd."""

import asyncio
import io
import logging

from kvmd.bus import Bus, Topic
from kvmd.config.schema import OcrConfig
from kvmd.errors import OperationError, ValidatorError
from kvmd.info.collect import run_command
from kvmd.plugins.streamer.base import OcrLangs, OcrState

logger = logging.getLogger(__name__)

# tesseract reads screen text much better at twice the size.
_UPSCALE = 2


class OcrError(OperationError):
    default_msg = "OCR is not available: tesseract is not installed"


class Ocr:
    def __init__(self, config: OcrConfig, bus: Bus) -> None:
        self._config = config
        self._bus = bus
        self._state = OcrState()

    async def start(self) -> None:
        """Find tesseract and its languages, and publish what was found."""
        listed = await run_command([*self._config.cmd, "--list-langs"])
        # The first line is a header; `osd` detects orientation, it is not a language.
        available = sorted(
            line.strip()
            for line in (listed or b"").decode(errors="replace").splitlines()[1:]
            if line.strip() and line.strip() != "osd"
        )
        default = [lang for lang in self._config.langs if lang in available]
        self._state = OcrState(
            enabled=bool(available), langs=OcrLangs(default=default, available=available)
        )
        if not self._state.enabled:
            logger.info("OCR is off: %s gave no languages", self._config.cmd[0])
        self._bus.publish(Topic.OCR, self._state)

    def state(self) -> OcrState:
        return self._state

    def check_langs(self, raw: str) -> list[str]:
        """The requested languages (comma separated), or the default ones for an empty string."""
        if not self._state.enabled:
            raise OcrError
        langs = [lang for lang in raw.replace(" ", ",").split(",") if lang]
        for lang in langs:
            if lang not in self._state.langs.available:
                raise ValidatorError(f"The argument {lang[:32]!r} is not a valid OCR language")
        return langs or self._state.langs.default

    async def recognize(self, jpeg: bytes, langs: list[str], box: tuple[int, int, int, int]) -> str:
        """The text in `box` (left, top, right, bottom; -1 = the edge) of the image."""
        png = await asyncio.to_thread(_prepare, jpeg, box)
        proc = await asyncio.create_subprocess_exec(
            *self._config.cmd,
            "stdin",
            "stdout",
            "-l",
            "+".join(langs),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            async with asyncio.timeout(self._config.timeout):
                (text, _) = await proc.communicate(png)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        if proc.returncode != 0:
            raise OcrError(f"tesseract failed with status {proc.returncode}")
        return text.decode(errors="replace")


def _prepare(jpeg: bytes, box: tuple[int, int, int, int]) -> bytes:
    from PIL import Image  # noqa: PLC0415 -- only OCR and previews need Pillow

    with Image.open(io.BytesIO(jpeg)) as image:
        (width, height) = image.size
        (left, top, right, bottom) = box
        crop = (
            min(max(left, 0), width),
            min(max(top, 0), height),
            width if right < 0 else min(right, width),
            height if bottom < 0 else min(bottom, height),
        )
        # An empty crop box is ignored: the whole frame is read.
        part = image.crop(crop) if crop[0] < crop[2] and crop[1] < crop[3] else image
        part = part.convert("L").resize((part.width * _UPSCALE, part.height * _UPSCALE))
        out = io.BytesIO()
        part.save(out, format="PNG")
        return out.getvalue()
