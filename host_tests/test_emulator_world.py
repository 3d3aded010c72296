"""Unit tests of the emulator's world model (sim/world.py): time parsing, peak windows, battery and
taper, charger delay / timeout, relays -> load, metrics."""
import json
import os

import pytest

from conftest import ROOT
from sim import world as W

CFG = json.load(open(os.path.join(ROOT, "firmware", "config.json.example")))


def make(scen, cfg=None, **kw):
    s = {"start": "2025-01-15 06:00"}
    s.update(scen)
    return W.World(cfg or CFG, s, **kw)


def test_times_and_epoch():
    scen = {"start": "2025-01-15 06:00"}
    e = W.scenario_epoch(CFG, scen)             # 06:00 at UTC+5 = 01:00 UTC
    assert e == 1736902800
    assert W.parse_at("06:00", CFG, scen) == e
    assert W.parse_at("18:30", CFG, scen) == e + 12.5 * 3600
    assert W.parse_at("+1d 07:30", CFG, scen) == e + 25.5 * 3600
    assert W.parse_at(90, CFG, scen) == e + 90
    assert W.parse_at("+1d 00:00:30", CFG, scen) == e + 18 * 3600 + 30
    with pytest.raises(W.ScenarioError):
        W.parse_at("1d 07:30", CFG, scen)


def test_peak_windows_cross_midnight():
    win = W.peak_windows({"peak": ["17:00-22:00", "23:30-01:00"]})
    tz = 300
    def at(h, m):                               # local time on some day -> utc
        return 1736902800 - 6 * 3600 + h * 3600 + m * 60
    assert W.in_windows(at(17, 0), win, tz)
    assert W.in_windows(at(21, 59), win, tz)
    assert not W.in_windows(at(22, 0), win, tz)
    assert W.in_windows(at(23, 45), win, tz)
    assert W.in_windows(at(0, 30), win, tz)
    assert not W.in_windows(at(1, 0), win, tz)
    assert not W.in_windows(at(12, 0), win, tz)


def test_charger_follows_after_delay_and_small_limits_pause():
    w = make({"ev": [{"at": "06:00", "soc": 50}]})
    t = w.t
    assert w.charger_write(1000, [16]) is None
    w.advance(t + 1.9)
    assert w.applied_a == 0 and w.vehicle_state() == 2
    w.advance(t + 2.1)
    assert w.applied_a == 16 and w.vehicle_state() == 3
    assert abs(w.ev_w - 16 * w.voltage) < 1
    w.charger_write(1000, [5])                  # 1..5 A means pause
    w.advance(t + 4.2)
    assert w.applied_a == 0 and w.ev_w == 0 and w.vehicle_state() == 2
    assert w.charger_regs()[1000] == 5          # register keeps what was written
    assert w.charger_write(1000, [81]) == 3
    assert w.charger_write(1001, [1]) == 2


def test_battery_integration_and_taper():
    cfg = dict(CFG, battery={"capacity_wh": 10000, "efficiency": 0.9})
    w = make({"ev": [{"at": "06:00", "soc": 50}]}, cfg)
    w.charger_write(1000, [32])
    t = w.t
    w.advance(t + 2)
    p = w.ev_w                                  # 32 A at ~228 V
    w.advance(t + 2 + 600)
    gained = w.soc - 50
    assert abs(gained - p * 0.9 * (600 / 3600) / 10000 * 100) < 0.5
    # taper: above 80 % the current falls toward 10 % of the onboard maximum at 100 %
    w.soc = 90.0
    w.advance(w.t + 1)
    assert abs(w.ev_a - 32 * (1 - 0.9 * 0.5)) < 0.3
    w.soc = 99.9
    w.advance(w.t + 1)
    assert w.ev_a < 32 * 0.12
    w.advance(w.t + 6 * 3600)
    assert w.soc == 100.0 and w.ev_w == 0 and w.vehicle_state() == 2


def test_taper_does_not_raise_a_low_limit():
    w = make({"ev": [{"at": "06:00", "soc": 90}]})
    w.charger_write(1000, [10])
    w.advance(w.t + 3)
    assert w.ev_a == 10                          # 32 A * 0.55 = 17.6 A > 10 A


def test_comm_timeout_falls_back_to_safe_current():
    w = make({"ev": [{"at": "06:00", "soc": 50}]})
    t = w.t
    w.charger_write(3005, [30, 8])              # timeout 30 s, safe 8 A
    w.charger_write(1000, [16])
    w.advance(t + 29)
    assert w.applied_a == 16
    w.charger_write(1000, [16])                 # refreshed at 29 s
    w.advance(t + 58)
    assert w.applied_a == 16
    w.advance(t + 59.5)
    assert w.applied_a == 8 and w.charger_regs()[1000] == 8 and w.counts["fallbacks"] == 1
    w.charger_write(1000, [20])                 # master back: follows again
    w.advance(t + 62)
    assert w.applied_a == 20


