# SPDX-License-Identifier: GPL-3.0-or-later
"""OCR with the real tesseract, reading the simulated target's screen."""

import pytest

from tests.conftest import ADMIN, SCREEN_TEXT, ocr_target, sample

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def ocr_client(make_client, make_config, tmp_path):
    config = make_config(kvmd=ocr_target(tmp_path))
    (client, _) = await make_client(config, loops=True)  # the streamer's loop runs it
    return client


async def test_ocr_state_matches_pikvm_sample(ocr_client):
    response = await ocr_client.get("/api/streamer/ocr", headers=ADMIN)
    assert await response.json() == sample("streamer_ocr.json")


async def test_ocr_reads_the_screen(ocr_client):
    response = await ocr_client.get("/api/streamer/snapshot?ocr=1", headers=ADMIN)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    assert SCREEN_TEXT in await response.text()
    # A box over the top stripe only (the moving bar, no text) reads no screen text.
    cropped = await ocr_client.get(
        "/api/streamer/snapshot?ocr=1&ocr_langs=eng&ocr_bottom=60", headers=ADMIN
    )
    assert "HELLO" not in await cropped.text()


async def test_ocr_bad_language(ocr_client):
    response = await ocr_client.get("/api/streamer/snapshot?ocr=1&ocr_langs=klingon", headers=ADMIN)
    assert response.status == 400
    assert (await response.json())["result"]["error"] == "ValidatorError"
