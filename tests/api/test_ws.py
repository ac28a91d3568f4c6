# SPDX-License-Identifier: GPL-3.0-or-later
import asyncio
import base64
import json

import aiohttp
import msgspec
import pytest

import kvmd
from kvmd.bus import Topic
from kvmd.plugins.atx.base import AtxActs, AtxLeds, AtxState
from kvmd.plugins.streamer.base import StreamerFeatures, StreamerParams
from tests.conftest import ADMIN, LOOP, SAMPLES

CURRENT_BURST = {"gpio", "hid", "hid_keymaps", "atx", "msd", "streamer", "ocr", "info", "clients"}
INFO_CATEGORIES = {"auth", "extras", "fan", "health", "meta", "node", "system"}


async def read_until(ws, done, limit=50):
    events = []
    for _ in range(limit):
        events.append(await ws.receive_json(timeout=3))
        if done(events):
            return events
    raise AssertionError(f"incomplete: {[e['event_type'] for e in events]}")


def current_burst_done(events):
    infos = {next(iter(e["event"])) for e in events if e["event_type"] == "info"}
    return {e["event_type"] for e in events} >= CURRENT_BURST and infos == INFO_CATEGORIES


async def test_current_format_loop_first_then_every_state(client):
    async with client.ws_connect("/api/ws?stream=0", headers=ADMIN) as ws:
        events = await read_until(ws, current_burst_done)
    assert kvmd.__version__.startswith("0.1.")
    assert events[0] == LOOP
    by_type = {e["event_type"]: e["event"] for e in events}
    assert by_type["atx"] == {
        "busy": False,
        "enabled": False,
        "acts": {"power": False, "reset": False},
        "leds": {"hdd": False, "power": False},
    }
    assert by_type["clients"] == {"count": 0}
    assert by_type["ocr"] == {"enabled": False, "langs": {"available": [], "default": []}}
    assert by_type["msd"]["enabled"] is False
    assert by_type["hid"]["online"] is False


async def test_legacy_format_matches_pikvm_order(client):
    expected = [
        m["msg"]["event_type"] for m in json.loads((SAMPLES / "ws_initial_burst.json").read_text())
    ]
    expected = expected[: expected.index("loop") + 1]
    async with client.ws_connect("/api/ws?stream=0&legacy=1", headers=ADMIN) as ws:
        events = await read_until(ws, lambda ev: ev[-1]["event_type"] == "loop")
    # kvmd's `session` event comes first; PiKVM's burst follows in PiKVM's order.
    assert events[0]["event_type"] == "session"
    events = events[1:]
    assert [e["event_type"] for e in events] == expected
    assert events[-1] == {"event_type": "loop", "event": {}}
    by_type = {e["event_type"]: e["event"] for e in events}
    assert by_type["info_auth_state"] == {"enabled": True}
    assert by_type["atx_state"] == {
        "busy": False,
        "enabled": False,
        "acts": {"power": False, "reset": False},
        "leds": {"hdd": False, "power": False},
    }
    assert "platform" not in by_type["info_system_state"]
    assert set(by_type["info_hw_state"]) == {"health", "platform"}


async def test_pings(client):
    async with client.ws_connect("/api/ws?stream=0", headers=ADMIN) as ws:
        await read_until(ws, current_burst_done)
        await ws.send_json({"event_type": "ping", "event": {}})
        assert await ws.receive_json(timeout=2) == {"event_type": "pong", "event": {}}
        await ws.send_bytes(b"\x00")
        message = await ws.receive(timeout=2)
        assert message.type is aiohttp.WSMsgType.BINARY
        assert message.data == b"\xff"


async def test_malformed_messages_are_dropped_and_the_socket_stays(client, caplog):
    async with client.ws_connect("/api/ws?stream=0", headers=ADMIN) as ws:
        await read_until(ws, current_burst_done)
        for bad in ["nope", "{}", "[1]", '{"event_type": "key", "event": {"key": 1}}', "\u0000"]:
            await ws.send_str(bad)
        for bad_bytes in [b"", b"\x09", b"\x03\x00", b"\x01\x01\xff"]:
            await ws.send_bytes(bad_bytes)
        await ws.send_json({"event_type": "ping", "event": {}})
        assert await ws.receive_json(timeout=2) == {"event_type": "pong", "event": {}}
        assert not ws.closed
    assert caplog.text.count("Dropped a malformed websocket message") == 1


async def test_auth_on_upgrade(client):
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await client.ws_connect("/api/ws")
    assert info.value.status == 401
    with pytest.raises(aiohttp.WSServerHandshakeError) as bad:
        await client.ws_connect("/api/ws", headers={**ADMIN, "X-KVMD-Passwd": "x"})
    assert bad.value.status == 403
    basic = {"Authorization": "Basic " + base64.b64encode(b"admin:admin").decode()}
    async with client.ws_connect("/api/ws?stream=0", headers=basic) as ws:
        assert (await ws.receive_json(timeout=2))["event_type"] == "loop"


async def test_bad_query_is_400_before_upgrade(client):
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await client.ws_connect("/api/ws?stream=maybe", headers=ADMIN)
    assert info.value.status == 400
    plain = await client.get("/api/ws", headers=ADMIN)
    assert plain.status == 400
    assert (await plain.json())["ok"] is False


async def test_stream_clients_are_counted(client):
    async with client.ws_connect("/api/ws?stream=0", headers=ADMIN) as observer:
        await read_until(observer, current_burst_done)
        async with client.ws_connect("/api/ws", headers=ADMIN) as watcher:
            event = await observer.receive_json(timeout=2)
            assert event == {"event_type": "clients", "event": {"count": 1}}
            assert (await watcher.receive_json(timeout=2))["event_type"] == "loop"
        assert await observer.receive_json(timeout=2) == {
            "event_type": "clients",
            "event": {"count": 0},
        }


