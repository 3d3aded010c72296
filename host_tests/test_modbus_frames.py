"""CRC vectors and frame build/parse of firmware/modbus.py, pzem.py, evse.py on CPython and on the
MicroPython unix port (host_tests/mp_modbus_vectors.py runs unchanged on both), plus properties."""
import asyncio
import os
import re
import subprocess
import sys

from hypothesis import given, settings, strategies as st

from conftest import FIRMWARE, ROOT, micropython_bin

import modbus

HERE = os.path.dirname(os.path.abspath(__file__))


def _run(cmd, env_extra):
    env = dict(os.environ, **env_extra)
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "ALL OK" in r.stdout, r.stdout + r.stderr


def test_vectors_cpython():
    _run([sys.executable, os.path.join(HERE, "mp_modbus_vectors.py")], {"PYTHONPATH": FIRMWARE})


def test_vectors_micropython():
    _run([micropython_bin(), os.path.join(HERE, "mp_modbus_vectors.py")],
         {"MICROPYPATH": FIRMWARE + ":.frozen"})


def _crc_ref(data):
    # independent table-driven CRC-16/MODBUS
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xA001 if c & 1 else c >> 1
        table.append(c)
    c = 0xFFFF
    for b in data:
        c = (c >> 8) ^ table[(c ^ b) & 0xFF]
    return c


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=64))
def test_crc_matches_reference_and_residue(data):
    c = modbus.crc16(data, len(data))
    assert c == _crc_ref(data)
    framed = data + bytes((c & 0xFF, c >> 8))
    assert modbus.crc16(framed, len(framed)) == 0        # a good frame leaves residue 0


class _Echo:
    """UART that answers FC03 with given registers, recording the request."""

    def __init__(self, regs, addr=1, fc=3):
        self.regs, self.addr, self.fc, self.buf, self.req = regs, addr, fc, b"", None

    def write(self, b):
        self.req = bytes(b)
        out = bytearray([self.addr, self.fc, 2 * len(self.regs)])
        for v in self.regs:
            out += bytes((v >> 8, v & 0xFF))
        c = modbus.crc16(out, len(out))
        self.buf = bytes(out) + bytes((c & 0xFF, c >> 8))

    def readinto(self, b):
        # as the host board's raw pty: one byte here (the bus asks for one), 0 when none is there
        if not self.buf:
            return 0
        b[0], self.buf = self.buf[0], self.buf[1:]
        return 1


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=29), st.integers(0, 0xFFFF))
def test_read_regs_roundtrip(regs, start):
    u = _Echo(regs)
    bus = modbus.Bus(u, timeout_ms=50)

    async def go():
        return await bus.read_regs(1, 3, start, len(regs))   # the bus is the awaitable
    got = asyncio.run(go())
    assert got == regs
    assert u.req[:6] == bytes((1, 3, start >> 8, start & 0xFF, 0, len(regs)))
    assert modbus.crc16(u.req, 8) == 0


def test_doc_frames_have_valid_crc():
    """Every example frame in docs/charger-modbus.md (lines '-> hex' / '<- hex') has a valid CRC."""
    path = os.path.join(ROOT, "docs", "charger-modbus.md")
    frames = re.findall(r"^\s*(?:->|<-)\s+((?:[0-9A-Fa-f]{2}\s?)+)", open(path).read(), re.M)
    assert len(frames) >= 10
    for f in frames:
        b = bytes.fromhex(f)
        assert modbus.crc16(b, len(b)) == 0, f
