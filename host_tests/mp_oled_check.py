# oled.show on the real ssd1306 driver made 8 rows high (as both board modules make it): the 8
# writes of one-line buffers must add up to the frame a full 128x64 framebuffer gives for the
# same lines. Runs on the MicroPython unix port (framebuf is built in):
#   MICROPYPATH=firmware:build/lib micropython THIS      -> prints "ALL OK"
import framebuf
import ssd1306

import oled


class Rec:
    # an I2C that records commands (Co=1 writes) and data (writevto) in order
    def __init__(self):
        self.ops = []

    def writeto(self, addr, buf):
        self.ops.append(("c", buf[1]))

    def writevto(self, addr, bufs):
        self.ops.append(("d", bytes(bufs[1])))


def reference(lines):
    buf = bytearray(1024)
    fb = framebuf.FrameBuffer(buf, 128, 64, framebuf.MONO_VLSB)
    for i, s in enumerate(lines[:8]):
        fb.text(s, 0, 8 * i, 1)
    return bytes(buf)


def frame(rec):
    # the data after the last page-address command (0x22), which oled.show sends first
    ops = rec.ops
    last = max(i for i, op in enumerate(ops) if op == ("c", 0x22))
    assert ops[last - 3:last + 3] == [("c", 0x21), ("c", 0), ("c", 127), ("c", 0x22),
                                      ("c", 0), ("c", 7)], ops[last - 3:last + 3]
    data = [op[1] for op in ops[last + 3:]]
    assert len(data) == 8 and all(len(d) == 128 for d in data), [len(d) for d in data]
    return b"".join(data)


rec = Rec()
d = ssd1306.SSD1306_I2C(128, 8, rec)
assert len(d.buffer) == 128
for lines in (["12:00 off-peak", "P 1234W", "H 1000 EV 234", "Lim 5000W", "Day 1.23kWh",
               " bill 4", "Mon 12.34kWh", " bill 45"],
              ("FAULT clock", "no advice"),
              ["EV C 16A 3680W", "", "x" * 16, "", "", "", "", "", "dropped: 9th line"]):
    oled.show(d, lines)
    got = frame(rec)
    assert got == reference(lines), lines
    assert got != bytes(1024)
text = "CONFIG charger.max_a: want an integer 6..80 (got 'x')"
oled.fatal(d, text)
assert frame(rec) == reference([text[i:i + 16] for i in range(0, len(text), 16)])
print("ALL OK")
