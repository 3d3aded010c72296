# Pure decisions: EV current each control tick, the off-peak plan for a departure time, and
# demand-response advice. No clock reads, no I/O: callers pass times and readings in, so tests
# feed numbers. Times are integer seconds; "local" seconds = UTC seconds + the fixed tz offset
# (the meter uses no DST). Peak windows are a flat tuple of local minutes (start0, end0, ...),
# a window with start > end crosses midnight. Integer arithmetic except for the battery taper's
# log/exp (the ESP8266 has 30-bit floats: ~0.1 s on a day's plan).
from math import exp, log

# plan() result indices
P_OK = 0        # EV reaches 100 % by the target on off-peak time alone
P_FULL = 1      # UTC second it is full on that plan, -1 = not by the target
P_MIN = 2       # charging minutes needed to full at the off-peak power, -1 = no power left
P_SOC = 3       # SOC % reached at the target
P_SHED_SOC = 4  # the same with the non-critical loads switched off
P_SHED_FULL = 5
P_EM_SOC = 6    # emergency charging from now at full charger power (all hours count)
P_EM_FULL = 7
P_EM_COST = 8   # extra cost of the emergency energy over the off-peak price (currency)
P_TRIP = 9      # bit 1: accept covers the trip need, 2: shed covers it, 4: emergency covers it


def is_peak(minute, win):
    """Is local minute-of-day `minute` inside any peak window?"""
    for i in range(0, len(win), 2):
        s = win[i]
        e = win[i + 1]
        if (s <= minute < e) if s < e else (minute >= s or minute < e):
            return True
    return False


def allocate(t_s, house_w, limit_w, volt_v, cur_a, ok_since, c, blocked):
    """EV current for this tick, in whole amps, and the updated `ok_since`.

    t_s: a monotonic second count (works without a valid clock). house_w: household load, i.e.
    the whole supply minus the EV's own power. limit_w: the limit that applies now (sanctioned,
    a lower DR limit, or the breaker limit in emergency). cur_a: the current commanded last tick.
    ok_since: t_s since when the headroom has been enough to restart, -1 if it is not.
    c: the "charger" config dict. blocked: charging is not allowed now (peak without emergency,
    no valid clock, no EV, a fault).

    Cut down at once, ramp up by ramp_a_per_s per tick, pause below the IEC 61851 minimum, and
    after a pause restart only when headroom for min + 0.5 A has held for restart_hold_s.
    """
    per_a = volt_v * c["phases"]
    room_w = limit_w - house_w
    avail_a = room_w // per_a if room_w > 0 else 0
    if avail_a > c["max_a"]:
        avail_a = c["max_a"]
    min_a = c["min_a"]
    if 2 * room_w >= (2 * min_a + 1) * per_a:
        if ok_since < 0 or ok_since > t_s:
            ok_since = t_s
    else:
        ok_since = -1
    if blocked or avail_a < min_a:
        return 0, ok_since
    if cur_a < min_a:
        # paused: restart at the minimum once the headroom has held long enough
        if ok_since < 0 or t_s - ok_since < c["restart_hold_s"]:
            return 0, ok_since
        return min_a, ok_since
    if avail_a <= cur_a:
        return avail_a, ok_since
    up = cur_a + c["ramp_a_per_s"]
    return (up if up < avail_a else avail_a), ok_since


