# SPDX-License-Identifier: GPL-3.0-or-later
"""Roles and the view-only mode over HTTP and the websocket (SECURITY.md §3.2 to §3.6)."""

import asyncio

import aiohttp
import pytest
import yaml

from kvmd.auth.principal import Permission
from tests.api.test_hid import hid_client
from tests.api.test_ws import current_burst_done, read_until
from tests.authenv import write_users, xhdr
from tests.conftest import ADMIN
from tests.hidenv import wait_until

ALL = ["state", "video", "hid", "atx", "msd", "gpio", "streamer", "logs", "share", "admin"]


@pytest.fixture
async def client(make_client, make_config, tmp_path):
    write_users(tmp_path)
    (client, _) = await make_client(make_config())
    return client


async def check(client, user):
    response = await client.get("/api/auth/check", headers=xhdr(user))
    assert response.status == 200
    return (await response.json())["result"]


async def test_each_role_gets_its_permissions(client):
    assert (await check(client, "admin"))["permissions"] == ALL
    operator = await check(client, "operator")
    assert operator["roles"] == ["operator"]
    assert operator["permissions"] == [p for p in ALL if p not in ("logs", "admin")]
    assert (await check(client, "viewer"))["permissions"] == ["state", "video"]
    assert (await check(client, "monitor"))["permissions"] == ["state"]
    # A custom role: `atx` implies `state`, and nothing else.
    power = await check(client, "power")
    assert (power["roles"], power["permissions"]) == (["power-only"], ["state", "atx"])


async def test_viewer_reads_but_cannot_act(client):
    viewer = xhdr("viewer")
    assert (await client.get("/api/auth/check", headers=viewer)).status == 200
    info = await client.get("/api/info?fields=auth", headers=viewer)
    assert info.status == 200
    assert (await info.json())["result"]["auth"] == {
        "enabled": True,
        "user": "viewer",
        "permissions": ["state", "video"],
    }
    for path in ("/api/atx", "/api/hid", "/api/msd", "/api/gpio", "/api/streamer"):
        assert (await client.get(path, headers=viewer)).status == 200, path
    power = await client.post("/api/atx/power?action=on", headers=viewer)
    assert power.status == 403
    assert await power.json() == {
        "ok": False,
        "result": {"error": "PermissionDeniedError", "error_msg": "Permission 'atx' required"},
    }
    denied = {
        ("POST", "/api/atx/click?button=power"): "atx",
        ("POST", "/api/hid/events/send_key?key=KeyA"): "hid",
        ("POST", "/api/hid/print"): "hid",
        ("POST", "/api/hid/set_params?jiggler=1"): "hid",
        ("GET", "/api/msd/read?image=x"): "msd",
        ("POST", "/api/msd/remove?image=x"): "msd",
        ("POST", "/api/gpio/switch?channel=x&state=1"): "gpio",
        ("POST", "/api/streamer/set_params?quality=10"): "streamer",
        ("DELETE", "/api/streamer/snapshot"): "streamer",
        ("GET", "/api/log"): "logs",
        ("GET", "/api/audit"): "logs",
        ("GET", "/api/auth/users"): "admin",
        ("GET", "/api/auth/keys"): "admin",
        ("POST", "/api/redfish/v1/Systems/0/Actions/ComputerSystem.Reset"): "atx",
    }
    for (method, path), needed in denied.items():
        response = await client.request(method, path, headers=viewer)
        assert response.status == 403, path
        body = await response.json()
        assert body["result"]["error_msg"] == f"Permission '{needed}' required", path


async def test_require_guards_the_video_for_nginx(client):
    assert (await client.get("/api/auth/check?require=video", headers=xhdr("viewer"))).status == 200
    monitor = await client.get("/api/auth/check?require=video", headers=xhdr("monitor"))
    assert monitor.status == 403
    assert (await monitor.json())["result"]["error"] == "PermissionDeniedError"
    # Without `require` a monitor is still a valid principal: 200, never 403.
    assert (await check(client, "monitor"))["user"] == "monitor"
    assert (await client.get("/api/info", headers=xhdr("monitor"))).status == 200


async def test_default_role_and_disabled_users(make_client, make_config, tmp_path):
    write_users(tmp_path, users={"operator": {"roles": ["operator"]}, "viewer": {"disabled": True}})
    (client, _) = await make_client(make_config(kvmd={"auth": {"default_role": "monitor"}}))
    assert (await check(client, "power"))["permissions"] == ["state"]  # no entry: default role
    assert (await check(client, "power"))["roles"] == ["monitor"]
    disabled = await client.get("/api/auth/check", headers=xhdr("viewer"))
    assert disabled.status == 403


async def test_users_file_is_reread_when_it_changes(make_client, make_config, tmp_path):
    write_users(tmp_path)
    (client, deps) = await make_client(make_config())
    assert (await check(client, "operator"))["permissions"][-1] == "share"
    users = yaml.safe_load((tmp_path / "users.yaml").read_text())
    users["operator"] = {"roles": ["viewer"]}
    (tmp_path / "users.yaml").write_text(yaml.safe_dump(users))
    deps.auth.accounts.reload()
    assert (await check(client, "operator"))["permissions"] == ["state", "video"]
    # A broken file keeps the last good one in effect, rather than falling back to admin.
    (tmp_path / "users.yaml").write_text("operator: [unclosed\n")
    deps.auth.accounts.reload()
    assert (await check(client, "operator"))["permissions"] == ["state", "video"]


