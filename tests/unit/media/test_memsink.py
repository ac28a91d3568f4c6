# SPDX-License-Identifier: GPL-3.0-or-later
"""The memsink reader against the publisher, on real files with real flock and mmap."""

import fcntl
import os
import threading
import time

import pytest

from kvmd.media.memsink import (
    FORMAT_H264,
    HEADER_SIZE,
    Header,
    MemsinkError,
    MemsinkMissingError,
    MemsinkReader,
    capacity_of,
)
from kvmd.media.publisher import MemsinkPublisher
from tests.sinkframes import sink_frame as frame

NAME = "kvmd::ustreamer::h264"


@pytest.fixture
def publisher(tmp_path):
    publisher = MemsinkPublisher(NAME, shm_dir=tmp_path)
    yield publisher
    publisher.close()


@pytest.fixture
def reader(tmp_path, publisher):
    reader = MemsinkReader(NAME, shm_dir=tmp_path, wait_timeout=0.05, lock_timeout=0.05)
    yield reader
    reader.close()


def test_the_header_is_ustreamer_6_62s_byte_for_byte():
    # memsinksh.h of ustreamer 6.62 on LP64 (x86_64 and aarch64 agree).
    offsets = {name: getattr(Header, name).offset for (name, _) in Header._fields_}
    assert offsets == {
        "magic": 0,
        "version": 8,
        "id": 16,
        "used": 24,
        "last_client_ts": 32,
        "wants": 48,
        "width": 68,
        "height": 72,
        "format": 76,
        "stride": 80,
        "online": 84,
        "key": 85,
        "gop": 88,
        "grab_begin_ts": 96,
        "grab_end_ts": 112,
        "encode_begin_ts": 128,
        "encode_end_ts": 144,
    }
    assert HEADER_SIZE == 160


def test_sizes_come_from_the_names_suffix(tmp_path, publisher):
    assert (capacity_of("kvmd::ustreamer::h264"), capacity_of("x.JPEG")) == (2 << 20, 4 << 20)
    assert (tmp_path / NAME).stat().st_size == HEADER_SIZE + (2 << 20)
    assert oct((tmp_path / NAME).stat().st_mode & 0o777) == "0o660"
    with pytest.raises(ValueError, match="must end in :jpeg, :h264 or :raw"):
        capacity_of("kvmd::ustreamer")


def test_a_frame_goes_through_once(publisher, reader):
    assert reader.wait_frame() is None  # nothing published yet
    assert publisher.put(frame(b"\x00\x00\x00\x01\x67key", key=True))
    got = reader.wait_frame()
    assert got is not None
    assert (got.data, got.key, got.online, got.width, got.height, got.gop) == (
        b"\x00\x00\x00\x01\x67key",
        True,
        True,
        640,
        480,
        30,
    )
    assert got.format == FORMAT_H264
    assert reader.wait_frame() is None  # the same id is not a new frame
    assert publisher.put(frame(b"delta"))
    assert reader.wait_frame().data == b"delta"


def test_reading_is_the_heartbeat_the_encoder_waits_for(publisher, reader):
    # Nothing published yet: a reader writes its heartbeat only once there is a frame.
    assert publisher.has_clients() is True
    publisher.put(frame(b"x", key=True))
    assert publisher.has_clients() is False
    reader.wait_frame()
    assert publisher.has_clients() is True


def test_a_key_request_stays_until_a_key_frame_is_published(publisher, reader):
    publisher.put(frame(b"a", key=True))
    reader.wait_frame(key_required=True)
    assert publisher.wants_key() is True
    publisher.put(frame(b"delta"))
    assert publisher.wants_key() is True
    publisher.put(frame(b"idr", key=True))
    assert publisher.wants_key() is False


def test_no_object_is_missing_not_a_crash(tmp_path):
    reader = MemsinkReader("kvmd::ustreamer::jpeg", shm_dir=tmp_path)
    with pytest.raises(MemsinkMissingError, match="No memsink 'kvmd::ustreamer::jpeg'"):
        reader.wait_frame()


def test_another_protocol_version_is_refused_by_number(publisher, reader):
    publisher.put(frame(b"x", key=True))
    with publisher.path.open("r+b") as raw:  # ustreamer 6.56-6.61 write 8 here
        raw.seek(8)
        raw.write((8).to_bytes(4, "little"))
    with pytest.raises(MemsinkError, match=r"speaks protocol 8; kvmd reads 10 \(ustreamer 6.62"):
        reader.wait_frame()


def test_a_truncated_object_is_an_error_naming_it(tmp_path, publisher, reader):
    publisher.put(frame(b"x" * 1000, key=True))
    os.truncate(publisher.path, HEADER_SIZE + 100)
    with pytest.raises(MemsinkError, match="1000 bytes, but only 100 fit: the object is truncated"):
        reader.wait_frame()
    reader.close()
    os.truncate(publisher.path, 100)
    with pytest.raises(MemsinkError, match="100 bytes, short of its 160-byte header"):
        reader.wait_frame()


def test_a_held_lock_makes_a_late_frame_not_a_hang(publisher, reader):
    publisher.put(frame(b"x", key=True))
    with publisher.path.open("rb") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        started = time.monotonic()
        assert reader.wait_frame() is None
        assert time.monotonic() - started < 1.0
    assert reader.wait_frame().data == b"x"


def test_a_restarted_streamers_new_object_is_found(tmp_path, publisher, reader):
    publisher.put(frame(b"old", key=True))
    assert reader.wait_frame().data == b"old"
    publisher.close(remove=True)
    again = MemsinkPublisher(NAME, shm_dir=tmp_path)
    try:
        again.put(frame(b"new", key=True))
        assert reader.wait_frame() is None  # the old object's last look notices
        assert reader.wait_frame().data == b"new"
    finally:
        again.close()


def test_frames_from_another_thread_arrive_in_order(publisher, tmp_path):
    reader = MemsinkReader(NAME, shm_dir=tmp_path, wait_timeout=1.0)
    got: list[bytes] = []

    def read() -> None:
        while len(got) < 3:
            result = reader.wait_frame()
            if result is not None:
                got.append(result.data)

    thread = threading.Thread(target=read)
    thread.start()
    for data in (b"1", b"2", b"3"):
        publisher.put(frame(data, key=True))
        deadline = time.monotonic() + 2
        while data not in got and time.monotonic() < deadline:
            time.sleep(0.001)
    thread.join(3)
    reader.close()
    assert got == [b"1", b"2", b"3"]


def test_after_a_stall_the_reader_misses_no_frame(publisher, tmp_path):
    # The reader sleeps through most of the usual gap between frames; a stall must not
    # teach it a longer gap, or it would sleep past frames once they flow again.
    reader = MemsinkReader(NAME, shm_dir=tmp_path, wait_timeout=1.0)
    got: list[bytes] = []
    sent = [str(n).encode() for n in range(60)]

    def publish() -> None:
        for n, data in enumerate(sent):
            if n == 30:
                time.sleep(0.6)
            publisher.put(frame(data, key=True))
            time.sleep(1 / 20)  # a margin for a loaded machine: 50 ms between frames

    thread = threading.Thread(target=publish)
    thread.start()
    deadline = time.monotonic() + 6
    while len(got) < len(sent) and time.monotonic() < deadline:
        result = reader.wait_frame()
        if result is not None:
            got.append(result.data)
    thread.join(3)
    reader.close()
    assert got == sent
