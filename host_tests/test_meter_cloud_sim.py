"""The whole meter with the cloud: firmware on the unix port (52K heap cap), emulated devices,
and the local NETPIE stand-in on a real broker. Commands travel as the dashboard sends them."""
import glob
import json
import os
import shutil

import pytest

from simkit import base_config, local_min, run_sim, series

pytestmark = pytest.mark.skipif(
    not (shutil.which("mosquitto") or os.path.exists("/usr/sbin/mosquitto")),
    reason="mosquitto not installed (.ci/run installs it)")


def shadow_of(tmp_path, name="run"):
    files = glob.glob(str(tmp_path / name / "netpie" / "shadow-*.json"))
    assert files, "no shadow written"
    with open(files[0]) as f:
        return json.load(f)["data"]


def ok(summary, log):
    assert summary.get("error") is None, log[-3000:]
    assert summary["cloud"] is True
    assert "MemoryError" not in log and "Traceback" not in log, log[-3000:]


def test_emergency_charges_in_peak_under_the_breaker_and_plan_reaches_the_shadow(tmp_path):
    cfg = base_config(peak=["17:00-23:00"])
    cfg["charger"]["restart_hold_s"] = 10
    scen = {"start": "2025-01-15 18:00", "house": [{"at": "18:00", "w": 2000}],
            "ev": [{"at": "18:00", "plug": True, "soc": 30, "capacity_wh": 60000}],
            "commands": [{"at": "18:01", "cmd": "target", "value": "07:30"},
                         {"at": "18:01", "cmd": "trip", "value": "150"},
                         {"at": "18:05", "cmd": "emergency", "value": "on"},
                         {"at": "18:15", "cmd": "emergency", "value": "off"}]}
    s, world, log = run_sim(tmp_path, scen, hours=0.4, speed=30, config=cfg, cloud=True)
    ok(s, log)
    rows = series(world)
    before = [r for r in rows if local_min(r["t"]) < 18 * 60 + 5]
    em = [r for r in rows if 18 * 60 + 7 <= local_min(r["t"]) < 18 * 60 + 15]
    after = [r for r in rows if 18 * 60 + 16 <= local_min(r["t"])]
    assert before and all(r["ev_w"] == 0 for r in before)
    # emergency: full charger power allowed by the 7400 W breaker (not the 5000 W sanctioned)
    assert em and all(r["ev_w"] > 5000 - 2000 for r in em), em
    assert after and all(r["ev_w"] == 0 for r in after)
    assert s["ev_energy_peak_wh"] == 0           # nothing in peak without emergency
    assert s["over_limit_s"] <= 4                 # the charger's own 2 s delay at the switch-off
    assert world["over_breaker_s"] == 0
    sh = shadow_of(tmp_path)
    assert sh["target"] == "07:30" and sh["emergency"] is False
    p = sh["plan"]
    assert p["feasible"] is False and 30 <= p["reachable_soc_pct"] < 100
    assert p["emergency"]["soc_pct"] >= p["reachable_soc_pct"]
    assert "accept" in p["trip_ok"]
    assert sh["energy_today_wh"]["emergency"] > 0


def test_dr_event_lowers_the_limit_while_it_lasts(tmp_path):
    cfg = base_config(peak=[])
    cfg["charger"]["restart_hold_s"] = 10
    scen = {"start": "2025-01-15 10:00", "house": [{"at": "10:00", "w": 1000}],
            "ev": [{"at": "10:00", "plug": True, "soc": 30, "capacity_wh": 60000}],
            "commands": [{"at": "10:05", "cmd": "dr", "value": {"limit_w": 3000, "minutes": 6}}]}
    s, world, log = run_sim(tmp_path, scen, hours=0.25, speed=30, config=cfg, cloud=True)
    ok(s, log)
    rows = series(world)
    dr = [r for r in rows if 10 * 60 + 6 <= local_min(r["t"]) < 10 * 60 + 11]
    post = [r for r in rows if 10 * 60 + 12 <= local_min(r["t"])]
    assert dr and all(r["limit_w"] == 3000 and r["house_w"] + r["ev_w"] <= 3000 for r in dr), dr
    assert all(r["ev_w"] > 0 for r in dr)           # 2000 W left: still >= 6 A
    assert post and all(r["ev_w"] > 3000 for r in post), post
    # the grid's limit drops at once; the meter hears of it through the cloud (x30 here) and
    # the charger follows its new current after 2 s
    assert s["over_limit_s"] <= 6


def test_broker_outage_limit_still_enforced_and_reconnect(tmp_path):
    cfg = base_config(peak=[])
    cfg["charger"]["restart_hold_s"] = 10
    scen = {"start": "2025-01-15 10:00",
            "house": [{"at": "10:00", "w": 800}, {"at": "10:04", "w": 3000},
                      {"at": "10:05", "w": 900}, {"at": "10:06", "w": 2600}],
            "ev": [{"at": "10:00", "plug": True, "soc": 30, "capacity_wh": 60000}],
            "commands": [{"at": "10:01", "cmd": "load/ac", "value": "on"},
                         {"at": "10:08", "cmd": "load/heater", "value": "on"}]}
    s, world, log = run_sim(tmp_path, scen, hours=0.15, speed=10, config=cfg, cloud=True,
                            cloud_outage="0.05,3")
    ok(s, log)
    assert "cloud" in s["faults"]
    # it reconnects, within the back-off's cap (8 s) and a retry more: typically 5-9 s real, 11 s
    # once under a loaded host; a regression guard, not a timing figure (docs/benchmarks.md)
    assert s["reconnect_real_s"] is not None and s["reconnect_real_s"] <= 20, s
    # the stand-in's counts cover the whole run, before the outage too (found by a black-box run)
    with open(tmp_path / "run" / "netpie" / "stats.json") as f:
        assert json.load(f)["meter-0001"]["connects"] >= 2
    # the load steps during the outage were answered as usual
    assert max(world["reactions_s"]) <= 1.0, world["reactions_s"]
    assert s["tick_gap_max_ms"] <= 1500, s       # simulated ms at x10: 150 ms real
    # a command after the broker came back still works
    sh = shadow_of(tmp_path)
    assert sh["loads"]["heater"] == "on" and sh["loads"]["ac"] == "on"
