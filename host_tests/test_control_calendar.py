"""control.Control with the tariff calendar's extras (issue 10): the random start delay after a
peak window, and the household load it learns per half-hour and day type. CPython, the plain
charger and car of test_control_follow; behaviour, not timing."""
import random

import pytest

import control
import evse
import scheduler
from test_control_follow import VOLT, Car, cfg_for, meter_for, run_for


@pytest.fixture(autouse=True)
def _fresh_evse():
    # the plain charger makes evse remember "no extension block" (module state, as on the
    # board): the tests after these must not inherit it
    evse.no_ext = -1
    yield
    evse.no_ext = -1


MIN = 60000


def test_after_a_peak_window_charging_waits_its_random_start_delay():
    random.seed(7)
    cfg = cfg_for(limit=5000, hold=30)
    cfg["_win"] = cfg["_win_we"] = (65, 70)      # 01:05-01:10 local; the meter starts at 01:00
    cfg["charger"]["start_delay_max_s"] = 600
    w = Car(house_w=1000, follow_ms=1000, noise_a=0)
    st, ctl = meter_for(w, cfg)
    delay = ctl.delay
    assert 0 <= delay <= 600
    run_for(ctl, w, 4 * MIN)
    assert w.reg1000 >= 6, "charging before the window"
    run_for(ctl, w, 6 * MIN)                     # to 01:10, the window's end
    n = len(w.writes)
    assert w.reg1000 == 0, "paused in the window"
    run_for(ctl, w, delay * 1000 + 15 * MIN)
    starts = [t for t, a in w.writes[n:] if a >= 6]
    assert starts, "charging resumed"
    # not before the window's end + the drawn delay, and at once after it (the headroom held)
    assert 10 * MIN + delay * 1000 <= starts[0] <= 10 * MIN + delay * 1000 + 2000, (
        starts[0], delay)
    assert ctl.delay != delay or cfg["charger"]["start_delay_max_s"] == 0, "a new draw each time"


def test_no_delay_when_configured_off():
    cfg = cfg_for(limit=5000, hold=30)
    cfg["_win"] = cfg["_win_we"] = (65, 70)
    cfg["charger"]["start_delay_max_s"] = 0
    w = Car(house_w=1000, follow_ms=1000, noise_a=0)
    st, ctl = meter_for(w, cfg)
    run_for(ctl, w, 10 * MIN)
    n = len(w.writes)
    run_for(ctl, w, 5 * MIN)
    starts = [t for t, a in w.writes[n:] if a >= 6]
    assert starts and starts[0] <= 10 * MIN + 2000


class NightHeater(Car):
    """A house that draws 3 kW from 00:00 to 06:00 local and 500 W otherwise."""
    tz_ms = 0

    @property
    def house_w(self):
        local_h = (self.t + self.tz_ms) // 3600000 % 24
        return 3000 if local_h < 6 else 500

    @house_w.setter
    def house_w(self, v):
        pass


def test_the_meter_learns_the_household_load_by_half_hour(monkeypatch):
    # 10 s ticks (the learning is per half-hour; the control rule itself is tested elsewhere)
    monkeypatch.setattr(control, "_PERIOD_MS", 10000)
    cfg = cfg_for(limit=7000, hold=30)
    w = NightHeater(follow_ms=1000, noise_a=0)
    w.tz_ms = 3600000                           # the meter starts at 01:00 local
    st, ctl = meter_for(w, cfg)
    st.profile = bytearray(288)
    run_for(ctl, w, 10 * 24 * 60 * MIN)     # 10 days: each day type 3 times or more
    p = st.profile
    for dt in (0, 1):                           # weekday and weekend slots
        for i in range(48):
            j = dt * 48 + i
            if p[192 + j] < 2:
                continue
            v = p[2 * j] | p[2 * j + 1] << 8
            want = 3000 if i < 12 else 500
            # the EV's own draw is not household load (it charged all the while)
            assert abs(v - want) <= 100, (dt, i, v, p[192 + j])
    assert sum(p[192:]) >= 10 * 48 - 8, "every half-hour seen"
    # and the plan uses it: at 23:00, with 500 W now, the heater from 00:00 is expected
    now = st.now
    t = now - (now + cfg["tz_offset_min"] * 60) % 86400 + 23 * 3600
    learned = scheduler.plan(t, 3 * 60, 5, 500, 0, 0, cfg, 0, 0, p)
    naive = scheduler.plan(t, 3 * 60, 5, 500, 0, 0, cfg)
    assert learned[scheduler.P_SOC] < naive[scheduler.P_SOC] - 10, (learned, naive)


def test_spread_charges_at_the_lowest_current_that_is_full_by_the_departure():
    def run(spread):
        random.seed(3)
        cfg = cfg_for(limit=7000, hold=30)
        cfg["charger"]["spread"] = spread
        cfg["charger"]["start_delay_max_s"] = 0
        w = Car(house_w=1000, follow_ms=1000, noise_a=0)
        st, ctl = meter_for(w, cfg)
        st.start_soc_pct = 75               # a plain charger: the user's SOC
        st.target_min = 7 * 60              # 01:00 now: six hours to go
        run_for(ctl, w, 10 * MIN)
        return w.want_a(), cfg
    fast, cfg = run(False)
    slow, _ = run(True)
    assert fast >= (7000 - 1000) // VOLT - 2, "without spread: what the limit leaves"
    assert 6 <= slow < fast - 5, (slow, fast)
    # and at that pace the car is full before 07:00 (6 h less the margin)
    need_wh = 25 * cfg["battery"]["capacity_wh"] / 100 / cfg["battery"]["efficiency"]
    assert slow * VOLT * 6 >= need_wh


def test_a_clock_that_becomes_valid_is_not_the_end_of_a_peak_window():
    cfg = cfg_for(limit=5000, hold=30)
    cfg["charger"]["start_delay_max_s"] = 3600
    w = Car(house_w=1000, follow_ms=1000, noise_a=0)
    st, ctl = meter_for(w, cfg)
    valid = ctl.b.utc
    ctl.b.utc = lambda: 0 if ctl.b.t < 5000 else valid()     # no clock for the first 5 s
    run_for(ctl, w, 3 * MIN)
    assert ctl.hold == 0
    assert [a for t, a in w.writes if a >= 6], "charging within minutes, no start delay"
