"""The whole meter: firmware ROMFS image on the MicroPython unix port (heap capped at the
board-equivalent 48K + the image), emulated PZEM + charger on one pty bus, one simulated clock.
Each test runs its own short scenario (docs/scenario.md) through sim.run."""
import json

import store
import state
import meter
from simkit import base_config, local_min, run_sim, series


def ran_ok(summary, log):
    assert summary.get("error") is None, log[-3000:]
    assert summary["boot"] is not None, log[-3000:]
    assert "MemoryError" not in log, log[-3000:]
    assert "Traceback" not in log.replace("KeyboardInterrupt", ""), log[-3000:]
    assert summary["heap_cap_bytes"] == 48 * 1024


def test_load_steps_are_answered_within_one_second(tmp_path):
    scen = {"start": "2025-01-15 22:10",
            "house": [{"at": "22:10", "w": 500}, {"at": "22:13", "w": 2500},
                      {"at": "22:14", "w": 600}, {"at": "22:16", "w": 3200},
                      {"at": "22:17", "w": 500}, {"at": "22:19", "w": 2900}],
            "ev": [{"at": "22:10", "plug": True, "soc": 40, "capacity_wh": 60000}]}
    cfg = base_config()
    cfg["charger"]["restart_hold_s"] = 20
    s, world, log = run_sim(tmp_path, scen, hours=0.17, speed=10, config=cfg)
    ran_ok(s, log)
    # every step that made the charger's current too big got a new command in < 1 s
    assert len(world["reactions_s"]) >= 3, world["reactions_s"]
    assert max(world["reactions_s"]) <= 1.0, world["reactions_s"]
    assert s["ev_energy_wh"] > 100
    # what remains over the limit is the charger's own 2 s delay to follow, per step
    assert s["over_limit_s"] <= 3 * 3.5, s


def test_peak_pauses_charging_and_it_resumes_after(tmp_path):
    cfg = base_config(peak=["17:00-17:20"])
    cfg["charger"]["restart_hold_s"] = 30
    scen = {"start": "2025-01-15 16:50", "house": [{"at": "16:50", "w": 600}],
            "ev": [{"at": "16:50", "plug": True, "soc": 30, "capacity_wh": 60000}]}
    s, world, log = run_sim(tmp_path, scen, hours=0.6, speed=60, config=cfg)
    ran_ok(s, log)
    rows = series(world)
    before = [r for r in rows if 16 * 60 + 53 <= local_min(r["t"]) < 16 * 60 + 59]
    during = [r for r in rows if 17 * 60 <= local_min(r["t"]) < 17 * 60 + 20]
    after = [r for r in rows if 17 * 60 + 22 <= local_min(r["t"])]
    assert before and all(r["ev_w"] > 0 for r in before), before
    assert during and all(r["ev_w"] == 0 for r in during), during
    assert after and all(r["ev_w"] > 0 for r in after), after
    assert s["ev_energy_peak_wh"] == 0
    assert s["over_limit_s"] == 0


def test_silent_pzem_pauses_the_ev_and_corrupt_frames_are_ignored(tmp_path):
    scen = {"start": "2025-01-15 22:30", "house": [{"at": "22:30", "w": 800}],
            "ev": [{"at": "22:30", "plug": True, "soc": 30, "capacity_wh": 60000}],
            "faults": [{"at": "22:33", "dev": "pzem", "kind": "crc", "s": 0.6},
                       {"at": "22:34", "dev": "charger", "kind": "crc", "s": 0.6},
                       {"at": "22:40", "dev": "pzem", "kind": "silent", "s": 300}]}
    cfg = base_config()
    cfg["charger"]["restart_hold_s"] = 30
    s, world, log = run_sim(tmp_path, scen, hours=0.33, speed=30, config=cfg)
    ran_ok(s, log)
    rows = series(world)
    ok1 = [r for r in rows if 22 * 60 + 32 <= local_min(r["t"]) < 22 * 60 + 40]
    silent = [r for r in rows if 22 * 60 + 41 <= local_min(r["t"]) < 22 * 60 + 45]
    back = [r for r in rows if 22 * 60 + 47 <= local_min(r["t"])]
    # a short burst of corrupt frames: discarded, no fault, charging goes on
    assert ok1 and all(r["ev_w"] > 0 for r in ok1), ok1
    assert silent and all(r["ev_w"] == 0 for r in silent), silent
    assert back and all(r["ev_w"] > 0 for r in back), back
    assert "pzem" in s["faults"]
    assert "charger" not in s["faults"]
    assert s["over_limit_s"] == 0


def test_killed_meter_restores_its_counters(tmp_path):
    scen = {"start": "2025-01-15 22:30", "house": [{"at": "22:30", "w": 3000}],
            "ev": [{"at": "22:30", "plug": True, "soc": 35, "capacity_wh": 60000}]}
    s, world, log = run_sim(tmp_path, scen, hours=0.5, speed=60, kill_at=0.3)
    ran_ok(s, log)
    k = s["kills"][0]
    assert k["restored_wh"] > 800
    assert 0 <= k["lost_wh"] <= 10, k
    assert log.count('"boot":1') == 2


def test_corrupt_store_slot_is_ignored(tmp_path):
    scen = {"start": "2025-01-15 10:00", "house": [{"at": "10:00", "w": 2000}]}
    s, world, log = run_sim(tmp_path, scen, hours=0.1, speed=60)
    ran_ok(s, log)
    d = tmp_path / "run"
    slots = []
    for i in (0, 1):
        b = (d / ("store%d" % i)).read_bytes()
        st = state.State(3)
        st.counters = meter.new()
        slots.append((store.unpack(b, st), i, st.counters[meter.C_TOTAL]))
    slots.sort()
    (seq_old, i_old, wh_old), (seq_new, i_new, wh_new) = slots
    b = bytearray((d / ("store%d" % i_new)).read_bytes())
    b[30] ^= 0xFF
    (d / ("store%d" % i_new)).write_bytes(bytes(b))
    s2, _, log2 = run_sim(tmp_path, scen, hours=0.02, speed=60, keep_store=True)
    ran_ok(s2, log2)
    assert s2["boot"]["bad_slots"] == 1
    assert s2["boot"]["seq"] == seq_old and s2["boot"]["wh"] == wh_old
    assert "store" in s2["faults"]


def test_without_a_valid_clock_normal_charging_is_held(tmp_path):
    scen = {"start": "2025-01-15 23:00", "house": [{"at": "23:00", "w": 500}],
            "ev": [{"at": "23:00", "plug": True, "soc": 30, "capacity_wh": 60000}]}
    cfg = base_config()
    cfg["charger"]["restart_hold_s"] = 10
    s, world, log = run_sim(tmp_path, scen, hours=0.1, speed=60, config=cfg, clock="none")
    ran_ok(s, log)
    assert s["ev_energy_wh"] == 0
    assert "clock" in s["faults"]
    # the OLED says why (page 2 is shown at some point): "no time:EV held"
    lines = [json.loads(x) for x in log.splitlines() if x.startswith('{"t"')]
    assert lines and all(x["ev_a"] == 0 for x in lines)
