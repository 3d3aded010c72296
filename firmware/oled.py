# OLED pages on the SSD1306 driver (the real one on the board, the same driver on a fake I2C on
# the host). 128x64 px = 16 characters x 8 lines.
# Page 0: power and energy. Page 1: EV state, SOC and plan. Page 2: peak advice and faults.
# A fault replaces the first line of every page; a reading that missed its last read says "old";
# every line fits the 16 characters (nothing is cut).
# The driver is made 8 rows high (board.display): its buffer holds one text line (128 B, not a
# 1 KB frame; docs/benchmarks.md section 0) and show() sends the screen a line at a time.
import meter
import scheduler
import state as S

_EV = "?ABCDE"


def _hm(t, off):
    # UTC seconds -> local "HH:MM"
    m = (t + off) // 60 % 1440
    return "%02d:%02d" % (m // 60, m % 60)


def _kwh(wh):
    return "%d.%02d" % (wh // 1000, wh % 1000 // 10)


def draw(fb, st, cfg, page):
    show(fb, page_lines(st, cfg, page))


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
        elif st.ev_state in (2, 3, 4):
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


def show(fb, lines):
    """The 8 lines of the screen through the driver's one-line buffer. Horizontal addressing over
    columns 0-127 and pages 0-7: after a page's 128th column the panel moves on to the next page,
    so 8 writes of 128 B fill the screen top to bottom."""
    for c in (0x21, 0, 127, 0x22, 0, 7):    # column address 0..127, page address 0..7
        fb.write_cmd(c)
    for i in range(8):
        fb.fill(0)
        if i < len(lines):
            fb.text(lines[i], 0, 0, 1)
        fb.write_data(fb.buffer)


def fatal(fb, text):
    """A config or boot error, wrapped over the screen."""
    show(fb, [text[i:i + 16] for i in range(0, min(len(text), 112), 16)])