async def ws_connect(client, user, query="stream=0"):
    ws = await client.ws_connect(f"/api/ws?{query}", headers=xhdr(user))
    events = await read_until(ws, current_burst_done)
    return (ws, events)


async def test_viewer_websocket_gets_events_but_its_input_is_dropped(
    make_client, make_config, tmp_path, caplog
):
    write_users(tmp_path)
    async with hid_client(make_client, make_config) as (client, host, _):
        (viewer, events) = await ws_connect(client, "viewer")
        session = next(e["event"] for e in events if e["event_type"] == "session")
        assert session == {
            "user": "viewer",
            "kind": "user",
            "permissions": ["state", "video"],
            "read_only": False,
            "access": "view",
            "hid_lock": None,
        }
        assert {"atx", "hid", "msd", "gpio", "streamer", "info"} <= {
            e["event_type"] for e in events
        }
        await viewer.send_json({"event_type": "key", "event": {"key": "KeyA", "state": True}})
        await viewer.send_bytes(b"\x01\x01KeyB")
        await viewer.send_json({"event_type": "key", "event": {"key": "KeyA", "state": False}})
        # One `session` event tells the UI it is view-only; then pings still answer.
        assert (await viewer.receive_json(timeout=2))["event"]["access"] == "view"
        await viewer.send_json({"event_type": "ping", "event": {}})
        assert await viewer.receive_json(timeout=2) == {"event_type": "pong", "event": {}}
        await viewer.send_bytes(b"\x00")
        assert (await viewer.receive(timeout=2)).data == b"\xff"
        # An admin's key on its own socket does reach the host: the path works.
        (admin, _) = await ws_connect(client, "admin")
        await admin.send_json({"event_type": "key", "event": {"key": "KeyC", "state": True}})
        await admin.send_json({"event_type": "key", "event": {"key": "KeyC", "state": False}})
        await wait_until(host, lambda: host.text == "c")
        assert host.text == "c"  # never the viewer's a or b
        assert caplog.text.count("Dropped input from viewer (xhdr)") == 1
        await viewer.close()
        await admin.close()


async def test_monitor_is_never_a_stream_client(make_client, make_config, tmp_path):
    write_users(tmp_path)
    (client, deps) = await make_client(make_config())
    (monitor, _) = await ws_connect(client, "monitor", "stream=1")
    assert deps.hub.stream_clients == 0
    (viewer, _) = await ws_connect(client, "viewer", "stream=1")
    assert deps.hub.stream_clients == 1
    await monitor.close()
    await viewer.close()
    await asyncio.sleep(0.05)
    assert deps.hub.stream_clients == 0


async def test_demotion_applies_live_on_the_websocket(make_client, make_config, tmp_path):
    write_users(tmp_path)
    async with hid_client(make_client, make_config) as (client, host, deps):
        (ws, _) = await ws_connect(client, "operator", "stream=1")
        assert deps.hub.stream_clients == 1
        await ws.send_json({"event_type": "key", "event": {"key": "KeyA", "state": True}})
        await ws.send_json({"event_type": "key", "event": {"key": "KeyA", "state": False}})
        await wait_until(host, lambda: host.text == "a")
        # Demoted to monitor through the API: a new session event, input and video gone.
        response = await client.post(
            "/api/auth/users/set_params?user=operator&roles=monitor", headers=ADMIN
        )
        assert response.status == 200
        event = await ws.receive_json(timeout=2)
        while event["event_type"] != "session":
            event = await ws.receive_json(timeout=2)
        assert (event["event"]["access"], event["event"]["permissions"]) == ("state", ["state"])
        assert deps.hub.stream_clients == 0
        await ws.send_json({"event_type": "key", "event": {"key": "KeyB", "state": True}})
        await ws.send_json({"event_type": "key", "event": {"key": "KeyB", "state": False}})
        await ws.send_json({"event_type": "ping", "event": {}})
        while (await ws.receive_json(timeout=2))["event_type"] != "pong":
            pass
        assert host.text == "a"
        # Disabled: the socket is closed as revoked.
        await client.post("/api/auth/users/set_params?user=operator&disabled=1", headers=ADMIN)
        message = await ws.receive(timeout=2)
        while message.type is aiohttp.WSMsgType.TEXT:
            message = await ws.receive(timeout=2)
        assert message.type is aiohttp.WSMsgType.CLOSE
        assert message.data == 4401


async def test_file_edits_reach_open_websockets(make_client, make_config, tmp_path):
    write_users(tmp_path)
    (client, deps) = await make_client(make_config(), loops=True)
    (ws, _) = await ws_connect(client, "viewer")
    users = yaml.safe_load((tmp_path / "users.yaml").read_text())
    users["viewer"] = {"roles": ["operator"]}
    (tmp_path / "users.yaml").write_text(yaml.safe_dump(users))
    # The hub looks at the files once a second.
    event = await ws.receive_json(timeout=5)
    while event["event_type"] != "session":
        event = await ws.receive_json(timeout=5)
    assert event["event"]["access"] == "control"
    assert Permission.HID in deps.auth.accounts.rights("viewer").permissions
    await ws.close()
