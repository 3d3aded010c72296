# Modbus RTU master over a UART-like object: write(buf), read(n) -> bytes|None (non-blocking), any().
# One request at a time (a busy flag); never blocks: polls the UART and sleeps 2 ms between polls.
# Preallocated frame buffers; the only allocations per request are the UART's read() result and the
# list read_regs() returns. Runs on the ESP8266, the MicroPython unix port and CPython (host tests).
import asyncio
import time

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

try:
    _ms = time.ticks_ms
    _diff = time.ticks_diff
    _sleep = asyncio.sleep_ms
except AttributeError:  # CPython: same names, monotonic milliseconds
    def _ms():
        return int(time.monotonic() * 1000)

    def _diff(a, b):
        return a - b

    def _sleep(ms):
        return asyncio.sleep(ms / 1000)

_SILENCE_MS = const(5)   # >= t3.5 (3.65 ms at 9600 8N1) between frames
_GAP_MS = const(10)      # no byte for this long ends a reply of unknown/short length
_POLL_MS = const(2)
_RXLEN = const(64)       # FC03/04 replies up to 29 registers
_TXLEN = const(40)       # FC16 requests up to 15 registers


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


class Bus:
    def __init__(self, uart, timeout_ms=200):
        self.uart = uart
        self.timeout_ms = timeout_ms
        self.busy = False          # one transfer at a time (asyncio.Lock costs ~350 B of heap)
        self.tx = bytearray(_TXLEN)
        self.rx = bytearray(_RXLEN)
        self.txm = memoryview(self.tx)
        self.crc_errors = 0
        self.timeouts = 0
        self.exceptions = 0
        self.last_exc = 0
        self.foreign = 0            # whole frames from another address (late replies) skipped
        self.t_idle = _ms()

    def _frame(self, addr, fc, a, b, vals):
        # Build addr fc [a_hi a_lo b_hi b_lo [2n v...]] CRC in tx (a < 0: no fields, FC 0x42);
        # returns its length. Kept out of _xfer: a coroutine's locals live in a heap object that
        # every transfer allocates, a plain function's on the stack (docs/benchmarks.md, 0)
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

    async def _xfer(self, addr, fc, a, b, vals):
        # Send the request (_frame), receive the reply into rx. Returns the reply length, 0 for
        # none/bad/exception. Callers parse rx right after the await returns (no await in
        # between), so the busy flag only needs to cover the transfer itself.
        # Also called by pzem_setup.py (REPL only) for FC06 and the bare FC 0x42 request.
        while self.busy:              # another task's transfer: wait for the bus
            await _sleep(_POLL_MS)
        self.busy = True
        try:
            r = self.rx
            u = self.uart
            n = self._frame(addr, fc, a, b, vals)
            d = _diff(_ms(), self.t_idle)
            if 0 <= d < _SILENCE_MS:
                await _sleep(_SILENCE_MS - d)
            while u.any():          # drain stale input (late replies, noise)
                if not u.read(_RXLEN):
                    break
            u.write(self.txm[:n])
            t0 = _ms()
            last = t0
            got = 0
            need = 0
            while got < _RXLEN:
                if u.any():
                    s = u.read(_RXLEN - got)
                    if s:
                        k = len(s)
                        r[got:got + k] = s
                        got += k
                        last = _ms()
                        if not need and got > 2:
                            need = _expect(r)
                        if need and got >= need:
                            if r[0] == addr or crc16(r, need - 2) != (
                                    r[need - 2] | r[need - 1] << 8):
                                break
                            # a whole valid frame from another slave (a late reply): not
                            # ours and not our slave's fault; keep waiting for ours
                            self.foreign += 1
                            got -= need
                            r[0:got] = r[need:need + got]
                            need = 0
                        continue
                now = _ms()
                if got:
                    if _diff(now, last) >= _GAP_MS:
                        break
                elif _diff(now, t0) >= self.timeout_ms:
                    self.timeouts += 1
                    self.t_idle = now
                    return 0
                await _sleep(_POLL_MS)
            self.t_idle = _ms()
            return self._reply(addr, fc, got, need)
        finally:
            self.busy = False

    def _reply(self, addr, fc, got, need):
        # got bytes in rx: their length if they are the valid answer to the request in tx,
        # else 0 (a bad CRC and an exception reply are counted)
        r = self.rx
        t = self.tx
        if need and got > need:
            got = need              # ignore trailing bytes
        if got < 4 or crc16(r, got - 2) != (r[got - 2] | r[got - 1] << 8):
            self.crc_errors += 1
            return 0
        if r[0] != addr or r[1] & 0x7F != fc:
            return 0                # not the reply to this request
        if r[1] & 0x80:
            self.exceptions += 1
            self.last_exc = r[2]
            return 0
        if fc < 5:
            return got if got == 5 + r[2] else 0
        if fc == 0x42:
            return got
        # FC05/06/15/16 reply echoes address/register and value/count
        if got != 8 or r[2] != t[2] or r[3] != t[3] or r[4] != t[4] or r[5] != t[5]:
            return 0
        return got

    async def read_regs(self, addr, fc, start, count):
        # FC03/04 -> list of count ints, or None
        if not 0 < count <= (_RXLEN - 5) // 2:
            return None
        if not await self._xfer(addr, fc, start, count, None):
            return None
        r = self.rx
        if r[2] != 2 * count:
            return None
        out = [0] * count
        for i in range(count):
            out[i] = r[3 + 2 * i] << 8 | r[4 + 2 * i]
        return out

    async def write_regs(self, addr, start, values):
        # FC16 -> True when the slave confirmed start and count
        if not 0 < len(values) <= (_TXLEN - 9) // 2:
            return False
        return await self._xfer(addr, 16, start, len(values), values) > 0
