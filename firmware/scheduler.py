# Pure decisions: EV current each control tick, the off-peak plan for a departure time, and
# demand-response advice. No clock reads, no I/O: callers pass times and readings in, so tests
# feed numbers. Times are integer seconds; "local" seconds = UTC seconds + the fixed tz offset
# (the meter uses no DST). Peak windows are a flat tuple of local minutes (start0, end0, ...),
# a window with start > end crosses midnight; the tariff calendar (day_windows) says which tuple
# a local day has (weekdays; weekends and holidays). Local days count from 2000-01-01, a Saturday.
# Integer arithmetic except for the battery taper's log/exp (the ESP8266 has 30-bit floats:
# ~0.1 s on a day's plan).
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


def day_windows(day, cfg):
    """Peak windows of local day `day` (days since 2000-01-01): the weekend/holiday ones on the
    configured weekend days and holidays, the weekday ones otherwise."""
    return cfg["_win_we"] if day_type(day, cfg) else cfg["_win"]


def allocate(t_s, house_w, limit_w, volt_v, cur_a, ok_since, c, blocked, secs=1):
    """EV current for this tick, in whole amps, and the updated `ok_since`.

    t_s: a monotonic second count (works without a valid clock). house_w: household load, i.e.
    the whole supply minus the EV's own power. limit_w: the limit that applies now (sanctioned,
    a lower DR limit, or the breaker limit in emergency). cur_a: the current commanded last tick.
    ok_since: t_s since when the headroom has been enough to restart, -1 if it is not.
    c: the "charger" config dict. blocked: charging is not allowed now (peak without emergency,
    no valid clock, no EV, a fault).

    Cut down at once, ramp up by ramp_a_per_s per second (secs: whole seconds since the tick
    before, at least 1), pause below the IEC 61851 minimum, and after a pause restart only when
    headroom for min + 0.5 A has held for restart_hold_s.
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
    up = cur_a + c["ramp_a_per_s"] * secs
    return (up if up < avail_a else avail_a), ok_since


def trip_need_pct(km, wh_per_km, reserve_pct, capacity_wh):
    """SOC % the next trip needs: its energy plus the reserve, rounded up, at most 100."""
    if km <= 0:
        return 0
    pct = -(-km * wh_per_km * 100 // capacity_wh) + reserve_pct
    return 100 if pct > 100 else pct


SLOT_S = 1800      # the learned household load (meter.learn): half-hour slots, 48 a day per day
PROFILE_DAYS = 1   # type, 96 in all; the plan trusts a slot once it holds this many days: one
                   # night's load beats the plug-in reading (bench.month_offline --scen-dir)
FOLLOW_A = 1       # with a profile the plan counts the car this many amps below the headroom's
                   # whole amps: the profile holds half-hour means, the load moves within them
                   # and the car follows each step (cut at once, ramped back at ramp_a_per_s once
                   # its power held still for 1 s, a pause restarted after restart_hold_s)


def day_type(day, cfg):
    """1 on the configured weekend days and holidays, 0 on other days (local days since 2000)."""
    return 1 if day in cfg["_hol"] or cfg["_wkend"] >> (day + 5) % 7 & 1 else 0


def _house(t, t0, house_w, prof, cfg):
    # the household load the plan expects at local second t: the reading in the half-hour
    # running now (t0's), after it the learned load of that half-hour and day type once it
    # holds PROFILE_DAYS days (until then the other day type's, weekends learn slowly), else
    # the reading (docs/architecture.md "Learned household load")
    if prof is None or t // SLOT_S == t0 // SLOT_S:
        return house_w
    i = day_type(t // 86400, cfg) * 48 + t % 86400 // SLOT_S
    if prof[192 + i] < PROFILE_DAYS:
        i = (i + 48) % 96       # the same half-hour of the other day type, while this one learns
        if prof[192 + i] < PROFILE_DAYS:
            return house_w
    return prof[2 * i] | prof[2 * i + 1] << 8


def _power(room, c, per_a, m=0):
    # the EV power `room` W of headroom allows: whole amps, at most max_a, 0 below min_a; m amps
    # less while the headroom, not max_a, limits it (not below min_a): what following a
    # household load that moves within the half-hour costs (plan, FOLLOW_A)
    a = room // per_a if room > 0 else 0
    if a < c["min_a"]:
        return 0
    a -= m
    if a > c["max_a"]:
        a = c["max_a"]
    return (a if a > c["min_a"] else c["min_a"]) * per_a


def _taper(x, p, s, k, c, tp, acc_w):
    # Battery above tp %: the vehicle accepts at most acc_w falling linearly to fl % of it at
    # 100 % (the taper most cars show on AC), so the rate is min(p, acc_w * f(soc)) and its
    # integral has a closed form. From SOC x at grid power p: s < 0 -> seconds to 100 %; else
    # the SOC after s seconds (float, may be 100).
    xc = tp + (1 - p / acc_w) / c       # above xc the car, not the power, limits
    if xc > 100:
        xc = 100
    u = x if x > xc else xc
    bulk = (xc - x) * k / p if x < xc else 0.0
    if s < 0:
        return bulk + k / (acc_w * c) * log((1 - c * (u - tp)) / (1 - c * (100 - tp)))
    if s <= bulk:
        return x + s * p / k
    return tp + (1 - (1 - c * (u - tp)) * exp((bulk - s) * acc_w * c / k)) / c


def plan(now, target_min, soc, house_w, shed_w, trip_pct, cfg, hold=0, delay_s=0, prof=None):
    """Can the EV be full by the next `target_min` (local minute of day)?

    now: UTC seconds. soc: current SOC %. house_w: the household load now; after this half-hour
    the learned load of `prof` (meter.learn; None: house_w goes on all night). With a profile
    the car is counted FOLLOW_A amps below the whole amps the headroom allows (not below min_a,
    not where max_a limits it): a load that moves within the half-hour costs the car that much.
    shed_w: power of the non-critical loads now on, which the "shed" alternative frees (at most
    the household load of the moment). trip_pct: SOC % the next trip needs (0 = none); P_TRIP
    says which options cover it. hold: UTC second until which a start delay after a peak window
    holds charging now (0: none); delay_s: the start delay after each peak window ahead.
    Accept and shed charge off-peak only; emergency charges at once, at the breaker limit.
    The target instant is the first local HH:MM:00 at or after now (equal to now leaves no time).
    Returns a tuple indexed by the P_* constants; times are UTC seconds.

    Per option it walks the time to the target in segments of constant power (window edges,
    midnight, half-hours when a profile is used). Without a taper (taper_soc_pct or
    taper_floor_pct 100) the energy is exact integer arithmetic: the energy to full in
    hundredths of a Wh x 3600, each second at p W taking p x efficiency % (rounded down it said
    full too early); with a taper, float SOC and the closed form of _taper per segment.
    """
    off = cfg["tz_offset_min"] * 60
    t0 = now + off
    end = t0 - t0 % 86400 + target_min * 60
    if end < t0:
        end += 86400
    c = cfg["charger"]
    per_a = cfg["voltage_v"] * c["phases"]
    bat = cfg["battery"]
    cap = bat["capacity_wh"]
    tp = bat["taper_soc_pct"]
    fl = bat["taper_floor_pct"]
    eff = cfg["_eff_pct"]
    acc_w = c["max_a"] * per_a
    taper = tp < 100 and fl < 100
    k = 3600.0 * cap / eff              # seconds per percent at 1 W
    cf = (100 - fl) / (100.0 * (100 - tp)) if taper else 0.0   # acceptance lost per % above tp
    need = (100 - soc) * cap if soc < 100 else 0     # Wh x 100, exact
    lim = cfg["sanctioned_w"]
    fa = FOLLOW_A if prof is not None else 0
    r = []
    for o in range(3):
        # -> (SOC at the target, local full second or -1, charging s to full or -1, grid Wh)
        if need <= 0:
            r.append((100, t0, 0, 0))
            continue
        left = need * 3600              # integer path: what is still to go
        x = float(soc)                  # taper path
        full = -1
        used = 0                        # charging seconds
        ws = 0                          # grid W x s
        p = pl = 0                      # power of this segment, the last one with power
        h = hold + off if o < 2 and hold else 0
        t = t0
        while t < end and full < 0:
            sod = t % 86400
            win = day_windows(t // 86400, cfg)
            step = 86400 - sod
            if prof is not None and SLOT_S - sod % SLOT_S < step:
                step = SLOT_S - sod % SLOT_S
            for b in win:
                d = b * 60 - sod
                if 0 < d < step:
                    step = d
            seg_end = t + step if t + step < end else end
            if o < 2 and is_peak(sod // 60, win):
                h = seg_end + delay_s       # charging resumes after the start delay
                t = seg_end
                continue
            if t < h:
                t = h if h < seg_end else seg_end
            s = seg_end - t
            hw = _house(t, t0, house_w, prof, cfg)
            p = _power((cfg["breaker_w"] if o == 2 else lim) - hw +
                       ((shed_w if shed_w < hw else hw) if o == 1 else 0), c, per_a, fa)
            if p > 0 and s > 0:
                pl = p
                if taper:
                    d = int(_taper(x, p, -1, k, cf, tp, acc_w)) + 1
                    if d > s:
                        x = _taper(x, p, s, k, cf, tp, acc_w)
                else:
                    g = p * eff
                    d = -(-left // g)
                    if d > s:
                        left -= s * g
                if d <= s:
                    full = t + d
                    s = d
                used += s
                ws += p * s
            t = seg_end
        if full >= 0:
            r.append((100, full, used, -(-need // eff)))
            continue
        if pl:                          # not by the target: the rest at the last power
            used += int(_taper(x, pl, -1, k, cf, tp, acc_w)) + 1 if taper else -(-left // (
                pl * eff))
        elif not used:
            used = -1
        reach = int(x) if taper else 100 - -(-left // (3600 * cap))
        if reach > 99:
            reach = 99
        r.append((reach, -1, used, (reach - soc) * cap // eff if taper else ws // 3600))
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


def moved(p, o):
    """Has the answer moved enough to show it? Feasibility or a trip verdict flips, an SOC moves
    by 2 points or more, a full time by 15 minutes or more (or appears or goes)."""
    if p is None or o is None:
        return p is not o
    if p[P_OK] != o[P_OK] or p[P_TRIP] != o[P_TRIP]:
        return True
    for i in (P_SOC, P_SHED_SOC, P_EM_SOC):
        if not -2 < p[i] - o[i] < 2:
            return True
    for i in (P_FULL, P_SHED_FULL, P_EM_FULL):
        if (p[i] < 0) != (o[i] < 0) or not -900 < p[i] - o[i] < 900:
            return True
    return False


def advice(peak, loads_on, cfg):
    """In a peak window (or a DR event that lowers the limit): which non-critical loads that are
    on should go off.

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


