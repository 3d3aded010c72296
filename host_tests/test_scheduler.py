"""scheduler.py: allocation limits and anti-flap, the plan against a brute-force minute-by-minute
simulation written only here, trip need and DR advice."""
import json
import math
import os

from hypothesis import given, settings, strategies as st

import config
import scheduler as S

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "firmware", "config.json.example")


def cfg_with(**kw):
    """The example config with fields replaced (a__b = raw["a"]["b"]); no taper unless asked, so
    the exact brute-force model below applies (the taper has its own tests)."""
    with open(EXAMPLE) as f:
        raw = json.load(f)
    raw["battery"]["taper_soc_pct"] = 100
    for k, v in kw.items():
        node = raw
        keys = k.split("__")
        for kk in keys[:-1]:
            node = node[kk]
        node[keys[-1]] = v
    return config.validate(raw)


CFG = cfg_with()
CH = CFG["charger"]

# ---------------------------------------------------------------- allocation


def test_allocation_takes_what_the_limit_leaves_in_whole_amps():
    # 5000 W limit, 1000 W house: 4000 / 230 = 17.39 A -> 17 A, capped at max 32
    a, _ = S.allocate(0, 1000, 5000, 230, 17, 0, CH, False)
    assert a == 17
    a, _ = S.allocate(0, 1000, 5000, 230, 20, 0, CH, False)
    assert a == 17                      # cut down at once


def test_allocation_is_capped_by_the_charger_maximum():
    a, _ = S.allocate(0, 0, 50000, 230, 32, 0, CH, False)
    assert a == 32


def test_below_the_minimum_it_pauses():
    # 5000 - 3700 = 1300 W = 5.65 A < 6 A
    a, ok = S.allocate(0, 3700, 5000, 230, 10, 0, CH, False)
    assert a == 0 and ok == -1


def test_blocked_means_zero_but_headroom_is_still_tracked():
    a, ok = S.allocate(50, 0, 5000, 230, 10, -1, CH, True)
    assert a == 0 and ok == 50


def test_restart_needs_headroom_for_min_plus_half_an_amp_held_for_the_hold_time():
    hold = CH["restart_hold_s"]
    # 6.4 A of room: enough for 6 A but not 6.5 A -> never restarts
    house = 5000 - int(6.4 * 230)
    ok = -1
    for t in range(0, 3 * hold):
        a, ok = S.allocate(t, house, 5000, 230, 0, ok, CH, False)
        assert a == 0
    # 6.6 A of room: restarts after exactly `hold` seconds
    house = 5000 - int(6.6 * 230)
    ok = -1
    started = None
    for t in range(0, 3 * hold):
        a, ok = S.allocate(t, house, 5000, 230, 0, ok, CH, False)
        if a:
            started = t
            break
    assert started == hold and a == CH["min_a"]


def test_ramp_up_is_gradual():
    a, seen = 6, [6]
    for t in range(20):
        a, _ = S.allocate(t, 0, 5000, 230, a, 0, CH, False)
        seen.append(a)
    steps = [b - a for a, b in zip(seen, seen[1:])]
    assert max(steps) == CH["ramp_a_per_s"]
    assert seen[-1] == 5000 // 230


def test_three_phase_uses_all_phases():
    c = dict(CH, phases=3)
    a, _ = S.allocate(0, 1000, 11000, 230, 16, 0, c, False)
    assert a == 10000 // 690


@settings(max_examples=400, deadline=None)
@given(house=st.integers(-500, 30000), limit=st.integers(0, 30000), volt=st.integers(180, 260),
       cur=st.integers(0, 80), ok=st.integers(-1, 1000), t=st.integers(0, 5000),
       phases=st.integers(1, 3), max_a=st.integers(6, 80), blocked=st.booleans(),
       hold=st.integers(0, 120), ramp=st.integers(1, 10))