def trip_need_pct(km, wh_per_km, reserve_pct, capacity_wh):
    """SOC % the next trip needs: its energy plus the reserve, rounded up, at most 100."""
    if km <= 0:
        return 0
    pct = -(-km * wh_per_km * 100 // capacity_wh) + reserve_pct
    return 100 if pct > 100 else pct


def _walk(t, end, win, need_s, peak_ok):
    # Walk local seconds [t, end) segment by segment between window boundaries. Returns the
    # charging seconds available (off-peak only unless peak_ok) and the local second at which
    # need_s of them have passed (-1 if never).
    got = 0
    full = -1 if need_s > 0 else t
    while t < end:
        sod = t % 86400
        step = 86400 - sod
        for b in win:
            d = b * 60 - sod
            if 0 < d < step:
                step = d
        seg_end = t + step
        if seg_end > end:
            seg_end = end
        if peak_ok or not is_peak(sod // 60, win):
            seg = seg_end - t
            if full < 0 and got + seg >= need_s:
                full = t + need_s - got
            got += seg
        t = seg_end
    return got, full


def _case(t, end, win, need_cwh, cap_wh, soc, power_w, eff_pct, peak_ok, acc_w, tp, fl):
    # -> (soc reached at end, local full second or -1, seconds needed or -1, grid Wh drawn)
    # Up to tp % the battery takes power_w; above it the vehicle accepts at most acc_w falling
    # linearly to fl % of it at 100 % (the taper most cars show on AC), so the charge rate is
    # min(power_w, acc_w * f(soc)): the taper seconds come from its integral in closed form.
    # tp = 100 or fl = 100: no taper, exact integer arithmetic. need_cwh: the energy to full in
    # hundredths of a Wh, (100 - soc) x capacity, exact (rounded down it said full too early)
    if need_cwh <= 0:
        return 100, t, 0, 0
    if power_w <= 0:
        return soc, -1, -1, 0
    gain = power_w * eff_pct            # battery Wh per hour, times 100
    if tp < 100 and fl < 100:
        k = 3600.0 * cap_wh / eff_pct   # seconds per percent at 1 W
        c = (100 - fl) / (100.0 * (100 - tp))   # acceptance lost per percent above tp
        xc = tp + (1 - power_w / acc_w) / c     # power_w <= acc_w: above xc the car limits
        if xc > 100:
            xc = 100
        u = soc if soc > xc else xc
        bulk = (xc - soc) * k / power_w if soc < xc else 0.0
        need_s = int(bulk + k / (acc_w * c) * log((1 - c * (u - tp)) / (fl / 100.0))) + 1
    else:
        need_s = -(-need_cwh * 3600 // gain)
    got, full = _walk(t, end, win, need_s, peak_ok)
    if full >= 0:
        return 100, full, need_s, -(-need_cwh // eff_pct)
    if tp < 100 and fl < 100 and got > bulk:
        # on the taper: invert the integral for the SOC after the remaining seconds
        x = tp + (1 - (1 - c * (u - tp)) * exp((bulk - got) * acc_w * c / k)) / c
        reach = int(x)
        return (reach if reach < 100 else 99), -1, need_s, (reach - soc) * cap_wh // eff_pct
    reach = soc + got * gain // (3600 * cap_wh)
    return (reach if reach < 100 else 99), -1, need_s, got * power_w // 3600


def plan(now, target_min, soc, house_w, shed_w, trip_pct, cfg):
    """Can the EV be full by the next `target_min` (local minute of day)?

    now: UTC seconds. soc: current SOC %. house_w: the running household load, assumed to go on.
    shed_w: power of the non-critical loads now on, which the "shed" alternative frees.
    trip_pct: SOC % the next trip needs (0 = none); P_TRIP says which options cover it.
    The target instant is the first local HH:MM:00 at or after now (equal to now leaves no time).
    Returns a tuple indexed by the P_* constants; times are UTC seconds.
    """
    off = cfg["tz_offset_min"] * 60
    t = now + off
    end = t - t % 86400 + target_min * 60
    if end < t:
        end += 86400
    win = cfg["_win"]
    c = cfg["charger"]
    v = cfg["voltage_v"]
    bat = cfg["battery"]
    cap = bat["capacity_wh"]
    tp = bat["taper_soc_pct"]
    eff = cfg["_eff_pct"]
    need = (100 - soc) * cap if soc < 100 else 0     # Wh x 100, exact
    lim = cfg["sanctioned_w"]
    per_a = v * c["phases"]
    r = []
    # accept: what the limit leaves; shed: plus the non-critical loads, which free at most what
    # the household draws; emergency: the breaker
    if shed_w > house_w:
        shed_w = house_w
    for room in (lim - house_w, lim - house_w + shed_w, cfg["breaker_w"] - house_w):
        amps = room // per_a if room > 0 else 0
        if amps > c["max_a"]:
            amps = c["max_a"]
        r.append(_case(t, end, win, need, cap, soc, amps * per_a if amps >= c["min_a"] else 0,
                       eff, len(r) == 2, c["max_a"] * per_a, tp, bat["taper_floor_pct"]))
    a, s, e = r
    pr = cfg["price"]
    cost = e[3] * (pr["emergency"] - pr["offpeak"]) / 1000
    trip = 0
    for i, r in enumerate((a, s, e)):
        if r[0] >= trip_pct:
            trip |= 1 << i
    return (a[1] >= 0, a[1] - off if a[1] >= 0 else -1, -(-a[2] // 60) if a[2] >= 0 else -1,
            a[0], s[0], s[1] - off if s[1] >= 0 else -1, e[0], e[1] - off if e[1] >= 0 else -1,
            cost if cost > 0 else 0, trip)


def advice(peak, loads_on, cfg):
    """In a peak window (or a DR event): which non-critical loads that are on should go off.

    loads_on: bitmask of loads switched on. Returns (bitmask to switch off, watts it saves).
    """
    if not peak:
        return 0, 0
    m = loads_on & cfg["_noncrit"]
    w = 0
    for i, ld in enumerate(cfg["loads"]):
        if m >> i & 1:
            w += ld["rated_w"]
    return m, w


def spread(t, end, win, need_cwh, eff_pct, per_a, c, rnd, cur_a):
    """Fleet-friendly pace: a cap on the EV current for this tick, 0 = wait (docs/grid.md).

    The lowest whole amps that fill the battery by the departure on the off-peak time left
    less 1/32 of it and 10 min, at least min_a. A car that needs less than min_a would be full
    early: a paused charger waits until rnd % (0..99, drawn once per session) of that slack,
    counted from the last peak window's end, has passed, so a street's short charges spread
    over the night instead of all starting as the window ends. t, end: local s now and at the
    departure; need_cwh: energy the battery still takes, Wh x 100; max_a when time is short.
    """
    if need_cwh <= 0:
        return 0
    left = _walk(t, end, win, 0, False)[0]
    left = (left - left // 32 - 600) // 60
    lo = c["min_a"]
    hi = c["max_a"]
    if left <= 0:
        return hi
    g = need_cwh // eff_pct + 1
    a = -(-g * 60 // (per_a * left))
    if a >= hi:
        return hi
    if cur_a < lo and win:
        m = t // 60
        since = 1440
        for i in range(1, len(win), 2):
            d = (m - win[i]) % 1440
            if d < since:
                since = d
        if since * 100 < rnd * (left + since - g * 60 // (per_a * lo)):
            return 0
    return a if a > lo else lo
