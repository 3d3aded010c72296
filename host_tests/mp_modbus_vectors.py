# CRC vectors, frame building and reply parsing of firmware/modbus.py, pzem.py, evse.py against an
# in-memory UART. Runs unchanged under MicroPython (MICROPYPATH=firmware micropython THIS) and
# CPython (python THIS, firmware/ on sys.path). Prints "ALL OK" on success, raises otherwise.
import sys

try:
    import asyncio
except ImportError:
    import uasyncio as asyncio

import modbus
import pzem
import pzem_setup
import evse



async def evse_read(bus, a):
    # the charger as control.Control.run reads it: the base block, then the extension while the
    # charger may have one
    e = await evse.read(bus, a)
    if e and evse.no_ext != a:
        e = await evse.read_ext(bus, a)
    return e

def hx(s):
    return bytes([int(x, 16) for x in s.split()])


def eq(a, b, what):
    if a != b:
        raise AssertionError("%s: %r != %r" % (what, a, b))


def crc(b):
    return modbus.crc16(b, len(b))


def frame(b):
    c = crc(b)
    return bytes(b) + bytes([c & 0xFF, c >> 8])


# ---- CRC vectors (docs/charger-modbus.md, research modbus.md 6.3)
eq(crc(b"123456789"), 0x4B37, "check string")
eq(crc(hx("01 04 14 08 D1 00 6C 00 00 00 F4 00 00 00 26 00 00 01 F4 00 64 00 00")), 0x3451, "pzem capture")
eq(crc(hx("F8 06 00 02 00 01")), 0xA3FD, "set-address reply")
eq(crc(hx("02 04 00 00 00 0A")), 0x3E70, "pzem @2 poll")
for f in ("01 04 00 00 00 0a 70 0d", "f8 06 00 02 00 05 fc 60", "05 42 82 d1", "f8 41 37 21 b7 78"):
    b = hx(f)
    eq(crc(b[:-2]), b[-2] | b[-1] << 8, f)


class FakeUart:
    # In-memory UART: every write is answered by handler(request) -> bytes or None
    def __init__(self, handler):
        self.h = handler
        self.buf = b""
        self.sent = []

    def write(self, b):
        b = bytes(b)
        self.sent.append(b)
        r = self.h(b)
        if r:
            self.buf += r
        return len(b)

    def readinto(self, b):
        # as machine.UART with timeout=0: what is there, up to len(b); None when nothing is
        if not self.buf:
            return None
        n = min(len(b), len(self.buf))
        b[:n] = self.buf[:n]
        self.buf = self.buf[n:]
        return n


class Slave:
    # Tiny PZEM (addr 1) + charger (addr 2) register model; mode injects faults
    def __init__(self):
        self.mode = ""
        self.ir = {1: [2304, 8695, 0, 20000, 0, 57920, 1, 500, 100, 0]}
        self.hr = {2: {1000: 0, 1001: 0, 1002: 2, 1003: 32, 1004: 0, 1005: 18, 1006: 1,
                       3000: 0x4556, 3001: 47, 3002: 0, 3003: 0x2345, 3004: 1, 3005: 0, 3006: 0}}
        self.ext = True

    def exc(self, a, fc, code):
        return frame(bytes([a, fc | 0x80, code]))

    def __call__(self, req):
        if self.mode == "silent":
            return None
        if self.mode == "extsilent" and req[1] == 3 and req[2] << 8 | req[3] >= 3000:
            return None
        if crc(req[:-2]) != req[-2] | req[-1] << 8:
            return None
        a, fc = req[0], req[1]
        if a not in (1, 2, 0xF8):
            return None
        r = None
        if fc == 0x42:
            r = req if a in (1, 0xF8) else self.exc(a, fc, 1)
        elif fc in (3, 4):
            start = req[2] << 8 | req[3]
            n = req[5]
            if fc == 4:
                regs = self.ir.get(a)
                if regs is None:
                    return self.exc(a, fc, 1)
                if start + n > 10:
                    return self.exc(a, fc, 2)
                vals = regs[start:start + n]
            else:
                hr = self.hr.get(a, {})
                vals = []
                for i in range(n):
                    k = start + i
                    if k not in hr or (k >= 3000 and not self.ext):
                        return self.exc(a, fc, 2)
                    vals.append(hr[k])
            out = bytearray([a, fc, 2 * n])
            for v in vals:
                out.append(v >> 8)
                out.append(v & 0xFF)
            r = frame(out)
        elif fc == 6:
            r = req
        elif fc == 16:
            start = req[2] << 8 | req[3]
            n = req[5]
            hr = self.hr.get(a, {})
            for i in range(n):
                if start + i >= 3000 and not self.ext:
                    return self.exc(a, fc, 2)
                hr[start + i] = req[7 + 2 * i] << 8 | req[8 + 2 * i]
            r = frame(req[:6])
        else:
            return self.exc(a, fc, 1)
        if self.mode == "crc":
            r = r[:-1] + bytes([r[-1] ^ 0x5A])
        elif self.mode == "wrongaddr":
            r = frame(bytes([9]) + r[1:-2])
        elif self.mode == "stale":
            r = hx("01 04 02 00 01") + r          # garbage first: reply is bad
        return r