def _offpeak_s(t, end, win):
    # seconds of local [t, end) outside the peak windows `win` (one set for every day)
    got = 0
    while t < end:
        sod = t % 86400
        e = t + 86400 - sod
        for b in win:
            d = b * 60 - sod
            if 0 < d and t + d < e:
                e = t + d
        if e > end:
            e = end
        if not is_peak(sod // 60, win):
            got += e - t
        t = e
    return got


def taper_tail(soc, per_a, cfg, room_w):
    """For a paced charge (spread): the seconds the battery's taper takes from taper_soc_pct
    (or soc, if above it) to full at the most the meter can give now (room_w of headroom, as
    the plan counts it: _power); 0 without a taper. Above taper_soc_pct the car, not the offer,
    sets the pace, so a paced charge leaves the taper this time."""
    bat = cfg["battery"]
    tp = bat["taper_soc_pct"]
    fl = bat["taper_floor_pct"]
    if tp >= 100 or fl >= 100:
        return 0
    c = cfg["charger"]
    p = _power(room_w, c, per_a)
    if not p:
        return 1 << 20              # no room to charge at all now: no pacing either
    return int(_taper(soc if soc > tp else tp, p, -1,
                      3600.0 * bat["capacity_wh"] / cfg["_eff_pct"],
                      (100 - fl) / (100.0 * (100 - tp)), tp, c["max_a"] * per_a)) + 1


def spread(t, end, win, need_cwh, eff_pct, per_a, c, rnd, cur_a, tail_s=0):
    """Fleet-friendly pace: a cap on the EV current for this tick, 0 = wait (docs/grid.md).

    The lowest whole amps that fill the battery by the departure on the off-peak time left
    less 1/32 of it, 10 min and tail_s (the battery's taper, taper_tail: need_cwh is then the
    energy up to the taper, and 0 in the taper itself, which gets max_a), at least min_a. A car
    that needs less than min_a would be full early: a paused charger waits until rnd %
    (0..99, drawn once per session) of that slack, counted from the last peak window's end, has
    passed, so a street's short charges spread over the night instead of all starting as the
    window ends. t, end: local s now and at the
    departure; win: today's peak windows (day_windows; the calendar's next day may differ,
    which the margin covers); need_cwh: energy the battery still takes, Wh x 100; max_a when
    time is short. Opt-in: charger.spread (docs/config.md).
    """
    lo = c["min_a"]
    hi = c["max_a"]
    if need_cwh <= 0:
        return hi if tail_s else 0
    left = _offpeak_s(t, end, win)
    left = (left - left // 32 - 600 - tail_s) // 60
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