def test_allocation_never_exceeds_the_limit(house, limit, volt, cur, ok, t, phases, max_a,
                                            blocked, hold, ramp):
    c = dict(CH, phases=phases, max_a=max_a, restart_hold_s=hold, ramp_a_per_s=ramp)
    a, ok2 = S.allocate(t, house, limit, volt, cur, ok, c, blocked)
    assert isinstance(a, int)
    assert a == 0 or c["min_a"] <= a <= max_a
    if a:
        assert house + a * volt * phases <= limit
        assert not blocked
        assert a <= cur + ramp or (cur < c["min_a"] and a == c["min_a"])
    assert ok2 == -1 or ok2 <= t

# ---------------------------------------------------------------- plan: brute force


def peak_minutes(win):
    mins = set()
    for i in range(0, len(win), 2):
        m = win[i]
        while m != win[i + 1]:
            mins.add(m)
            m = (m + 1) % 1440
    return mins


def brute_case(t, end, peak, need_cwh, cap, soc, power_w, eff, peak_ok):
    """Minute by minute: charging seconds, SOC at the end and the second it is full. need_cwh:
    the energy to full in hundredths of a Wh, exact ((100 - soc) x capacity), not rounded."""
    if need_cwh <= 0:
        return 100, t
    if power_w <= 0:
        return soc, -1
    got = 0
    full = -1
    m = t // 60
    while m * 60 < end:
        a = max(t, m * 60)
        b = min(end, m * 60 + 60)
        if peak_ok or (m % 1440) not in peak:
            for s in range(a, b):
                got += 1
                if full < 0 and got * power_w * eff * 100 >= need_cwh * 360000:
                    full = s + 1
        m += 1
    if full >= 0:
        return 100, full
    return soc + got * power_w * eff // (3600 * cap), -1