def test_relays_file_drives_loads():
    w = make({"loads": [{"at": "06:00", "name": "ac", "use": True},
                        {"at": "06:00", "name": "heater", "use": True}],
              "house": [{"at": "06:00", "w": 500}]})
    assert w.house_w() == 500 + 1500 + 1000          # missing pins count as closed
    w.relays = {12: 0, 14: 1}
    assert w.house_w() == 500 + 1000
    w.relays = {12: 0, 14: 0}
    assert w.house_w() == 500
    w.use["ac"] = False
    w.relays = {12: 1, 14: 0}
    assert w.house_w() == 500                        # relay on but nobody uses the AC


def test_over_limit_and_dr():
    scen = {"house": [{"at": "06:00", "w": 4000}, {"at": "06:10", "w": 6000},
                      {"at": "06:15", "w": 3000}],
            "commands": [{"at": "06:20", "cmd": "dr", "value": {"limit_w": 2500, "minutes": 5}}]}
    w = make(scen)
    w.advance(w.t0 + 3600)
    m = w.metrics()
    assert m["over_limit_s"] == pytest.approx(300 + 300, abs=1)   # 5 min at 6 kW, 5 min DR
    assert m["over_limit_wh"] == pytest.approx(1000 * 300 / 3600 + 500 * 300 / 3600, abs=1)
    assert m["max_total_w"] == 6000
    assert m["hours"] == 1.0
    lim = {row[0]: row[3] for row in m["series"]}
    assert lim[w.t0 + 22 * 60] == 2500 and lim[w.t0 + 26 * 60] == 5000
    assert len(m["series"]) == 61 and m["series_fields"][0] == "t"


def test_peak_accounting_respects_emergency():
    scen = {"start": "2025-01-15 16:00", "ev": [{"at": "16:00", "soc": 20}],
            "commands": [{"at": "18:00", "cmd": "emergency", "value": True},
                         {"at": "19:00", "cmd": "emergency", "value": "off"}]}
    w = make(scen)
    w.charger_write(1000, [10])
    w.advance(w.t0 + 5 * 3600)                  # 16:00-21:00, peak 17:00-22:00
    p = 10 * w.voltage                          # constant house 0 W, voltage stays ~ same
    assert w.ev_energy_wh == pytest.approx(p * 5, rel=0.01)
    assert w.ev_energy_peak_wh == pytest.approx(p * 3, rel=0.01)   # 17-18 and 19-21


def test_peak_accounting_follows_the_meters_tariff_calendar():
    # Saturday 2025-01-18: the weekend's peak_weekend windows, not the weekday `peak`
    cfg = dict(CFG, peak=["17:00-22:00"], peak_weekend=["10:00-11:00"])
    w = make({"start": "2025-01-18 09:00", "ev": [{"at": "09:00", "soc": 20}]}, cfg)
    w.charger_write(1000, [10])
    w.advance(w.t0 + 10 * 3600)                 # 09:00-19:00
    p = 10 * w.voltage
    assert w.ev_energy_peak_wh == pytest.approx(p * 1, rel=0.01)    # 10-11 only
    # a holiday is a weekend day too; the Monday after is a weekday again
    cfg["holidays"] = ["2025-01-20"]
    w = make({"start": "2025-01-20 16:00", "ev": [{"at": "16:00", "soc": 20}]}, cfg)
    w.charger_write(1000, [10])
    w.advance(w.t0 + 3 * 3600)
    assert w.ev_energy_peak_wh == 0
    w = make({"start": "2025-01-21 16:00", "ev": [{"at": "16:00", "soc": 20}]}, cfg)
    w.charger_write(1000, [10])
    w.advance(w.t0 + 3 * 3600)
    assert w.ev_energy_peak_wh == pytest.approx(10 * w.voltage * 2, rel=0.01)


def test_a_second_car_does_not_inherit_the_first_ones_figures():
    scen = {"ev_model": {"onboard_a": 16, "noise_a": 0.5},
            "ev": [{"at": "06:00", "soc": 40, "onboard_a": 10, "noise_a": 0, "follow_s": 4,
                    "capacity_wh": 30000, "efficiency": 0.8},
                   {"at": "07:00", "plug": False}, {"at": "08:00", "soc": 40}]}
    w = make(scen)
    w.advance(w.t0 + 60)
    assert (w.onboard_a, w.noise_a, w.follow_s, w.capacity_wh, w.efficiency) == (
        10, 0, 4, 30000, 0.8)
    w.advance(w.t0 + 2.5 * 3600)
    assert (w.onboard_a, w.noise_a, w.follow_s, w.capacity_wh, w.efficiency) == (
        16, 0.5, None, CFG["battery"]["capacity_wh"], CFG["battery"]["efficiency"])


