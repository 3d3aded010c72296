# oled.panel and oled.show over an I2C that records what the SSD1306 is sent: the real ssd1306
# driver's power-up, the 64-row settings, then for each screen the whole-screen addressing and
# 8 writes of one line, which must add up to the frame a full 128x64 framebuffer gives for the
# same lines. Runs on the MicroPython unix port and the board twin (framebuf is built in):
#   MICROPYPATH=firmware:build/lib micropython THIS      -> prints "ALL OK"
import sys

import framebuf

import oled


class Rec:
    # an I2C that records each write: ("c", command bytes) for Co=1 single commands and command
    # streams (control byte 0x80 or 0x00), ("d", data) for data writes (0x40, or the driver's
    # writevto)
    def __init__(self, answers=True):
        self.ops = []
        self.answers = answers

    def writeto(self, addr, buf):
        if not self.answers:
            raise OSError(19)       # ENODEV: nothing acknowledged the address
        assert addr == 0x3C, addr
        if buf[0] == 0x40:
            self.ops.append(("d", bytes(buf[1:])))
        else:
            self.ops.append(("c", bytes(buf[1:])))

    def writevto(self, addr, bufs):
        self.ops.append(("d", bytes(bufs[1])))


def reference(lines):
    buf = bytearray(1024)
    fb = framebuf.FrameBuffer(buf, 128, 64, framebuf.MONO_VLSB)
    for i, s in enumerate(lines[:8]):
        fb.text(s, 0, 8 * i, 1)
    return bytes(buf)


def frame(rec):
    # the 8 data writes after the last whole-screen addressing stream
    ops = rec.ops
    last = max(i for i, op in enumerate(ops) if op == ("c", b"\x21\x00\x7f\x22\x00\x07"))
    data = [op[1] for op in ops[last + 1:]]
    assert len(data) == 8 and all(len(d) == 128 for d in data), [len(d) for d in data]
    assert all(op[0] == "d" for op in ops[last + 1:])
    return b"".join(data)


assert oled.panel(Rec(answers=False)) is None
assert "ssd1306" not in sys.modules
rec = Rec()
pn = oled.panel(rec)
assert "ssd1306" not in sys.modules         # the driver is dropped once the panel is up
cmds = b"".join(op[1] for op in rec.ops if op[0] == "c")
assert b"\xaf" in cmds                      # the driver switched the display on
assert rec.ops[-1] == ("c", b"\xa8\x3f\xda\x12"), rec.ops[-1]   # then 64 rows, COM pins 0x12
for lines in (["12:00 off-peak", "P 1234W", "H 1000 EV 234", "Lim 5000W", "Day 1.23kWh",
               " bill 4", "Mon 12.34kWh", " bill 45"],
              ("FAULT clock", "no advice"),
              ["EV C 16A 3680W", "", "x" * 16, "", "", "", "", "", "dropped: 9th line"]):
    oled.show(pn, lines)
    got = frame(rec)
    assert got == reference(lines), lines
    assert got != bytes(1024)
text = "CONFIG charger.max_a: want an integer 6..80 (got 'x')"
oled.fatal(pn, text)
assert frame(rec) == reference([text[i:i + 16] for i in range(0, len(text), 16)])
print("ALL OK")