def brute_plan(now, target_min, soc, house, shed, trip, cfg):
    off = cfg["tz_offset_min"] * 60
    t = now + off
    day0 = t // 86400 * 86400
    end = next(d + target_min * 60 for d in (day0, day0 + 86400) if d + target_min * 60 >= t)
    peak = peak_minutes(cfg["_win"])
    c = cfg["charger"]
    per_a = cfg["voltage_v"] * c["phases"]

    def power(room):
        a = min(c["max_a"], max(0, room) // per_a)
        return a * per_a if a >= c["min_a"] else 0

    cap = cfg["battery"]["capacity_wh"]
    need = (100 - soc) * cap
    eff = cfg["_eff_pct"]
    lim = cfg["sanctioned_w"]
    res = [brute_case(t, end, peak, need, cap, soc, power(lim - house), eff, False),
           brute_case(t, end, peak, need, cap, soc, power(lim - house + min(shed, house)), eff,
                      False),
           brute_case(t, end, peak, need, cap, soc, power(cfg["breaker_w"] - house), eff, True)]
    return [(r[0], r[1] - off if r[1] >= 0 else -1) for r in res], end - off


windows = st.lists(st.tuples(st.integers(0, 1439), st.integers(0, 1439)).filter(
    lambda w: w[0] != w[1]), min_size=0, max_size=3)


def cfg_from(wins, tz, sanctioned, cap, max_a, eff):
    return cfg_with(peak=["%02d:%02d-%02d:%02d" % (s // 60, s % 60, e // 60, e % 60)
                          for s, e in wins],
                    tz_offset_min=tz, sanctioned_w=sanctioned, breaker_w=sanctioned + 3000,
                    battery__capacity_wh=cap, charger__max_a=max_a, battery__efficiency=eff)


@settings(max_examples=150, deadline=None)
@given(wins=windows, tz=st.integers(-720, 840), now=st.integers(1_600_000_000, 1_900_000_000),
       target=st.integers(0, 1439), soc=st.integers(0, 100), house=st.integers(0, 6000),
       shed=st.integers(0, 3000), sanctioned=st.integers(1000, 12000),
       cap=st.integers(5000, 100000), max_a=st.integers(6, 40), eff=st.sampled_from([0.85, 0.9, 1]),
       trip=st.integers(0, 100))
def test_plan_matches_brute_force(wins, tz, now, target, soc, house, shed, sanctioned, cap,
                                  max_a, eff, trip):
    cfg = cfg_from(wins, tz, sanctioned, cap, max_a, eff)
    p = S.plan(now, target, soc, house, shed, trip, cfg)
    (acc, sh, em), end_utc = brute_plan(now, target, soc, house, shed, trip, cfg)
    assert now <= end_utc < now + 86400
    assert p[S.P_OK] == (acc[1] >= 0)
    assert (p[S.P_SOC], p[S.P_FULL]) == acc
    assert (p[S.P_SHED_SOC], p[S.P_SHED_FULL]) == sh
    assert (p[S.P_EM_SOC], p[S.P_EM_FULL]) == em
    for full in (p[S.P_FULL], p[S.P_SHED_FULL], p[S.P_EM_FULL]):
        assert full == -1 or now <= full <= end_utc
    # shedding loads or emergency never does worse than accepting
    assert p[S.P_SHED_SOC] >= p[S.P_SOC] and p[S.P_EM_SOC] >= p[S.P_SOC]
    want = sum(1 << i for i, r in enumerate((acc, sh, em)) if r[0] >= trip)
    assert p[S.P_TRIP] == want
    assert p[S.P_EM_COST] >= 0


# ---------------------------------------------------------------- plan: worked examples and edges

NOW_LOCAL_1800 = 1_764_000_000 - 1_764_000_000 % 86400 + 18 * 3600 - 300 * 60  # 18:00 local


def test_worked_example_peak_is_skipped():
    # 18:00, peak 17-22, target 07:30: off-peak from 22:00 to 07:30 = 9.5 h.
    # 5000 - 800 W house = 4200 W -> 18 A = 4140 W; 35 % of 60 kWh -> need 39000 Wh,
    # at 4140 * 0.9 = 3726 Wh/h -> 10.47 h: not feasible, reaches 35 + 9.5*3726/600 = 93 %.
    p = S.plan(NOW_LOCAL_1800, 7 * 60 + 30, 35, 800, 1500, 0, CFG)
    assert p[S.P_OK] is False and p[S.P_FULL] == -1
    assert p[S.P_SOC] == 35 + 9.5 * 3600 * 4140 * 90 // (3600 * 60000)
    assert p[S.P_MIN] == -(-(-(-39000 * 360000 // (4140 * 90))) // 60)
    # shed: 1500 W of non-critical loads on, but the house draws 800 W, so it frees 800 W (not
    # 1500): 5000 W -> 21 A = 4830 W: feasible, full at 22:00 + 39000/4347 h
    assert p[S.P_SHED_SOC] == 100
    need_s = -(-39000 * 360000 // (4830 * 90))
    assert p[S.P_SHED_FULL] == NOW_LOCAL_1800 + 4 * 3600 + need_s
    # emergency: breaker 7400 - 800 = 6600 W -> 28 A = 6440 W from now, peak counts
    assert p[S.P_EM_SOC] == 100
    assert p[S.P_EM_FULL] == NOW_LOCAL_1800 + -(-39000 * 360000 // (6440 * 90))
    assert abs(p[S.P_EM_COST] - (39000 * 100 // 90 + 1) * (60 - 23) / 1000) < 0.05


def test_target_equal_to_now_leaves_no_time():
    p = S.plan(NOW_LOCAL_1800, 18 * 60, 40, 500, 0, 50, CFG)
    assert p[S.P_SOC] == 40 and p[S.P_FULL] == -1 and not p[S.P_OK]
    assert p[S.P_EM_SOC] == 40
    assert p[S.P_TRIP] == 0


def test_target_inside_peak_counts_only_off_peak_time():
    # now 12:00, target 20:00 (inside peak 17-22): off-peak 12:00-17:00 only
    now = NOW_LOCAL_1800 - 6 * 3600
    p = S.plan(now, 20 * 60, 50, 0, 0, 0, cfg_with(sanctioned_w=2300, breaker_w=2300))
    # 10 A = 2300 W * 0.9 = 2070 Wh/h for 5 h = 10350 Wh of the 30000 needed: 17 %
    assert p[S.P_SOC] == 50 + 5 * 2070 * 100 // 60000
    assert p[S.P_EM_SOC] == 50 + 8 * 2070 * 100 // 60000


def test_full_battery_is_full_now():
    p = S.plan(NOW_LOCAL_1800, 7 * 60, 100, 0, 0, 80, CFG)
    assert p[S.P_OK] and p[S.P_FULL] == NOW_LOCAL_1800 and p[S.P_MIN] == 0
    assert p[S.P_SOC] == 100 and p[S.P_TRIP] == 7


def test_no_power_left_gives_current_soc():
    p = S.plan(NOW_LOCAL_1800, 7 * 60, 30, 4900, 0, 0, CFG)
    assert p[S.P_SOC] == 30 and p[S.P_MIN] == -1 and not p[S.P_OK]


def test_window_crossing_midnight():
    cfg = cfg_with(peak=["23:00-02:00"], sanctioned_w=2300, breaker_w=2300)
    now = NOW_LOCAL_1800 + 4 * 3600              # 22:00
    p = S.plan(now, 3 * 60, 0, 0, 0, 0, cfg)     # 22-23 and 02-03: 2 h off-peak
    assert p[S.P_SOC] == 2 * 2070 * 100 // 60000


def test_trip_need():
    assert S.trip_need_pct(0, 170, 10, 60000) == 0
    assert S.trip_need_pct(100, 170, 10, 60000) == 29 + 10     # 17000 Wh = 28.3 % -> 29
    assert S.trip_need_pct(1000, 170, 10, 60000) == 100


def test_advice_only_in_peak_and_only_non_critical_loads_that_are_on():
    assert S.advice(False, 0b111, CFG) == (0, 0)
    assert S.advice(True, 0b111, CFG) == (0b011, 2500)
    assert S.advice(True, 0b110, CFG) == (0b010, 1000)
    assert S.advice(True, 0b100, CFG) == (0, 0)


def test_is_peak():
    assert S.is_peak(17 * 60, (1020, 1320))
    assert not S.is_peak(22 * 60, (1020, 1320))
    assert S.is_peak(0, (1380, 120)) and S.is_peak(1439, (1380, 120))
    assert not S.is_peak(120, (1380, 120))


# ---------------------------------------------------------------- plan: battery taper

def taper_seconds(x0, x1, power_w, acc_w, tp, fl, cap, eff_pct):
    """Exact seconds from SOC x0 to x1 % for the emulated car: it takes min(power_w, acc_w x f),
    f = 1 up to tp %, then falling linearly to fl % at 100 % (integrated in closed form)."""
    k = 3600.0 * cap / eff_pct            # seconds per percent at 1 W
    c = (1 - fl / 100.0) / (100 - tp)
    flat_w = min(power_w, acc_w)
    xc = tp + (1 - flat_w / acc_w) / c if c > 0 else 100.0   # where the taper starts to bite
    s = 0.0
    if x0 < xc:
        s += (min(x1, xc) - x0) * k / flat_w
    if x1 > xc:
        u = max(x0, xc)
        s += k / (acc_w * c) * math.log((1 - c * (u - tp)) / (1 - c * (x1 - tp)))
    return s


@settings(max_examples=300, deadline=None)
@given(soc=st.integers(0, 99), amps=st.integers(6, 32), max_a=st.integers(16, 32),
       tp=st.integers(50, 99), fl=st.integers(1, 100), cap=st.integers(10000, 80000),
       minutes=st.integers(1, 1439), eff=st.sampled_from([0.85, 0.9, 1]))
def test_plan_with_taper_is_never_optimistic_and_close(soc, amps, max_a, tp, fl, cap, minutes,
                                                        eff):
    amps = min(amps, max_a)
    cfg = cfg_with(peak=[], sanctioned_w=amps * 230, breaker_w=amps * 230, tz_offset_min=0,
                   charger__max_a=max_a, battery__capacity_wh=cap, battery__efficiency=eff)
    cfg["battery"]["taper_soc_pct"] = tp
    cfg["battery"]["taper_floor_pct"] = fl
    now = 1_764_000_000 - 1_764_000_000 % 86400            # 00:00 UTC
    p = S.plan(now, minutes, soc, 0, 0, 0, cfg)
    args = (amps * 230, max_a * 230, tp, fl, cap, cfg["_eff_pct"])
    full_s = taper_seconds(soc, 100, *args)
    avail = minutes * 60
    if p[S.P_OK]:
        took = p[S.P_FULL] - now
        assert full_s <= took + 1 and took <= full_s * 1.02 + 60, "full: never early, <= 2 % late"
        assert p[S.P_MIN] == -(-took // 60)
    else:
        assert full_s > avail - 60
        r = p[S.P_SOC]
        assert taper_seconds(soc, r, *args) <= avail + 1, "the SOC promised is reached"
        assert r >= 98 or taper_seconds(soc, r + 2, *args) > avail, "and at most 2 % low"


def test_taper_slows_the_last_fifth():
    cfg = cfg_with(peak=[], tz_offset_min=0)
    now = 1_764_000_000 - 1_764_000_000 % 86400
    flat = S.plan(now, 23 * 60, 50, 0, 0, 0, cfg)
    cfg["battery"]["taper_soc_pct"] = 80
    tapered = S.plan(now, 23 * 60, 50, 0, 0, 0, cfg)
    assert flat[S.P_OK] and tapered[S.P_OK]
    assert tapered[S.P_MIN] > flat[S.P_MIN] * 1.25   # the car takes 21 A only up to 89 %
    # a target that leaves the flat battery just enough: the tapered one falls short above 80 %
    t = -(-flat[S.P_MIN] // 60) * 60
    short = S.plan(now, t, 50, 0, 0, 0, cfg)
    assert not short[S.P_OK] and 80 <= short[S.P_SOC] < 100


def test_need_rounds_up_so_full_means_full():
    # issue 10: 2 301 Wh from 50 % is 1 150.5 Wh; rounded down the plan said full at 00:50
    # where 1 380 W for 50 min gives 1 150 Wh (99.98 %)
    cfg = cfg_with(peak=[], tz_offset_min=0, sanctioned_w=1380, breaker_w=1380,
                   battery__capacity_wh=2301, battery__efficiency=1, voltage_v=230,
                   charger__phases=1, charger__max_a=6)
    now = 1_800_000_000 // 86400 * 86400
    p = S.plan(now, 50, 50, 0, 0, 0, cfg)
    assert not p[S.P_OK] and p[S.P_FULL] == -1 and p[S.P_SOC] == 99, p
    p = S.plan(now, 51, 50, 0, 0, 0, cfg)
    assert p[S.P_OK] and now + 50 * 60 < p[S.P_FULL] <= now + 51 * 60, p


def test_shed_frees_at_most_the_household_load():
    # issue 10: house 0 W with a 1 000 W non-critical load on frees nothing, not 1 000 W
    cfg = cfg_with(peak=[], tz_offset_min=0, sanctioned_w=2300, breaker_w=2300,
                   voltage_v=230, charger__phases=1, charger__max_a=32)
    now = 1_800_000_000 // 86400 * 86400
    acc = S.plan(now, 420, 20, 0, 0, 0, cfg)
    shed = S.plan(now, 420, 20, 0, 1000, 0, cfg)
    assert (shed[S.P_SHED_SOC], shed[S.P_SHED_FULL]) == (acc[S.P_SOC], acc[S.P_FULL]), shed
    part = S.plan(now, 420, 20, 400, 1000, 0, cfg)     # frees the 400 W the house draws
    assert (part[S.P_SHED_SOC], part[S.P_SHED_FULL]) == (acc[S.P_SOC], acc[S.P_FULL]), part
