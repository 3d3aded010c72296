# OLED pages on the SSD1306 driver (the real one on the board, the same driver on a fake I2C on
# the host). 128x64 px = 16 characters x 8 lines.
# Page 0: power and energy. Page 1: EV state, SOC and plan. Page 2: peak advice and faults.
# A fault replaces the first line of every page; a reading that missed its last read says "old";
# every line fits the 16 characters (nothing is cut).
# The panel is started by its MicroPython driver (panel()), which is then dropped: what stays is
# the I2C bus and a one-line frame buffer (128 B, not a 1 KB frame; docs/benchmarks.md section 0),
# and show() sends the screen a line at a time.
import sys

import meter
import scheduler
import state as S

_EV = "?ABCDE"
_ADDR = 0x3C
# one SSD1306 command stream (control byte 0x00): horizontal addressing over columns 0-127 and
# pages 0-7, so that 8 writes of 128 B fill the screen top to bottom
_WHOLE_SCREEN = b"\x00\x21\x00\x7f\x22\x00\x07"


def panel(i2c):
    """Start the SSD1306 on `i2c` (128x64 at 0x3C) with the `ssd1306` driver's own power-up
    sequence, then drop the driver: the panel is (i2c, frame buffer of one text line, its
    129 B I2C write). None when nothing answers. The driver's classes would hold ~1.2 KB of
    heap for the meter's life (docs/benchmarks.md section 0); the panel needs none of them."""
    import framebuf
    try:
        import ssd1306
        # made 8 rows high: its own buffer is one line, and it powers the panel up and clears it
        ssd1306.SSD1306_I2C(128, 8, i2c)
        # the panel has 64 rows: multiplex ratio 64 and the COM pin setting of a 64-row panel
        i2c.writeto(_ADDR, b"\x00\xa8\x3f\xda\x12")
    except (OSError, ImportError):
        return None
    finally:
        sys.modules.pop("ssd1306", None)
    line = bytearray(129)
    line[0] = 0x40      # control byte: the 128 B that follow are display data
    return (i2c, framebuf.FrameBuffer(memoryview(line)[1:], 128, 8, framebuf.MONO_VLSB), line)


def _hm(t, off):
    # UTC seconds -> local "HH:MM"
    m = (t + off) // 60 % 1440
    return "%02d:%02d" % (m // 60, m % 60)


def _kwh(wh):
    return "%d.%02d" % (wh // 1000, wh % 1000 // 10)


def draw(pn, st, cfg, page):
    show(pn, page_lines(st, cfg, page))


def page_lines(st, cfg, page):
    """The text lines of a page (at most 8 are shown, each at most 16 characters)."""
    off = cfg["tz_offset_min"] * 60
    if page == 0:
        c = st.counters
        old = " old" if st.pzem_misses else ""
        lines = ("%s %s" % (_hm(st.now, off) if st.now else "--:--",
                            "PEAK" if st.peak else "off-peak"),
                 "P %dW%s" % (st.power_w, old),
                 "H %d EV %d" % (st.power_w - st.ev_power_w, st.ev_power_w) if not old
                 else "H ? EV ?",
                 "Lim %dW" % st.limit_w,
                 "Day %skWh" % _kwh(c[meter.C_DAY_OFF] + c[meter.C_DAY_PEAK] + c[meter.C_DAY_EM]),
                 " bill %d" % meter.bill(c, cfg, False),
                 "Mon %skWh" % _kwh(c[meter.C_MON_OFF] + c[meter.C_MON_PEAK] + c[meter.C_MON_EM]),
                 " bill %d" % meter.bill(c, cfg, True))
    elif page == 1:
        p = st.plan
        soc = "%d%%" % st.ev_soc_pct if st.ev_soc_pct >= 0 else "?"
        tgt = "%02d:%02d" % (st.target_min // 60, st.target_min % 60) if st.target_min >= 0 \
            else "--:--"
        lines = ["EV %s %dA %dW" % (_EV[st.ev_state], st.ev_current_a, st.ev_power_w)
                 if not st.ev_misses else "EV %s %dA old" % (_EV[st.ev_state], st.ev_current_a),
                 "SOC %s >%s" % (soc, tgt),
                 "Plan %s%s" % (S.CHOICES[st.choice], "+E" if st.emergency else "")]
        if p and st.ev_soc_pct < 0:
            # no SOC known: the charge energy the departure leaves time for
            g = p[scheduler.P_SOC] if not p[scheduler.P_OK] else 100
            lines.append("+%dkWh by %s" % (g * cfg["battery"]["capacity_wh"] // cfg["_eff_pct"]
                                            // 1000, tgt))
            lines.append("+%d%% of battery" % g)
        elif p:
            m = p[scheduler.P_MIN]
            lines.append("Full %s %dh%02d" % (_hm(p[scheduler.P_FULL], off), m // 60, m % 60)
                         if p[scheduler.P_OK] else "Reach %d%%" % p[scheduler.P_SOC])
            lines.append("Shed %d%% Em%d%%" % (p[scheduler.P_SHED_SOC], p[scheduler.P_EM_SOC]))
            t = p[scheduler.P_TRIP]
            lines.append("Trip A%s S%s E%s" % ("+" if t & 1 else "-", "+" if t & 2 else "-",
                                               "+" if t & 4 else "-"))
        elif 2 <= st.ev_state <= 4:
            lines.append("no plan: set" if st.target_min < 0 else "no plan")
            lines.append("departure" if st.target_min < 0 else "")
    else:
        lines = []
        if st.advice:
            lines.append("PEAK: switch off")
            w = 0
            for i, ld in enumerate(cfg["loads"]):
                if st.advice >> i & 1:
                    t = " %dW" % ld["rated_w"]
                    lines.append((" " + ld["name"])[:16 - len(t)] + t)
                    w += ld["rated_w"]
            lines.append("saves %dW" % w)
        else:
            lines.append("no advice")
        for i, n in enumerate(S.FAULT_NAMES):
            if st.faults >> i & 1:
                lines.append("FAULT " + n)
        if st.faults & S.F_CLOCK:
            lines.append("no time:EV held")
        if st.error:
            lines.append(st.error[:16])
    if st.faults:
        t = "FAULT"                     # the banner on top: the names that fit, + for more
        for i, n in enumerate(S.FAULT_NAMES):
            if st.faults >> i & 1:
                if len(t) + len(n) < 14:
                    t += " " + n
                elif t[-1] != "+":
                    t += "+"
        lines = (t,) + tuple(lines)
    return lines


def show(pn, lines):
    """The 8 lines of the screen through the panel's one-line buffer (see panel())."""
    i2c, fb, line = pn
    i2c.writeto(_ADDR, _WHOLE_SCREEN)
    for i in range(8):
        fb.fill(0)
        if i < len(lines):
            fb.text(lines[i], 0, 0, 1)
        i2c.writeto(_ADDR, line)


def fatal(pn, text):
    """A config or boot error, wrapped over the screen."""
    show(pn, [text[i:i + 16] for i in range(0, min(len(text), 112), 16)])