async def test_changes_reach_every_client_once(make_client, make_config):
    (client, deps) = await make_client(make_config())
    sockets = [await client.ws_connect("/api/ws?stream=0", headers=ADMIN) for _ in range(3)]
    for ws in sockets:
        await read_until(ws, current_burst_done)
    deps.bus.publish(
        Topic.ATX, AtxState(enabled=True, acts=AtxActs(), busy=True, leds=AtxLeds(power=True))
    )
    deps.bus.publish(
        Topic.ATX, AtxState(enabled=True, acts=AtxActs(), busy=True, leds=AtxLeds(power=True))
    )  # equal: dropped
    for ws in sockets:
        event = await ws.receive_json(timeout=2)
        assert event == {
            "event_type": "atx",
            "event": {
                "busy": True,
                "enabled": True,
                "acts": {"power": False, "reset": False},
                "leds": {"hdd": False, "power": True},
            },
        }
        await ws.send_json({"event_type": "ping", "event": {}})
        assert (await ws.receive_json(timeout=2))["event_type"] == "pong"  # nothing else was queued
        await ws.close()


async def test_streamer_changes_go_out_as_pikvm_partial_events(make_client, make_config):
    # PiKVM's web UI rebuilds its stream settings on every event with `features`: after
    # the whole state, a client gets only what changed, `limits` along with params/applied.
    (client, deps) = await make_client(make_config())
    ws = await client.ws_connect("/api/ws?stream=0", headers=ADMIN)
    burst = await read_until(ws, current_burst_done)
    whole = next(e["event"] for e in burst if e["event_type"] == "streamer")
    assert set(whole) == {"features", "limits", "params", "applied", "snapshot", "streamer"}
    state = deps.streamer.state()
    running = msgspec.structs.replace(state, streamer=msgspec.Raw(b'{"source":{"online":true}}'))
    deps.bus.publish(Topic.STREAMER, running)
    assert await ws.receive_json(timeout=2) == {
        "event_type": "streamer",
        "event": {"streamer": {"source": {"online": True}}},
    }
    asked = msgspec.structs.replace(running, params=StreamerParams(desired_fps=5))
    deps.bus.publish(Topic.STREAMER, asked)
    assert await ws.receive_json(timeout=2) == {
        "event_type": "streamer",
        "event": {"params": {"desired_fps": 5}, "limits": whole["limits"]},
    }
    deps.bus.publish(
        Topic.STREAMER, msgspec.structs.replace(asked, features=StreamerFeatures(quality=True))
    )
    changed = await ws.receive_json(timeout=2)
    assert set(changed["event"]) == set(whole)  # new features: the whole state again
    await ws.close()


async def test_shutdown_closes_sockets_going_away(make_client, make_config):
    (client, deps) = await make_client(make_config())
    ws = await client.ws_connect("/api/ws?stream=0", headers=ADMIN)
    await read_until(ws, current_burst_done)
    await deps.hub.close_all()
    message = await ws.receive(timeout=2)
    assert message.type is aiohttp.WSMsgType.CLOSE
    assert message.data == aiohttp.WSCloseCode.GOING_AWAY


async def test_a_stalled_client_gets_only_the_newest_state(make_client, make_config):
    (client, deps) = await make_client(make_config())
    stalled = await client.ws_connect("/api/ws?stream=0", headers=ADMIN)
    reader = await client.ws_connect("/api/ws?stream=0", headers=ADMIN)
    await read_until(reader, current_burst_done)
    # The stalled client reads nothing while 3000 states go out; the other keeps up.
    for i in range(3000):
        deps.bus.publish(
            Topic.ATX,
            AtxState(enabled=True, acts=AtxActs(), busy=bool(i % 2), leds=AtxLeds(hdd=i == 2999)),
        )
        if i % 100 == 0:
            await asyncio.sleep(0)
    last = {
        "busy": True,
        "enabled": True,
        "acts": {"power": False, "reset": False},
        "leds": {"hdd": True, "power": False},
    }
    async with asyncio.timeout(5):
        while (await reader.receive_json())["event"] != last:
            pass
    # Now the stalled one reads: its backlog was coalesced, far fewer than 3000 events.
    events = await read_until(stalled, lambda ev: ev[-1]["event"] == last, limit=3000)
    atx_events = [e for e in events if e["event_type"] == "atx"]
    assert atx_events[-1]["event"] == last
    assert len(atx_events) < 1000
    await stalled.close()
    await reader.close()


@pytest.mark.parametrize("depth", [1_000, 10_000])  # under the 64 KiB frame limit
async def test_deeply_nested_frames_are_dropped_and_the_socket_stays(client, depth):
    nested = "[" * depth + "]" * depth
    async with client.ws_connect("/api/ws?stream=0", headers=ADMIN) as ws:
        await read_until(ws, current_burst_done)
        await ws.send_str('{"event_type": "ping", "event": ' + nested + "}")
        await ws.send_str('{"event_type": "key", "event": {"key": ' + nested + "}}")
        await ws.send_str(nested)
        await ws.send_json({"event_type": "ping", "event": {}})
        pong = await ws.receive_json(timeout=3)
        while pong["event_type"] != "pong":
            pong = await ws.receive_json(timeout=3)
        assert pong == {"event_type": "pong", "event": {}}
        assert not ws.closed
