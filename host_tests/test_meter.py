"""meter.py: exact integral, tariff split, PZEM register use, rollover, bill, record round trip."""
import datetime
from fractions import Fraction

import pytest
from hypothesis import given, settings, strategies as st

import meter as M

samples = st.lists(st.tuples(st.integers(1, 5000),          # dt_ms
                             st.integers(0, 20000),         # supply W
                             st.integers(0, 20000),         # EV W
                             st.booleans(), st.booleans()),  # peak, emergency
                   min_size=1, max_size=300)


def parts_day(c):
    return c[M.C_DAY_OFF] + c[M.C_DAY_PEAK] + c[M.C_DAY_EM]


@settings(max_examples=200, deadline=None)
@given(samples)
def test_energy_is_the_exact_integral_and_parts_sum_to_total(ss):
    c = M.new()
    M.roll(c, 0)
    exact_h = exact_e = Fraction(0)
    for dt, p, ev, peak, em in ss:
        M.add(c, dt, p, ev, peak, em)
        ev_c = min(ev, p)
        exact_e += Fraction(ev_c * dt, 3_600_000)
        exact_h += Fraction((p - ev_c) * dt, 3_600_000)
    # whole Wh counted, the remainder (< 1 Wh per consumer) carried
    assert c[M.C_DAY_EV] == int(exact_e)
    assert c[M.C_TOTAL] == int(exact_e) + int(exact_h)
    assert parts_day(c) == c[M.C_TOTAL]
    assert c[M.C_MON_OFF] + c[M.C_MON_PEAK] + c[M.C_MON_EM] == c[M.C_TOTAL]
    assert 0 <= c[M.C_ACC_H] < 3_600_000 and 0 <= c[M.C_ACC_E] < 3_600_000


def test_tariff_split():
    c = M.new()
    M.roll(c, 0)
    M.add(c, 3_600_000, 1000, 0, False, False)      # 1 kWh house off-peak
    M.add(c, 3_600_000, 3000, 2000, True, False)    # peak: 1 kWh house + 2 kWh EV
    M.add(c, 3_600_000, 5000, 4000, True, True)     # emergency: house 1 kWh peak, EV 4 kWh em
    assert c[M.C_DAY_OFF] == 1000
    assert c[M.C_DAY_PEAK] == 1000 + 2000 + 1000
    assert c[M.C_DAY_EM] == 4000
    assert c[M.C_DAY_EV] == 6000
    cfg = {"price": {"offpeak": 20.0, "peak": 40.0, "emergency": 60.0}}
    assert M.bill(c, cfg, False) == pytest.approx(1 * 20 + 4 * 40 + 4 * 60)
    assert M.bill(c, cfg, True) == M.bill(c, cfg, False)


def test_pzem_register_drives_the_total_and_wraps():
    c = M.new()
    M.roll(c, 0)
    M.add(c, 1000, 3600, 0, False, False, pzem_wh=M.PZEM_WRAP - 2)   # first: only remembered
    assert c[M.C_TOTAL] == 1
    M.add(c, 1000, 3600, 0, False, False, pzem_wh=M.PZEM_WRAP - 1)
    M.add(c, 1000, 3600, 0, False, False, pzem_wh=0)                  # wrap: +1 Wh
    M.add(c, 1000, 3600, 0, False, False, pzem_wh=1)
    assert c[M.C_TOTAL] == 1 + 3
    # an energy reset (register back to 0 from far away) falls back to the power integral
    M.add(c, 1000, 3600, 0, False, False, pzem_wh=500000)
    assert c[M.C_TOTAL] == 1 + 3 + 1


def test_register_covers_a_meter_outage_with_a_higher_load_than_after_it():
    # the PZEM silent for 10 min while the house drew 4 kW; the first reading after it shows
    # 300 W: the register's 667 Wh are real energy, not a reset (found by a black-box run)
    c = M.new()
    M.roll(c, 0)
    M.add(c, 500, 4000, 0, False, False, pzem_wh=1000)
    M.add(c, 600_000, 300, 0, False, False, pzem_wh=1667)
    assert c[M.C_TOTAL] == 667
    # but more than the PZEM can measure in the gap is still a reset
    M.add(c, 1000, 300, 0, False, False, pzem_wh=1667 + 10 + M.MAX_W // 3600 + 2)
    assert c[M.C_TOTAL] == 667


def test_pzem_register_and_ev_integral_split():
    c = M.new()
    M.roll(c, 0)
    reg = 100
    M.add(c, 1000, 0, 0, False, False, pzem_wh=reg)
    for _ in range(3600):            # one hour: 2000 W house + 3000 W EV
        reg_prev = reg
        M.add(c, 1000, 5000, 3000, False, False, pzem_wh=reg_prev + 0)
        reg = reg_prev
    # register stuck: EV energy still counted, house debt bounded
    assert c[M.C_DAY_EV] == 3000
    assert c[M.C_ACC_H] >= -10 * 3_600_000
    c2 = M.new()
    M.roll(c2, 0)
    reg = 0
    M.add(c2, 1000, 0, 0, False, False, pzem_wh=0)
    acc = Fraction(0)
    for i in range(3600):
        acc += Fraction(5000, 3600)
        M.add(c2, 1000, 5000, 3000, False, False, pzem_wh=int(acc))
    assert c2[M.C_TOTAL] == 5000 and c2[M.C_DAY_EV] == 3000


def test_rollover_day_and_month_and_never_backwards():
    c = M.new()
    d0 = datetime.datetime(2026, 1, 31, 23, 0, tzinfo=datetime.timezone.utc)
    t = int(d0.timestamp()) - 946684800        # the meter counts from 2000
    M.roll(c, t)
    M.add(c, 3_600_000, 1000, 0, False, False)
    t += 3600                                   # Feb 1st 00:00
    M.roll(c, t)
    assert parts_day(c) == 0 and c[M.C_MON_OFF] == 0 and c[M.C_TOTAL] == 1000
    M.add(c, 3_600_000, 2000, 0, False, False)
    M.roll(c, t - 7200)                         # clock jumps back a day: nothing cleared
    assert parts_day(c) == 2000 and c[M.C_MON_OFF] == 2000
    M.roll(c, t + 86400)                        # Feb 2nd: day cleared, month kept
    assert parts_day(c) == 0 and c[M.C_MON_OFF] == 2000


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 200_000))
def test_month_rollover_matches_the_calendar(day):
    # local seconds since 2000 in, the day counter in days since 1970 (stores stay compatible)
    d = datetime.date(2000, 1, 1) + datetime.timedelta(days=day)
    c = M.new()
    M.roll(c, day * 86400 + 3600)
    assert c[M.C_MON] == d.year * 12 + d.month - 1 and c[M.C_DAY] == day + 10957


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 2**31 - 1), min_size=M.N, max_size=M.N))
def test_record_round_trip(vals):
    vals[M.C_ACC_H] = vals[M.C_ACC_H] % 3_600_000
    b = M.record(vals)
    assert len(b) == M.RECORD_SIZE
    assert M.restore(b) == vals


def test_restore_rejects_garbage():
    with pytest.raises(ValueError):
        M.restore(b"\x00" * 10)
    c = M.new()
    c[M.C_DAY_OFF] = -5
    with pytest.raises(ValueError):
        M.restore(M.record(c))
