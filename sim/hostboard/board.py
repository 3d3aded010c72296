# Host board for the MicroPython unix port: the same names as firmware/board.py, backed by the
# simulation. It sits before the firmware on sys.path, so the firmware image runs unchanged.
#   UART    -> the emulator's pseudo-terminal (raw, VMIN=0: reads never block)
#   relays  -> $SIM_DIR/relays ("<pin> <0|1>" lines) for the emulator and the harness
#   OLED    -> oled.panel (the real ssd1306 driver's power-up) on a fake I2C that saves frames to
#              $SIM_DIR/oled.bin
#   clock   -> the shared simulated clock (docs/architecture.md), $SIM_CLOCK=none: never valid,
#              $SIM_CLOCK=<s>: valid only after s simulated seconds
#   WDT     -> none: the harness reads the control task's tick gaps from the report lines
# It costs about what firmware/board.py costs on a board (docs/benchmarks.md, section 0): the
# twin's RAM figures count it in place of the real one.
import asyncio
import os
import sys
import termios
import time

_DIR = os.getenv("SIM_DIR") or "sim/run"
CONFIG = os.getenv("SIM_CONFIG") or "firmware/config.json.example"
STORE = _DIR + "/store"
NTP = int(os.getenv("SIM_NTP_PORT") or 0)   # the NTP stand-in's UDP port (sim/ntp_standin.py)
SPEED = float(os.getenv("SIM_SPEED") or "1")


def _ms(text):
    # "1764835200.123" -> integer ms, parsed as text: a 30-bit float (the ESP8266's and the board
    # twin's) cannot hold a unix time to the second
    s, _, f = text.partition(".")
    return int(s) * 1000 + int((f + "000")[:3])


# The shared simulated clock (docs/architecture.md) in integers only: real ms since SIM_ANCHOR
# are ticks since import + the offset at import (long ints once, here; small ints after).
_T0 = time.ticks_ms()
_NOW_MS = time.time_ns() // 1000000
_REAL0_MS = _NOW_MS - (_ms(os.getenv("SIM_ANCHOR")) if os.getenv("SIM_ANCHOR") else _NOW_MS)
# SIM_EPOCH (UTC s since 1970) -> the meter's epoch, seconds since 2000
_EPOCH = (_ms(os.getenv("SIM_EPOCH")) // 1000 if os.getenv("SIM_EPOCH") else _NOW_MS // 1000) \
    - 946684800
del _NOW_MS
_SPD = int(SPEED) if SPEED == int(SPEED) else 0     # integer speeds use integer arithmetic
_CLOCK = os.getenv("SIM_CLOCK") or "ok"
_VALID_S = 0 if _CLOCK in ("ok", "none") else int(_ms(_CLOCK) // 1000)
del _ms
_relays = {}


def _nop(*a):
    # safe_mode (never on the host), wifi (always up)
    return None


# feed and watchdog too: the harness watches the control task's tick gaps (report lines)
safe_mode = wifi = feed = watchdog = _nop
_WRAP = 1000000000     # simulated ms wrap here (small ints on a 31-bit build)


def ticks_diff(a, b):
    d = (a - b) % _WRAP
    return d - _WRAP if d >= _WRAP // 2 else d


class Pty:
    # machine.UART subset over the pty: write(buf), readinto(buf) -> bytes read (0: none; the pty
    # is raw with VMIN=0, so reads never wait), close() (also used by host_tests/mp_bus_check.py)
    def __init__(self, path):
        f = open(path, "r+b", buffering=0)
        # bound once, no class methods: a method costs ~70 B of heap on the board
        self.write = f.write
        self.readinto = f.readinto
        self.close = f.close
        fd = f.fileno()
        termios.setraw(fd)
        a = termios.tcgetattr(fd)
        a[6][6] = 0     # VMIN: reads return what is there
        a[6][5] = 0     # VTIME: no inter-byte wait
        termios.tcsetattr(fd, termios.TCSANOW, a)


def uart():
    with open(_DIR + "/bus") as f:
        return Pty(f.read().strip())


class _I2C:
    # what oled.panel and oled.show send: the driver's power-up (ignored), then for each frame the
    # whole-screen addressing command stream and 8 lines of 0x40 + 128 B, saved as one 1 KB frame,
    # $SIM_DIR/oled.bin (MONO_VLSB)
    n = -1                          # lines of the frame written so far, -1 outside a frame

    def writeto(self, addr, buf):
        n = self.n
        if buf[0] == 0x40 and n >= 0:
            with open(_DIR + "/oled.tmp", "ab" if n else "wb") as f:
                f.write(memoryview(buf)[1:])
            n += 1
            if n == 8:
                n = -1
                os.rename(_DIR + "/oled.tmp", _DIR + "/oled.bin")
            self.n = n
        elif buf == b"\x00\x21\x00\x7f\x22\x00\x07":
            self.n = 0

    def writevto(self, addr, bufs):
        pass                        # the driver's own clear at power-up: not a frame


def i2c():
    return _I2C()


def relay(pin, on):
    v = 1 if on else 0
    if _relays.get(pin) == v:
        return
    _relays[pin] = v
    with open(_DIR + "/relays.tmp", "w") as f:
        for p in _relays:
            f.write("%d %d\n" % (p, _relays[p]))
    os.rename(_DIR + "/relays.tmp", _DIR + "/relays")


def _real_ms():
    return time.ticks_diff(time.ticks_ms(), _T0) + _REAL0_MS


def utc():
    """Simulated UTC seconds since 2000, or 0 while the clock is not valid (SIM_CLOCK)."""
    # the harness anchors its clock a second after it sets up, and a meter that boots within
    # that second must not read "no clock": before the anchor the time stands at the start
    r = _real_ms()
    if r < 0:
        r = 0
    # split so that no product leaves the small ints
    t = r // 1000 * _SPD + r % 1000 * _SPD // 1000 if _SPD else int(r * SPEED / 1000)
    if _CLOCK == "none" or t < _VALID_S:
        return 0
    return _EPOCH + t


def ticks_ms():
    # simulated ms since SIM_ANCHOR, wrapping at _WRAP (ticks_diff above)
    r = _real_ms()
    if _SPD:
        return ((r // 1000 * _SPD % (_WRAP // 1000)) * 1000 + r % 1000 * _SPD) % _WRAP
    return int(r * SPEED) % _WRAP


def sleep(ms):
    # periods are simulated milliseconds; never below 1 real ms so the bus keeps up
    ms = int(ms / SPEED)
    return asyncio.sleep_ms(ms if ms > 0 else 1)


def wifi_ok():
    return True


def set_utc(t):
    # the simulated clock stays the authority; the harness checks that the NTP answer clock.py
    # took (UTC s since 2000) is the simulated time (sim/run.py, summary "ntp_syncs")
    try:
        report('{"ntp":%d,"utc":%d}' % (t, utc()))
    except MemoryError:
        pass


REPORT = True       # status lines on stdout for the harness


def report(line):
    sys.stdout.write(line)
    sys.stdout.write("\n")


def reset():
    sys.exit(3)