async def main():
    s = Slave()
    u = FakeUart(s)
    bus = modbus.Bus(u, timeout_ms=30)

    # request frames on the wire
    p = await pzem.read(bus, 1)
    eq(u.sent[-1], hx("01 04 00 00 00 0a 70 0d"), "pzem read frame")
    eq(p, (2304, 8695, 20000, 123456, 500, 100, 0), "pzem decode")
    ok = await evse.set_current(bus, 2, 16)
    eq(ok, True, "set_current")
    eq(u.sent[-1], frame(hx("02 10 03 e8 00 01 02 00 10")), "FC16 frame")
    ok = await evse.set_current(bus, 2, 5)
    eq(u.sent[-1], frame(hx("02 10 03 e8 00 01 02 00 00")), "5 A -> 0")
    eq(await pzem_setup.reset_energy(bus, 1), True, "reset")
    eq(u.sent[-1], hx("01 42 80 11"), "reset frame")
    eq(await pzem_setup.set_address(bus, 1), True, "set_address")
    eq(u.sent[-1], hx("f8 06 00 02 00 01 fd a3"), "set-address frame")
    eq(await pzem_setup.set_address(bus, 0), False, "set_address range")

    e = await evse_read(bus, 2)
    eq(e, (0, 2, 47, 0, 0x12345), "evse read")
    eq(u.sent[-2], frame(hx("02 03 03 e8 00 07")), "base block frame")
    eq(u.sent[-1], frame(hx("02 03 0b b8 00 05")), "ext block frame")
    eq(await evse.configure(bus, 2, 60, 0), True, "configure")
    eq(u.sent[-1], frame(hx("02 10 0b bd 00 02 04 00 3c 00 00")), "configure frame")
    eq(s.hr[2][3005], 60, "timeout stored")

    # exception reply
    eq(await bus.read_regs(1, 4, 0x20, 1), None, "exception -> None")
    eq((bus.exceptions, bus.last_exc), (1, 2), "exception counted")
    eq(await bus.read_regs(2, 4, 0, 1), None, "charger FC04")
    eq(bus.last_exc, 1, "illegal function")

    # CRC error
    s.mode = "crc"
    eq(await pzem.read(bus, 1), None, "bad crc -> None")
    eq(bus.crc_errors, 1, "crc counted")
    # a whole frame from another address (a late reply): skipped as foreign, and the master
    # waits on for its own slave's reply, which does not come here (a timeout, not a CRC error)
    s.mode = "wrongaddr"
    eq(await pzem.read(bus, 1), None, "wrong addr -> None")
    eq((bus.crc_errors, bus.timeouts, bus.foreign), (1, 1, 1), "wrong addr skipped")
    # garbage before the reply: frame length taken from the garbage, CRC fails
    s.mode = "stale"
    eq(await pzem.read(bus, 1), None, "stale")
    # stale bytes sitting in the UART before a request are drained
    s.mode = ""
    u.buf = hx("01 04 14 00 00")
    eq((await pzem.read(bus, 1))[0], 2304, "drain before request")
    # silence -> timeout
    s.mode = "silent"
    eq(await pzem.read(bus, 1), None, "silent")
    eq(bus.timeouts, 2, "timeout counted")
    s.mode = ""
    eq(await bus.read_regs(7, 3, 1000, 1), None, "absent address")
    eq(bus.timeouts, 3, "absent -> timeout")

    # no extension: exception 2 once, then never asked again
    s.ext = False
    evse.no_ext = -1
    n = len(u.sent)
    eq(await evse_read(bus, 2), (0, 2, -1, -1, -1), "no ext")
    eq(evse.no_ext, 2, "no ext remembered")
    eq(await evse_read(bus, 2), (0, 2, -1, -1, -1), "no ext again")
    eq(len(u.sent) - n, 3, "ext not asked again")
    eq(await evse.configure(bus, 2, 60, 0), False, "configure without ext")
    evse.no_ext = -1

    # a charger that ignores the extension registers (silence): given up after 3 timeouts
    s.ext = True
    s.mode = "extsilent"
    for i in range(3):
        eq(evse.no_ext, -1, "still asking %d" % i)
        eq(await evse_read(bus, 2), (0, 2, -1, -1, -1), "ext silent")
    eq(evse.no_ext, 2, "silent ext given up")
    s.mode = ""
    evse.no_ext = -1

    # one task owns the bus: a transfer abandoned half-way (its task cancelled) leaves nothing
    # behind for the next one
    s.ext = True
    bus.xfer(1, 4, 0, 10, None)
    eq(bus.__next__(), None, "the abandoned transfer is under way")
    res = [await pzem.read(bus, 1), await evse_read(bus, 2), await pzem.read(bus, 1)]
    eq(res[0][0], 2304, "pzem after an abandoned transfer")
    eq(res[1][2], 47, "then evse")
    eq(res[2][0], 2304, "then pzem again")

    # argument limits: refused at the call, nothing sent
    n = len(u.sent)
    for call in (lambda: bus.read_regs(1, 3, 0, 0), lambda: bus.read_regs(1, 3, 0, 30),
                 lambda: bus.write_regs(2, 1000, []), lambda: bus.write_regs(2, 1000, [0] * 16)):
        try:
            call()
            raise AssertionError("not refused")
        except ValueError:
            pass
    eq(len(u.sent), n, "nothing sent for refused requests")

    print("ALL OK", sys.implementation.name)


asyncio.run(main())
