# SPDX-License-Identifier: GPL-3.0-or-later
"""Prometheus metrics, against PiKVM's samples (Redfish: test_redfish.py)."""

import base64
import re
import socket

import pytest

from tests.api.test_gpio import pikvm_sample_config
from tests.conftest import ADMIN, SAMPLES, sample


def parse_metrics(text):
    """(name, value) pairs; every metric is `# TYPE name gauge` and `name value`, then a
    blank line between metrics and a newline at the end, as PiKVM's sample."""
    assert text.endswith(" 0\n") or text.endswith(" 1\n")
    pairs = []
    for block in text[:-1].split("\n\n"):
        (type_line, value_line) = block.split("\n")
        (name, value) = value_line.split(" ")
        assert type_line == f"# TYPE {name} gauge"
        pairs.append((name, value))
    return pairs


@pytest.fixture
async def gpio_client(make_client, make_config, tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        config = make_config(kvmd={"gpio": pikvm_sample_config(tmp_path, udp.getsockname()[1])})
        (client, _) = await make_client(config)
        yield client


async def test_prometheus_metrics_follow_pikvm_sample(gpio_client):
    response = await gpio_client.get("/api/export/prometheus/metrics", headers=ADMIN)
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    ours = parse_metrics(await response.text())
    theirs = parse_metrics((SAMPLES / "prometheus_metrics.txt").read_text())
    names = [name for name, _ in ours]
    # Every metric of the sample, in the sample's order, with the sample's value...
    positions = [names.index(name) for name, _ in theirs]
    assert positions == sorted(positions)
    values = dict(ours)
    for name, value in theirs:
        if "_online_" in name:
            assert values[name] == "1"  # ...except online, which PiKVM fills with the state
        else:
            assert values[name] == value, name
    # What PiKVM lacks comes last.
    assert names[-5:] == [
        "pikvm_atx_hdd",
        "pikvm_atx_busy",
        "pikvm_hid_online",
        "pikvm_msd_online",
        "pikvm_streamer_online",
    ]
    assert all(re.fullmatch(r"pikvm_\w+", name) for name in names)


async def test_prometheus_needs_credentials_and_takes_basic(gpio_client):
    response = await gpio_client.get("/api/export/prometheus/metrics")
    assert response.status == 401
    assert "WWW-Authenticate" not in response.headers
    assert await response.json() == sample("prometheus_metrics_noauth.json")
    basic = await gpio_client.get(
        "/export/prometheus/metrics",
        headers={"Authorization": "Basic " + base64.b64encode(b"admin:admin").decode()},
    )
    assert basic.status == 200
    assert "pikvm_gpio_input_state_flag1 0\n" in await basic.text()
