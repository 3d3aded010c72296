"""Issue 10 parts 1-3 on the pure core: tariff calendars (weekday / weekend-and-holiday peak
windows), the random start delay after a peak window, and the learned household load, checked
against a minute-by-minute model written only here (day types from Python's own calendar, not
the firmware's day arithmetic); config validation of the new fields; meter.learn; the profile's
store file."""
import datetime
import json
import os

import pytest
from hypothesis import given, settings, strategies as st

import config
import meter
import scheduler as S
import state
import store

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "firmware", "config.json.example")
EPOCH = datetime.date(2000, 1, 1)        # the meter's clock counts from 2000-01-01 (UTC)
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def raw_cfg(**kw):
    with open(EXAMPLE) as f:
        raw = json.load(f)
    raw["battery"]["taper_soc_pct"] = 100       # the exact (integer) path
    for k, v in kw.items():
        node = raw
        keys = k.split("__")
        for kk in keys[:-1]:
            node = node[kk]
        node[keys[-1]] = v
    return raw


def hhmm(m):
    return "%02d:%02d" % (m // 60, m % 60)


# ---------------------------------------------------------------- config

def test_existing_configs_keep_one_set_of_windows_for_every_day():
    cfg = config.validate(raw_cfg())
    assert cfg["_win"] == cfg["_win_we"] == (17 * 60, 22 * 60)
    assert cfg["_hol"] == () and cfg["_wkend"] == 1 << 5 | 1 << 6
    assert cfg["charger"]["start_delay_max_s"] == 600


def test_calendar_fields_are_read():
    cfg = config.validate(raw_cfg(peak_weekend=["18:00-20:00"], weekend=["fri", "sat"],
                                  holidays=["2025-01-01", "2025-12-25"]))
    assert cfg["_win_we"] == (18 * 60, 20 * 60)
    assert cfg["_wkend"] == 1 << 4 | 1 << 5
    assert cfg["_hol"] == tuple((datetime.date.fromisoformat(d) - EPOCH).days
                                for d in ("2025-01-01", "2025-12-25"))


@pytest.mark.parametrize("field, value, where", [
    ("peak_weekend", "18:00-20:00", "peak_weekend"),
    ("peak_weekend", ["18:00-18:00"], "peak_weekend[0]"),
    ("weekend", ["saturday"], "weekend"),
    ("weekend", "sat", "weekend"),
    ("holidays", ["2025-02-29"], "holidays[0]"),
    ("holidays", ["25-12-2025"], "holidays[0]"),
    ("holidays", ["1999-12-25"], "holidays[0]"),
    ("holidays", [20251225], "holidays[0]"),
    ("holidays", ["2025-01-01"] * 33, "holidays"),
    ("charger__start_delay_max_s", 3601, "charger.start_delay_max_s"),
    ("charger__start_delay_max_s", -1, "charger.start_delay_max_s"),
])
def test_bad_calendar_fields_are_refused_by_name(field, value, where):
    with pytest.raises(ValueError) as e:
        config.validate(raw_cfg(**{field: value}))
    assert str(e.value).startswith(where + ":"), e.value


def test_day_type_follows_the_weekend_days_and_holidays():
    cfg = config.validate(raw_cfg(holidays=["2025-01-15"]))
    for d in range(9000, 9100):                 # early 2024 .. 2025
        date = EPOCH + datetime.timedelta(days=d)
        we = date.weekday() >= 5 or date == datetime.date(2025, 1, 15)
        assert S.day_type(d, cfg) == int(we), date


# ---------------------------------------------------------------- the plan against a model

def peak_minutes(wins):
    out = set()
    for s, e in wins:
        m = s
        while m != e:
            out.add(m)
            m = (m + 1) % 1440
    return out


def model(now, target_min, soc, house, shed, trip, raw, hold, delay_s, prof):
    """Minute by minute, with the day type from datetime: per option (SOC at the target, UTC
    second full or -1)."""
    tz = raw["tz_offset_min"] * 60
    t0 = now + tz
    day0 = t0 // 86400 * 86400
    end = next(d + target_min * 60 for d in (day0, day0 + 86400) if d + target_min * 60 >= t0)
    wins = [tuple(int(x[:2]) * 60 + int(x[3:]) for x in w.split("-")) for w in raw["peak"]]
    wwe = [tuple(int(x[:2]) * 60 + int(x[3:]) for x in w.split("-"))
           for w in raw.get("peak_weekend", raw["peak"])]
    pk_wd, pk_we = peak_minutes(wins), peak_minutes(wwe)
    wk = {DAYS.index(d) for d in raw.get("weekend", ["sat", "sun"])}
    hol = {datetime.date.fromisoformat(d) for d in raw.get("holidays", [])}
    c = raw["charger"]
    per_a = raw["voltage_v"] * c.get("phases", 1)
    cap = raw["battery"]["capacity_wh"]
    eff = int(raw["battery"]["efficiency"] * 100 + 0.5)
    need = (100 - soc) * cap

    def weekend(x):
        date = EPOCH + datetime.timedelta(days=x // 86400)
        return date.weekday() in wk or date in hol

    def power(room):
        a = max(0, room) // per_a
        if a < c["min_a"]:
            return 0
        if prof is not None:    # following a moving load: FOLLOW_A amps less, not below min_a
            a = max(c["min_a"], a - S.FOLLOW_A)
        return min(c["max_a"], a) * per_a

    def house_at(x):
        if prof is None or x // 1800 == t0 // 1800:
            return house
        i = 48 * weekend(x) + x % 86400 // 1800
        if prof[192 + i] < S.PROFILE_DAYS:
            i = 48 * (not weekend(x)) + x % 86400 // 1800     # the other day type's half-hour
        n = prof[192 + i]
        return (prof[2 * i] | prof[2 * i + 1] << 8) if n >= S.PROFILE_DAYS else house

    res = []
    for o in range(3):
        if need <= 0:
            res.append((100, now))
            continue
        left = need * 3600
        h = hold + tz if hold and o < 2 else 0
        full = -1
        m = t0 // 60
        while m * 60 < end and full < 0:
            a, b = max(t0, m * 60), min(end, m * 60 + 60)
            peak = (m % 1440) in (pk_we if weekend(m * 60) else pk_wd)
            if o < 2 and peak:
                h = b + delay_s
            else:
                a = max(a, h)
                hw = house_at(m * 60)
                room = (raw["breaker_w"] if o == 2 else raw["sanctioned_w"]) - hw
                if o == 1:
                    room += min(shed, hw)
                p = power(room) * eff
                if p and a < b:
                    if left <= p * (b - a):
                        full = a + -(-left // p)
                    left -= p * (b - a)
            m += 1
        if full >= 0:
            res.append((100, full - tz))
        else:
            res.append((min(99, 100 - -(-left // (3600 * cap))), -1))
    return res


def profile(values, days):
    p = bytearray(meter.PROFILE_SIZE)
    for i in range(96):
        p[2 * i] = values[i] & 255
        p[2 * i + 1] = values[i] >> 8
        p[192 + i] = days[i]
    return p


wins = st.lists(st.tuples(st.integers(0, 1439), st.integers(0, 1439)).filter(
    lambda w: w[0] != w[1]), min_size=0, max_size=2)


@settings(max_examples=60, deadline=None)
@given(wd=wins, we=wins, wkend=st.sets(st.sampled_from(DAYS)), tz=st.integers(-720, 840),
       now=st.integers(700_000_000, 1_000_000_000), target=st.integers(0, 1439),
       soc=st.integers(0, 99), house=st.integers(0, 5000), shed=st.integers(0, 3000),
       cap=st.integers(5000, 80000), hol=st.integers(-2, 2), hold=st.integers(0, 1200),
       delay=st.integers(0, 900), learned=st.booleans(),
       values=st.lists(st.integers(0, 6000), min_size=96, max_size=96),
       days=st.lists(st.integers(0, 5), min_size=96, max_size=96))
def test_plan_follows_the_calendar_the_start_delay_and_the_learned_load(
        wd, we, wkend, tz, now, target, soc, house, shed, cap, hol, hold, delay, learned, values,
        days):
    f = ["%s-%s" % (hhmm(s), hhmm(e)) for s, e in wd]
    g = ["%s-%s" % (hhmm(s), hhmm(e)) for s, e in we]
    day = EPOCH + datetime.timedelta(days=(now + tz * 60) // 86400 + hol)
    raw = raw_cfg(peak=f, peak_weekend=g, weekend=sorted(wkend), holidays=[day.isoformat()],
                  tz_offset_min=tz, sanctioned_w=7000, breaker_w=9000, battery__capacity_wh=cap,
                  charger__max_a=32)
    cfg = config.validate(json.loads(json.dumps(raw)))
    prof = profile(values, days) if learned else None
    h = now + hold if hold else 0
    p = S.plan(now, target, soc, house, shed, 0, cfg, h, delay, prof)
    acc, sh, em = model(now, target, soc, house, shed, 0, raw, h, delay, prof)
    assert (p[S.P_SOC], p[S.P_FULL]) == acc
    assert (p[S.P_SHED_SOC], p[S.P_SHED_FULL]) == sh
    assert (p[S.P_EM_SOC], p[S.P_EM_FULL]) == em


def test_weekend_without_peak_windows_charges_all_day():
    # Saturday 2025-01-18 12:00 local (tz 0): weekdays 08:00-22:00 peak, weekends none
    cfg = config.validate(raw_cfg(tz_offset_min=0, peak=["08:00-22:00"], peak_weekend=[],
                                  sanctioned_w=5000, breaker_w=7400))
    sat = (datetime.date(2025, 1, 18) - EPOCH).days * 86400 + 12 * 3600
    p = S.plan(sat, 14 * 60, 50, 400, 0, 0, cfg)
    q = S.plan(sat - 86400, 14 * 60, 50, 400, 0, 0, cfg)     # the Friday before: all peak
    assert p[S.P_SOC] > 50 and q[S.P_SOC] == 50 and not q[S.P_OK]
    # a holiday on a Wednesday counts as a weekend day
    wed = (datetime.date(2025, 1, 15) - EPOCH).days * 86400 + 12 * 3600
    cfg_h = config.validate(raw_cfg(tz_offset_min=0, peak=["08:00-22:00"], peak_weekend=[],
                                    holidays=["2025-01-15"], sanctioned_w=5000, breaker_w=7400))
    assert S.plan(wed, 14 * 60, 50, 400, 0, 0, cfg_h)[S.P_SOC] == p[S.P_SOC]
    assert S.plan(wed, 14 * 60, 50, 400, 0, 0, cfg)[S.P_SOC] == 50


def test_the_start_delay_pushes_the_full_time_back_by_itself():
    cfg = config.validate(raw_cfg(tz_offset_min=0, peak=["17:00-22:00"], sanctioned_w=5000))
    t = (datetime.date(2025, 1, 15) - EPOCH).days * 86400 + 18 * 3600      # in the peak
    p0 = S.plan(t, 7 * 60, 60, 500, 0, 0, cfg, 0, 0)
    p1 = S.plan(t, 7 * 60, 60, 500, 0, 0, cfg, 0, 437)
    assert p0[S.P_OK] and p1[S.P_FULL] - p0[S.P_FULL] == 437
    assert p1[S.P_EM_FULL] == p0[S.P_EM_FULL]             # emergency waits for nothing
    # a delay in force now (the window just ended at 22:00, charging held until 22:05)
    t2 = t + 4 * 3600
    q0 = S.plan(t2, 7 * 60, 60, 500, 0, 0, cfg, 0, 0)
    q1 = S.plan(t2, 7 * 60, 60, 500, 0, 0, cfg, t2 + 300, 437)
    assert q1[S.P_FULL] - q0[S.P_FULL] == 300


def test_the_learned_load_after_this_half_hour_sets_the_power():
    # 00:10 on a weekday, the house at 4 kW now; learned: 500 W for every later half-hour
    cfg = config.validate(raw_cfg(tz_offset_min=0, peak=[], sanctioned_w=5000, breaker_w=7400,
                                  battery__capacity_wh=60000))
    t = (datetime.date(2025, 1, 15) - EPOCH).days * 86400 + 10 * 60
    flat = S.plan(t, 6 * 60, 20, 4000, 0, 0, cfg)           # 1 kW left: below 6 A, no power
    assert flat[S.P_SOC] == 20 and flat[S.P_MIN] == -1
    learned = S.plan(t, 6 * 60, 20, 4000, 0, 0, cfg, prof=profile([500] * 96, [3] * 96))
    assert learned[S.P_SOC] > 50
    # slots with fewer days than PROFILE_DAYS are not trusted: the reading goes on
    young = S.plan(t, 6 * 60, 20, 4000, 0, 0, cfg, prof=profile([500] * 96, [S.PROFILE_DAYS - 1] * 96))
    assert young[:4] == flat[:4]
    # (the emergency option, 3.4 kW of breaker headroom, counts FOLLOW_A amps less with a
    # profile: see test_with_a_profile_the_car_is_counted_one_amp_below_the_headroom)
    assert young[S.P_EM_SOC] < flat[S.P_EM_SOC]


def test_with_a_profile_the_car_is_counted_one_amp_below_the_headroom():
    # weekday 00:00 (tz 0), no peak, 230 V: a flat learned load; the exact path (no taper)
    cfg = config.validate(raw_cfg(tz_offset_min=0, peak=[], sanctioned_w=5000, breaker_w=9000,
                                  battery__capacity_wh=60000, battery__efficiency=1.0))
    t = (datetime.date(2025, 1, 15) - EPOCH).days * 86400
    assert S.FOLLOW_A == 1

    def minutes(house, lim_w=5000):
        c = dict(cfg, sanctioned_w=lim_w)
        p = S.plan(t, 23 * 60, 20, house, 0, 0, c, prof=profile([house] * 96, [3] * 96))
        q = S.plan(t, 23 * 60, 20, house, 0, 0, c)            # no profile: no margin
        return p[S.P_MIN], q[S.P_MIN]

    def at(amps):       # minutes to charge 48 kWh at `amps` x 230 V, rounded up
        return -(-48000 * 60 // (amps * 230))

    # 5000 - 500 W = 19 whole amps of headroom: 18 with a profile, 19 without
    assert minutes(500) == (at(18), at(19))
    # headroom for exactly min_a (6 A = 1380 W): the car still gets min_a, not a pause
    assert minutes(5000 - 1380) == (at(6), at(6))
    # max_a (32 A) limits, not the headroom (9000 - 500 W = 36 A): no margin
    assert minutes(500, 9000) == (at(32), at(32))
    # the emergency option (breaker 9000 W) is counted the same way
    p = S.plan(t, 23 * 60, 20, 2000, 0, 0, cfg, prof=profile([2000] * 96, [3] * 96))
    assert p[S.P_EM_SOC] == 100 and p[S.P_EM_FULL] - t == -(-48000 * 3600 // (29 * 230))


def test_moved_ignores_small_changes_and_shows_real_ones():
    cfg = config.validate(raw_cfg(tz_offset_min=0, peak=[]))
    t = (datetime.date(2025, 1, 15) - EPOCH).days * 86400
    a = S.plan(t, 7 * 60, 85, 1000, 0, 0, cfg)
    b = S.plan(t, 7 * 60, 85, 1150, 0, 0, cfg)      # a kettle's worth: full a few minutes later
    assert a[S.P_OK] and a != b and not S.moved(b, a)
    c = S.plan(t, 30, 85, 1000, 0, 0, cfg)          # not full any more
    assert S.moved(c, a) and S.moved(None, a) and S.moved(a, None) and not S.moved(None, None)


# ---------------------------------------------------------------- learning and storing

def test_learn_rises_fast_falls_slowly_and_counts_days():
    p = bytearray(meter.PROFILE_SIZE)
    meter.learn(p, 5, 800)
    assert p[10] | p[11] << 8 == 800 and p[192 + 5] == 1
    meter.learn(p, 5, 1600)
    assert p[10] | p[11] << 8 == 1200
    meter.learn(p, 5, 400)
    assert p[10] | p[11] << 8 == 1100
    for _ in range(300):
        meter.learn(p, 5, 70000)
    assert p[10] | p[11] << 8 == 65535 and p[192 + 5] == 255
    # a noisy slot settles above its median: the plan errs towards less power for the car
    import random
    r = random.Random(4)
    q = bytearray(meter.PROFILE_SIZE)
    xs = [r.gauss(1000, 200) for _ in range(400)]
    for x in xs:
        meter.learn(q, 0, int(x))
    assert q[0] | q[1] << 8 > sorted(xs)[200]


def test_profile_file_round_trips_and_a_corrupt_one_is_dropped(tmp_path):
    base = str(tmp_path / "store")
    p = bytearray(range(256)) + bytearray(32)
    store.save_profile(base, p)
    q = bytearray(meter.PROFILE_SIZE)
    assert store.load_profile(base, q) == 0 and q == p
    with open(base + "p", "r+b") as f:
        f.seek(40)
        f.write(b"\xff")
    r = bytearray(meter.PROFILE_SIZE)
    assert store.load_profile(base, r) == 1 and r == bytearray(meter.PROFILE_SIZE)
    assert store.load_profile(str(tmp_path / "none"), r) == 0


def test_state_starts_without_a_profile():
    assert state.State(2).profile is None


def test_house_profile_command_asks_for_the_profile_and_its_echo_is_ignored():
    import netpie
    cfg = config.validate(raw_cfg())
    st = state.State(len(cfg["loads"]))
    st.counters = meter.new()
    st.profile = profile([400 + i for i in range(96)], [S.PROFILE_DAYS if i % 2 else S.PROFILE_DAYS - 1 for i in range(96)])
    c = netpie.Cloud(cfg, st, None)
    c._msg(b"@msg/meter/house_profile/data", b'{"weekday":[]}')
    assert not c.pr and st.error == ""
    c._msg(b"@msg/meter/house_profile", b"get")
    assert c.pr and st.error == ""
    d = json.loads(b"".join(c._val(-1, k) for k in range(8)))
    assert len(d["weekday"]) == len(d["weekend"]) == 48
    assert d["weekday"][:4] == [None, 401, None, 403] and d["weekend"][1] == 449
    c._msg(b"@msg/meter/house_profilex", b"get")       # not the command: refused as usual
    assert st.error == "house_profilex: unknown command"
