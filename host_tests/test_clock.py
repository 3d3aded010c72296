"""clock.py (NTP) on the real MicroPython unix port and on the board twin, against UDP servers on
127.0.0.1: the simulator's NTP stand-in (sim/ntp_standin.py), a silent one and one that answers
garbage. The meter's clock must take a good answer to the second (UTC seconds since 2000, the
board's epoch), in NTP era 1 (after 2036) too, and take nothing else; an attempt that fails asks
for a retry in 30 s, a good one for the next sync in an hour."""
import calendar
import os
import socket
import subprocess
import threading

import pytest

from conftest import FIRMWARE, ROOT, app_over_a_fake_board, import_fails_once, micropython_bin
from sim import ntp_standin

HERE = os.path.dirname(os.path.abspath(__file__))
EPOCH_2000 = 946684800
BINARIES = {"unix": micropython_bin(), "twin": os.path.join(ROOT, "build", "twin", "micropython")}


def attempts(binary, port, n=1, wifi=True):
    exe = BINARIES[binary]
    if binary == "twin" and not os.path.exists(exe):
        pytest.skip("no board twin (make twin)")
    env = dict(os.environ, MICROPYPATH=FIRMWARE + ":.frozen", NTP_PORT=str(port),
               NTP_WIFI="1" if wifi else "0")
    r = subprocess.run([exe, os.path.join(HERE, "mp_clock_check.py"), str(n)], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return [tuple(int(x) for x in line.split()) for line in r.stdout.split("\n") if line]


@pytest.mark.parametrize("binary", ["unix", "twin"])
@pytest.mark.parametrize("when", ["2026-12-06 12:34:56", "2040-03-01 00:00:07"])
def test_a_good_answer_sets_the_clock_to_the_second_and_the_next_sync_is_in_an_hour(binary,
                                                                                      when):
    # 2040 is NTP era 1: the 32-bit seconds field has wrapped (2036-02-07)
    unix = calendar.timegm(tuple(int(x) for x in when.replace("-", " ").replace(":", " ")
                                 .split()) + (0, 0, 0))
    srv = ntp_standin.NtpStandin(lambda: unix + 0.25)
    try:
        got = attempts(binary, srv.port, n=2)
    finally:
        srv.stop()
    assert got == [(3600000, unix - EPOCH_2000, 1)] * 2
    assert srv.answered == 2


@pytest.mark.parametrize("binary", ["unix", "twin"])
def test_a_silent_server_sets_nothing_and_is_asked_again_in_30_s(binary):
    srv = ntp_standin.NtpStandin(lambda: 1.8e9, valid=lambda: False)
    try:
        assert attempts(binary, srv.port) == [(30000, -1, 1)]
    finally:
        srv.stop()
    assert srv.answered == 0


def _garbage_server(answers):
    # answers each request with the next of `answers` (bytes, or a function of the request)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(0.2)
    stop = []

    def serve():
        i = 0
        while not stop and i < len(answers):
            try:
                req, peer = s.recvfrom(100)
            except OSError:
                continue
            a = answers[i]
            s.sendto(a(req) if callable(a) else a, peer)
            i += 1
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return s, stop, t


@pytest.mark.parametrize("binary", ["unix", "twin"])
def test_garbage_answers_set_nothing(binary):
    good = ntp_standin.reply(bytes([0x1B]) + bytes(47), 1.8e9)
    answers = [
        good[:47],                                  # short
        bytes([good[0] & 0xF8 | 3]) + good[1:],     # mode 3: another client, not a server
        good[:1] + b"\0" + good[2:],                # stratum 0: kiss-o'-death / unsynchronised
    ]
    s, stop, t = _garbage_server(answers)
    try:
        got = attempts(binary, s.getsockname()[1], n=3)
    finally:
        stop.append(1)
        t.join(1)
        s.close()
    assert got == [(30000, -1, 1)] * 3


@pytest.mark.parametrize("binary", ["unix", "twin"])
def test_without_wifi_no_packet_is_sent(binary):
    srv = ntp_standin.NtpStandin(lambda: 1.8e9)
    try:
        assert attempts(binary, srv.port, wifi=False) == [(30000, -1, 0)]
    finally:
        srv.stop()
    assert srv.answered == 0


def test_the_standin_answers_only_client_requests():
    req = bytes([0x23]) + bytes(39) + b"ORIGINAL"       # v4, mode 3, transmit ts "ORIGINAL"
    r = ntp_standin.reply(req, 1765024496.5)
    assert len(r) == 48 and r[0] & 7 == 4 and r[1] == 2 and r[0] >> 3 & 7 == 4
    assert r[24:32] == b"ORIGINAL"                      # originate = the client's transmit
    assert int.from_bytes(r[40:44], "big") == 1765024496 + ntp_standin.NTP_1970
    assert int.from_bytes(r[44:48], "big") == 2 ** 31   # .5 s
    assert ntp_standin.reply(bytes([0x24]) + bytes(47), 0) is None    # a server's packet
    assert ntp_standin.reply(bytes(20), 0) is None


def test_the_clock_task_drops_clock_py_between_attempts_and_outlives_a_memory_error(monkeypatch):
    # app._clock imports clock.py for each attempt and drops it (its code is not held for the
    # hour between syncs); a MemoryError in that import costs one attempt, retried in 30 s, and
    # the resolved address is kept from one attempt to the next
    import asyncio
    import sys
    import types
    waits = []

    async def sleep(ms):
        waits.append((ms, "clock" in sys.modules))
        if len(waits) >= 3:
            raise asyncio.CancelledError
        await asyncio.sleep(0)

    app = app_over_a_fake_board(monkeypatch, sleep)
    fake_clock = types.ModuleType("clock")
    calls = []

    async def sync(board, host, addr):
        calls.append((host, addr[0]))
        addr[0] = ("192.0.2.1", 123)
        return 3600000

    fake_clock.sync = sync
    failed = import_fails_once(monkeypatch, "clock", fake_clock, 96)
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(app._clock("pool.ntp.org", None))
    assert failed and waits == [(30000, False), (3600000, False), (3600000, False)]
    assert calls == [("pool.ntp.org", None), ("pool.ntp.org", ("192.0.2.1", 123))]


@pytest.mark.parametrize("connected_after_s", [3, None])
def test_the_first_sync_waits_for_the_clouds_first_connect_at_most_30_s(monkeypatch,
                                                                        connected_after_s):
    # while the cloud holds umqtt.simple for its first connect, clock.py is not loaded beside it
    # (at a 24K heap the two at once left the connect no room); a cloud that cannot connect
    # holds the sync back 30 s at most
    import asyncio
    import sys
    import types
    cloud = types.SimpleNamespace(u=object())
    seen = []

    async def sleep(ms):
        if ms == 1000:
            seen.append("clock" in sys.modules)
            if len(seen) == connected_after_s:
                cloud.u = None          # connected: umqtt.simple dropped
            await asyncio.sleep(0)
            return
        raise asyncio.CancelledError    # after the first attempt

    app = app_over_a_fake_board(monkeypatch, sleep)
    fake_clock = types.ModuleType("clock")
    synced = []

    async def sync(board, host, addr):
        synced.append(len(seen))
        return 3600000

    fake_clock.sync = sync
    import_fails_once(monkeypatch, "clock", fake_clock, 0).append("no failure")
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(app._clock("pool.ntp.org", cloud))
    assert not any(seen)                # clock.py not loaded while waiting
    assert synced == [connected_after_s or 30]