def test_emergency_over_limit_and_breaker():
    scen = {"house": [{"at": "06:00", "w": 3000}], "ev": [{"at": "06:00", "soc": 20}],
            "commands": [{"at": "06:30", "cmd": "emergency", "value": True}]}
    w = make(scen)
    w.charger_write(1000, [20])                 # 3 kW + ~4.6 kW > 5 kW sanctioned, > 7.4 kW breaker
    w.advance(w.t0 + 3600)
    assert w.over_limit_s == pytest.approx(3600 - 2, abs=1)
    assert w.over_limit_em_s == pytest.approx(1800, abs=1)
    assert w.over_breaker_s == pytest.approx(3600 - 2, abs=1)
    m = w.metrics()
    assert m["over_limit_em_s"] == pytest.approx(1800, abs=1)


def test_pzem_registers_energy_wrap_and_reset():
    w = make({"house": [{"at": "06:00", "w": 2300}], "pzem": {"energy_wh": 9_999_990}})
    w.advance(w.t0 + 3600)
    r = w.pzem_input()
    e = r[5] | r[6] << 16
    assert e == pytest.approx(2290, abs=2)         # 9 999 990 + 2300 wraps at 10 000 000
    p = (r[3] | r[4] << 16) / 10
    assert p == 2300
    v = r[0] / 10
    assert 230 < v < 232
    i = (r[1] | r[2] << 16) / 1000
    assert i == pytest.approx(2300 / (v * r[8] / 100), rel=0.02)
    assert r[7] == 500 and r[9] == 0
    w.pzem_write(1, 2000)
    assert w.pzem_input()[9] == 0xFFFF
    w.pzem_reset()
    assert w.pzem_input()[5] == 0
    assert w.pzem_write(2, 2) == 3                 # would clash with the charger
    assert w.pzem_write(2, 9) is None and w.pzem_addr == 9


def test_no_ext_and_extension_registers():
    w = make({"ev": [{"at": "06:00", "soc": 42}]})
    r = w.charger_regs()
    assert r[3000] == W.EXT_ID and r[3001] == 42 and r[3002] == 0
    w2 = make({"charger": {"no_ext": True}})
    assert 3000 not in w2.charger_regs()
    assert w2.charger_write(3005, [10]) == 2
    assert w2.charger_regs()[1002] == 1        # no vehicle: state A


def test_start_later_than_scenario_applies_state_without_metrics():
    scen = {"house": [{"at": "06:00", "w": 9000}, {"at": "07:00", "w": 1000}],
            "ev": [{"at": "06:30", "soc": 40}]}
    t0 = W.scenario_epoch(CFG, dict(scen, start="2025-01-15 06:00"))
    w = make(scen, t_start=t0 + 3600 + 30)
    assert w.house_base_w == 1000 and w.plugged and w.over_limit_s == 0
    assert w.next_sample == t0 + 3660


def test_default_day_scenario_loads():
    scen = json.load(open(os.path.join(ROOT, "sim", "scenarios", "default_day.json")))
    w = W.World(CFG, scen)
    assert W.start_local(scen)[3] == 6 * 3600
    w.advance(w.t0 + 26 * 3600)
    m = w.metrics()
    assert m["soc_start"] == pytest.approx(35, abs=5)
    assert m["hours"] == 26
    assert not w.plugged                     # left in the morning


def test_unplug_ends_emergency():
    # control.py clears st.emergency when the EV goes from plugged to A: the next session
    # charges under the sanctioned limit again
    scen = {"ev": [{"at": "06:00", "soc": 20}, {"at": "07:00", "plug": False},
                   {"at": "08:00", "soc": 30}],
            "commands": [{"at": "06:10", "cmd": "emergency", "value": "on"}]}
    w = make(scen)
    w.advance(w.t0 + 1800)
    assert w.emergency and w.limit_w() == CFG["breaker_w"]
    w.advance(w.t0 + 2.5 * 3600)
    assert not w.emergency and w.limit_w() == CFG["sanctioned_w"]


def test_scenario_fault_for_all_devices():
    w = make({"faults": [{"at": "06:10", "dev": "all", "kind": "silent", "s": 60}]})
    w.advance(w.t0 + 630)
    assert w.fault("pzem", "silent", w.t) and w.fault("charger", "silent", w.t)
    with pytest.raises(W.ScenarioError):
        make({"faults": [{"at": "06:10", "dev": "meter", "kind": "silent"}]})


def test_car_defaults_follow_the_validated_config():
    # no charger.max_a in the config: the firmware's default is 16 A, and the emulated car's
    # onboard charger takes the same (taper from 80 % to 0.1 x at 100 %)
    ch = {k: v for k, v in CFG["charger"].items() if k != "max_a"}
    w = make({"ev": [{"at": "06:00", "soc": 50}]}, dict(CFG, charger=ch))
    assert (w.onboard_a, w.taper_soc, w.taper_floor) == (16, 80, 0.1)
    w.charger_write(1000, [32])
    w.advance(w.t + 3)
    assert w.ev_a == 16
    assert CFG["charger"]["max_a"] == 32 and "_win" not in CFG     # the caller's dict untouched
