# SPDX-License-Identifier: GPL-3.0-or-later
import asyncio
import re
import socket

from kvmd import __version__
from tests.conftest import ADMIN, sample, sample_hw

ACCESS_LINE = re.compile(
    r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d kvmd\.service\] --- aiohttp\.access +INFO +--- "
    r"\[admin \(xhdr\) / 127\.0\.0\.1\] 'GET /api/atx\?probe=1 HTTP/1\.1' => 200; size=\d+ "
    r"--- referer='-'; user_agent='Python/[^']*'$"
)


async def test_info_default_is_pikvm_legacy_shape(client):
    response = await client.get("/api/info", headers=ADMIN)
    assert response.status == 200
    result = (await response.json())["result"]
    expected = sample("info.json")["result"]
    assert sorted(result) == sorted(expected)
    # PiKVM's {"enabled": true}, plus who asks and what they may do (SECURITY.md §3.4).
    assert result["auth"] == {
        "enabled": True,
        "user": "admin",
        "permissions": [
            "state",
            "video",
            "hid",
            "atx",
            "msd",
            "gpio",
            "streamer",
            "logs",
            "share",
            "admin",
        ],
    }
    assert result["hw"] == sample_hw("info.json")
    assert result["fan"] == expected["fan"]
    assert result["extras"] == expected["extras"]
    assert result["meta"] == {"kvm": {}, "server": {"host": socket.gethostname()}}
    assert result["system"]["kvmd"] == {"version": __version__}
    assert sorted(result["system"]) == ["kernel", "kvmd", "streamer"]


async def test_info_fields(client):
    result = (await (await client.get("/api/info?fields=system,hw", headers=ADMIN)).json())[
        "result"
    ]
    assert sorted(result) == ["hw", "system"]
    assert result["hw"] == sample_hw("info_fields_system_hw.json")
    one = (await (await client.get("/api/info?fields=AUTH", headers=ADMIN)).json())["result"]
    assert one["auth"]["enabled"] is True
    assert one["auth"]["user"] == "admin"


async def test_info_current_shape(client):
    result = (await (await client.get("/api/info?legacy=0", headers=ADMIN)).json())["result"]
    assert sorted(result) == ["auth", "extras", "fan", "health", "meta", "node", "system", "uptime"]
    assert result["system"]["platform"]["model"] == "test_model"
    assert result["health"]["temp"] == {"cpu": 36.511}
    assert result["node"] == {"host": socket.gethostname()}
    assert result["uptime"]["total"] >= 0


async def test_info2_is_the_current_shape_for_pikvm_pages(client):
    # PiKVM's index page asks `info2?fields=auth,node,meta,extras`, its VNC and IPMI pages
    # `info2` with no fields; a 404 there makes them retry every second forever.
    result = (await (await client.get("/api/info2", headers=ADMIN)).json())["result"]
    assert sorted(result) == ["auth", "extras", "fan", "health", "meta", "node", "system", "uptime"]
    assert result["system"]["platform"]["model"] == "test_model"
    index = await client.get("/api/info2?fields=auth,node,meta,extras", headers=ADMIN)
    assert index.status == 200
    body = (await index.json())["result"]
    assert sorted(body) == ["auth", "extras", "meta", "node"]
    assert body["auth"]["enabled"] is True
    assert body["node"] == {"host": socket.gethostname()}
    assert body["extras"]["vnc"]["path"] == "vnc"
    for query in ("fields=hw", "fields=bogus", "legacy=1&fields=hw"):
        response = await client.get(f"/api/info2?{query}", headers=ADMIN)
        assert response.status == 400
        assert (await response.json())["result"]["error"] == "ValidatorError"
    assert (await client.get("/api/info2")).status == 401


async def test_info_unknown_field_is_400(client):
    response = await client.get("/api/info?fields=system,bogus", headers=ADMIN)
    assert response.status == 400
    assert (await response.json())["result"] == {
        "error": "ValidatorError",
        "error_msg": "The argument 'bogus' is not a valid info field",
    }
    hw_current = await client.get("/api/info?fields=hw&legacy=0", headers=ADMIN)
    assert hw_current.status == 400


async def test_info_needs_auth(client):
    assert (await client.get("/api/info")).status == 401


async def test_log_has_access_lines_in_pikvm_format(client):
    await client.get("/api/atx?probe=1", headers=ADMIN)
    response = await client.get("/api/log?seek=3600", headers=ADMIN)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    lines = (await response.text()).split("\r\n")
    assert any(ACCESS_LINE.match(line) for line in lines), lines


async def test_secrets_never_reach_the_log(client):
    await client.get(
        "/api/atx?passwd=hunter2&token=t0ken", headers={**ADMIN, "X-KVMD-Passwd": "admin"}
    )
    await client.post("/api/auth/login", data={"user": "admin", "passwd": "admin"})
    text = await (await client.get("/api/log", headers=ADMIN)).text()
    assert "/api/atx?passwd=***&token=*** " in text
    assert "hunter2" not in text
    assert "t0ken" not in text
    assert "'POST /api/auth/login HTTP/1.1' => 200" in text
    assert "X-KVMD-Passwd" not in text


async def test_log_follow_streams_new_lines(client):
    response = await client.get("/api/log?follow=1&seek=1", headers=ADMIN)
    assert response.status == 200
    await client.get("/api/atx?probe=followed", headers=ADMIN)
    buffer = ""
    async with asyncio.timeout(5):
        while "probe=followed" not in buffer:
            buffer += (await response.content.readline()).decode()
    response.close()


async def test_log_bad_arguments_and_disabled(make_client, make_config, client):
    for path in ("/api/log?seek=-1", "/api/log?seek=" + "9" * 400, "/api/audit?seek=1" + "0" * 30):
        bad = await client.get(path, headers=ADMIN)
        assert bad.status == 400
        assert (await bad.json())["result"]["error"] == "ValidatorError"
    assert (await client.get("/api/audit?seek=10000000000", headers=ADMIN)).status == 200
    (disabled, _) = await make_client(make_config(kvmd={"log_reader": {"enabled": False}}))
    response = await disabled.get("/api/log", headers=ADMIN)
    assert response.status == 400
    assert await response.json() == {
        "ok": False,
        "result": {"error": "LogReaderDisabledError", "error_msg": "LogReader is disabled"},
    }
