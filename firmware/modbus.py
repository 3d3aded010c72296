# Modbus RTU master over a UART-like object: write(buf), readinto(buf) -> bytes read, 0 or None
# (non-blocking).
# A transfer is the Bus itself: xfer() builds the request and returns the bus, and the task that
# awaits it polls the UART every 2 ms through __next__ (asyncio.sleep_ms in between: never blocks).
# So a transfer allocates no coroutine: each call of an `async def` is a heap object in
# MicroPython (the old transfer coroutine took 148 B, four or five a control tick, and was the
# allocation that failed first in a fragmented heap; docs/benchmarks.md section 0). One task owns
# the bus (the control task; pzem_setup at the REPL); a new xfer() abandons one in flight.
# Preallocated frame buffers, bytes received one at a time (readinto); the allocations per
# transfer are the StopIteration that carries the result and what the parse function makes.
# Runs on the ESP8266, the MicroPython unix port and CPython (host tests).
import asyncio
import time

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

_SILENCE_MS = const(5)   # >= t3.5 (3.65 ms at 9600 8N1) between frames
_GAP_MS = const(10)      # no byte for this long ends a reply of unknown/short length
_POLL_MS = const(2)
_RXLEN = const(64)       # FC03/04 replies up to 29 registers
_TXLEN = const(40)       # FC16 requests up to 15 registers

try:
    _ms = time.ticks_ms
    _diff = time.ticks_diff
    _sleep = asyncio.sleep_ms

    def _pause():
        # the awaiting task sleeps _POLL_MS: sleep_ms returns asyncio's SingletonGenerator (an
        # iterator, though the type stubs call it a coroutine), whose step queues the task
        return next(_sleep(_POLL_MS))  # type: ignore[call-overload]
except AttributeError:  # CPython: same names, monotonic milliseconds; a bare yield
    def _ms():
        return int(time.monotonic() * 1000)

    def _diff(a, b):
        return a - b

    def _pause():
        return None


def crc16(buf, n):
    # CRC-16/MODBUS of buf[0:n]: reflected poly 0xA001, init 0xFFFF; sent low byte first
    c = 0xFFFF
    for i in range(n):
        c ^= buf[i]
        for _ in range(8):
            if c & 1:
                c = (c >> 1) ^ 0xA001
            else:
                c >>= 1
    return c


def _expect(r):
    # the length of the reply whose first 3 bytes are in r, from its function code
    f = r[1]
    if f & 0x80:
        return 5                    # exception: addr fc code CRC
    if f < 5:
        return 5 + r[2]             # FC01-04: addr fc count data CRC
    if f == 0x42:
        return 4                    # PZEM reset: the echo
    return 8                        # FC05/06/15/16: the echo of address and value/count


