# SPDX-License-Identifier: GPL-3.0-or-later
"""Secret query parameters, `?apikey=` among them, are masked in the access log and the audit."""

import json

from tests.conftest import ADMIN

SECRETS = {
    "apikey": "s3cret-one",
    "api_key": "s3cret-two",
    "api-key": "s3cret-three",
    "APIKEY": "s3cret-four",
    "x_api_key": "s3cret-five",
}
QUERY = "&".join(f"{name}={value}" for (name, value) in SECRETS.items())


async def test_api_keys_in_a_query_are_masked(client):
    # atx.click is audited; ATX is off in the test config, so nothing is clicked.
    await client.post(f"/api/atx/click?button=power&{QUERY}&key=KeyA&keymap=de", headers=ADMIN)
    log = await (await client.get("/api/log", headers=ADMIN)).text()
    masked = "&".join(f"{name}=***" for name in SECRETS)
    assert f"'POST /api/atx/click?button=power&{masked}&key=KeyA&keymap=de HTTP/1.1'" in log
    audit = await (await client.get("/api/audit", headers=ADMIN)).text()
    (click,) = [json.loads(line) for line in audit.splitlines() if '"atx.click"' in line]
    assert click["args"] == {
        "button": "power",
        **dict.fromkeys(SECRETS, "***"),
        "key": "KeyA",
        "keymap": "de",
    }
    for text in (log, audit):
        for value in SECRETS.values():
            assert value not in text


async def test_header_sized_fields_are_cut_in_the_access_log(client):
    agent = "A" * 8000
    long_query = "x=" + "q" * 6000
    headers = {**ADMIN, "User-Agent": agent, "Referer": "R" * 8000, "X-Real-IP": "I" * 8000}
    assert (await client.get(f"/api/info?{long_query}", headers=headers)).status == 200
    log = await (await client.get("/api/log", headers=ADMIN)).text()
    (line,) = [x for x in log.splitlines() if "/api/info?x=" in x]
    assert len(line) < 1800
    assert f"user_agent='{'A' * 253}...'" in line
    assert f"referer='{'R' * 253}...'" in line
    assert f"'GET /api/info?x={'q' * (1024 - len('/api/info?x=') - 3)}... HTTP/1.1'" in line