def _regs(bus, n):
    # parse of read_regs: the registers of an FC03/04 reply as a list, or None
    if not n:
        return None
    out = [0] * (bus.rx[2] // 2)
    for i in range(len(out)):
        out[i] = bus.reg(i)
    return out


def _ok(bus, n):
    # parse of write_regs: the slave confirmed
    return n > 0


class Bus:
    def __init__(self, uart, timeout_ms=200):
        self.uart = uart
        self.timeout_ms = timeout_ms
        self.tx = bytearray(_TXLEN)     # the request: its address and function code are tx[0:2]
        self.rx = bytearray(_RXLEN)
        self.txm = memoryview(self.tx)
        self.b1 = bytearray(1)          # the byte being received
        self.crc_errors = 0
        self.timeouts = 0
        self.exceptions = 0
        self.last_exc = 0
        self.err = 0                # the last transfer: 0 answered, -1 timeout, -2 bad reply,
        #                             else the slave's exception code
        self.foreign = 0            # whole frames from another address (late replies) skipped
        self.t_idle = _ms()
        # the transfer in flight: phase (0 none, 1 waiting for the line's silence, 2 for the
        # reply), request length, parse(bus, n), bytes got, ms of the request or the last byte
        self.ph = self.n = self.got = self.last = 0
        self.parse = None

    def xfer(self, addr, fc, a, b, vals, parse=None):
        """Start a transfer; await the bus for its result: parse(bus, n) when given, else n, the
        reply's length in rx (0: none, a bad reply or an exception)."""
        self.n = self._frame(addr, fc, a, b, vals)
        self.parse = parse
        self.ph = 1
        return self

    def read_regs(self, addr, fc, start, count):
        """FC03/04 -> awaitable: list of count ints, or None. ValueError beyond 1..29."""
        if not 0 < count <= (_RXLEN - 5) // 2:
            raise ValueError("1..29 registers")
        return self.xfer(addr, fc, start, count, None, _regs)

    def write_regs(self, addr, start, values):
        """FC16 -> awaitable: True when the slave confirmed start and count. ValueError beyond
        1..15 values."""
        if not 0 < len(values) <= (_TXLEN - 9) // 2:
            raise ValueError("1..15 values")
        return self.xfer(addr, 16, start, len(values), values, _ok)

    def reg(self, i):
        """Register i of the last FC03/04 reply (high byte first)."""
        return self.rx[3 + 2 * i] << 8 | self.rx[4 + 2 * i]

    def __iter__(self):
        return self

    def __next__(self):
        n = self._poll()
        if n < 0:
            return _pause()
        self.ph = 0
        p = self.parse
        raise StopIteration(p(self, n) if p else n)

    def _frame(self, addr, fc, a, b, vals):
        # Build addr fc [a_hi a_lo b_hi b_lo [2n v...]] CRC in tx (a < 0: no fields, FC 0x42);
        # returns its length
        t = self.tx
        t[0] = addr
        t[1] = fc
        n = 2
        if a >= 0:
            t[2] = a >> 8
            t[3] = a & 0xFF
            t[4] = b >> 8
            t[5] = b & 0xFF
            n = 6
            if vals is not None:
                k = len(vals)
                t[6] = 2 * k
                n = 7
                for i in range(k):
                    v = vals[i]
                    t[n] = v >> 8 & 0xFF
                    t[n + 1] = v & 0xFF
                    n += 2
        c = crc16(t, n)
        t[n] = c & 0xFF
        t[n + 1] = c >> 8
        return n + 2

    def _poll(self):
        # One look at the line for the transfer in flight: -1 while it goes on, else the reply's
        # length in rx (0: none or bad). Called by __next__, so its state is in self, not in a
        # coroutine's frame.
        u = self.uart
        r = self.rx
        now = _ms()
        if self.ph == 1:
            if 0 <= _diff(now, self.t_idle) < _SILENCE_MS:
                return -1               # the line's 3.5-character silence since the last frame
            b1 = self.b1
            for _ in range(256):        # drain stale input (late replies, noise)
                if not u.readinto(b1):
                    break
            u.write(self.txm[:self.n])
            self.ph = 2
            self.last = now
            self.got = 0
            return -1
        got = self.got
        need = _expect(r) if got > 2 else 0
        b1 = self.b1
        # a byte at a time into a byte kept for it: read(n) would make a heap object each poll
        while got < _RXLEN and u.readinto(b1):
            r[got] = b1[0]
            got += 1
            self.last = now
            if not need and got > 2:
                need = _expect(r)
            if need and got >= need:
                if r[0] == self.tx[0] or crc16(r, need - 2) != (r[need - 2] | r[need - 1] << 8):
                    break
                # a whole valid frame from another slave (a late reply): not ours and not our
                # slave's fault; keep waiting for ours
                self.foreign += 1
                got -= need
                r[0:got] = r[need:need + got]
                need = _expect(r) if got > 2 else 0
        self.got = got
        if got < _RXLEN and not (need and got >= need):
            if _diff(now, self.last) < (_GAP_MS if got else self.timeout_ms):
                return -1               # more to come, or the reply not yet begun
            if not got:
                self.timeouts += 1
                self.err = -1
                self.t_idle = now
                return 0
        self.t_idle = now
        return self._reply(self.tx[0], self.tx[1], got, need)

    def _reply(self, addr, fc, got, need):
        # got bytes in rx: their length if they are the valid answer to the request in tx,
        # else 0 (a bad CRC and an exception reply are counted)
        r = self.rx
        t = self.tx
        if need and got > need:
            got = need              # ignore trailing bytes
        self.err = -2
        if got < 4 or crc16(r, got - 2) != (r[got - 2] | r[got - 1] << 8):
            self.crc_errors += 1
            return 0
        if r[0] != addr or r[1] & 0x7F != fc:
            return 0                # not the reply to this request
        if r[1] & 0x80:
            self.exceptions += 1
            self.last_exc = self.err = r[2]
            return 0
        if fc < 5:
            if got != 5 + r[2] or r[2] != 2 * (t[4] << 8 | t[5]):
                return 0            # not the registers asked for
        elif fc != 0x42 and (got != 8 or r[2] != t[2] or r[3] != t[3] or r[4] != t[4] or
                             r[5] != t[5]):
            return 0                # FC05/06/15/16: the echo of address/register, value/count
        self.err = 0
        return got


if not hasattr(asyncio, "sleep_ms"):
    setattr(Bus, "__await__", Bus.__iter__)    # CPython awaits through __await__
