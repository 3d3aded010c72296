"""The whole meter: firmware ROMFS image on the MicroPython unix port (heap capped at the
board-equivalent 52K + the image), emulated PZEM + charger on one pty bus, one simulated clock.
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
    assert summary["heap_cap_bytes"] == 52 * 1024


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
    cfg["charger"]["start_delay_max_s"] = 0     # the random start delay: test_control_calendar
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
    # x30: at x60 a few ms of the host's scheduling were a second of simulated energy, and a
    # loaded machine once measured 11.2 Wh lost (7-9 Wh when idle; 3-8 Wh at x30)
    s, world, log = run_sim(tmp_path, scen, hours=0.3, speed=30, kill_at=0.2)
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
    assert s["ntp_syncs"] == 0          # the NTP stand-in is silent while the clock is not valid


def test_the_host_boards_clock_stands_at_the_start_before_the_anchor():
    # the harness anchors its clock a second after it sets up; a meter that boots within that
    # second read "no clock" and showed a clock fault (a CI run's NTP test): it must read the start
    import os
    import subprocess
    import time
    from conftest import ROOT, micropython_bin
    epoch = 1736942400      # 2025-01-15 12:00 UTC
    code = ("import sys; sys.path.insert(0, %r)\nimport board\nprint(board.utc())"
            % os.path.join(ROOT, "sim", "hostboard"))
    for clock, want in (("ok", epoch - 946684800), ("none", 0), ("60", 0)):
        env = dict(os.environ, SIM_EPOCH=str(epoch), SIM_ANCHOR=repr(time.time() + 30),
                   SIM_SPEED="60", SIM_CLOCK=clock)
        out = subprocess.run([micropython_bin(), "-c", code], env=env, capture_output=True,
                             text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        assert int(out.stdout) == want, (clock, out.stdout)


def test_the_meter_syncs_its_clock_over_ntp_at_boot(tmp_path):
    # clock.py on the real unix port against the simulator's NTP stand-in (UDP on 127.0.0.1),
    # which serves the simulated time: the meter takes it to the second (it reads the answer
    # up to 50 ms after it came, 3 simulated seconds at x60)
    scen = {"start": "2025-01-15 12:00", "house": [{"at": "12:00", "w": 500}]}
    s, world, log = run_sim(tmp_path, scen, hours=0.1, speed=60)
    ran_ok(s, log)
    assert s["ntp_syncs"] == 1, log[-1500:]     # at boot; the next one is an hour later
    assert s["ntp_error_max_s"] <= 0.1 * 60 + 1
    assert "clock" not in s["faults"]


def cuts_per_step(world, steps):
    """Writes that lowered register 1000 below what the car drew, per house step: a list of
    (t, amps, amps before) for each step."""
    out = []
    w = world["writes"]
    for i, t0 in enumerate(steps):
        t1 = steps[i + 1] if i + 1 < len(steps) else 1e18
        cuts = []
        prev = None
        for t, a, drew in w:
            if t0 <= t < t1 and prev is not None and a < prev and a < drew - 0.6:
                cuts.append((t, a, prev))
            if t < t1:
                prev = a
        out.append(cuts)
    return out


def test_plain_charger_and_a_16a_car_offered_32a_hold_the_limit(tmp_path):
    # the real firmware on a plain EVSE-DIN charger (no power, no SOC: 3000+ answer exception
    # 02), a car that takes 16 A of 32 offered, follows in 2 s, draw noise +-0.5 A: each step is
    # cut once, to what fits against what the car draws; 6 A fitting is never a pause
    scen = {"start": "2025-01-15 22:10",
            "house": [{"at": "22:10", "w": 1000}, {"at": "22:11:20", "w": 3600},
                      {"at": "22:11:40", "w": 1000}, {"at": "22:12:10", "w": 2900},
                      {"at": "22:12:30", "w": 1000}],
            "ev": [{"at": "22:10", "plug": True, "soc": 40, "capacity_wh": 60000}],
            "charger": {"no_ext": True, "cable_a": 32},
            "ev_model": {"onboard_a": 16, "follow_s": 2, "noise_a": 0.5}}
    cfg = base_config()
    cfg["charger"]["restart_hold_s"] = 10
    cfg["charger"]["ramp_a_per_s"] = 8
    s, world, log = run_sim(tmp_path, scen, hours=0.05, speed=2, config=cfg)
    ran_ok(s, log)
    t0 = world["t0"]
    steps = [t0 + 80, t0 + 100, t0 + 130, t0 + 150]
    w = world["writes"]
    started = [t for t, a, _ in w if a >= 6]
    assert started and started[0] < steps[0], w[:10]
    assert not [x for x in w if x[0] > started[0] and x[1] == 0], ("no pause", w)
    # how fast each step is answered is measured at x1 by bench.reaction --models (timing has
    # no place here: on a loaded 2-core runner this x2 run saw 1.1-1.5 simulated s)
    assert world["reactions_s"], "the cutting steps were timed"
    # each cutting step is cut once; the one thing allowed besides is a trim of 1 A within a
    # second (seen twice at x2, 7 A then 6 A on the first step, depending on where the ticks
    # fall against the step and the car's noise): the car's +-0.5 A
    # and the draw the meter learned from equally noisy readings can leave the first cut 1 A
    # short of what fits, and the limit comes first. Never a second real cut, never one in a
    # step that lowers the house load
    cuts = cuts_per_step(world, steps)
    assert [len(c) for c in cuts[1::2]] == [0, 0], (cuts, w)
    for c in cuts[0::2]:
        assert len(c) == 1 or (len(c) == 2 and c[1][2] - c[1][1] == 1
                               and c[1][0] - c[0][0] <= 1.1), (cuts, w)
    # what stays over the limit: one tick + the car's 2 s to follow, per cutting step (x2)
    assert s["over_limit_s"] <= 2 * (2 + 1.5), (s["over_limit_s"], world["over_log"])
    # the meter knows the car draws 16 A, not the 32 A it offers: its SOC is not run away
    assert abs(world["soc_end"] - s["soc_end"]) < 1 if s.get("soc_end") else True


def test_the_meter_starts_with_the_world_clock_and_a_car_at_the_start_is_not_capped(tmp_path):
    # the harness starts the meter when the simulated clock starts: a meter ticking while the
    # world stood still saw its raises not followed, took the car as at its own limit and its
    # draw (the car's 12 A) as the house's, and offered 9-10 A for good (found by a black-box
    # run: the first scenario second of a car plugged in at the start, x120)
    scen = {"start": "2025-01-15 08:00",
            "house": [{"at": "08:00", "w": 1000}],
            "ev": [{"at": "08:00", "plug": True, "soc": 40, "capacity_wh": 60000,
                    "onboard_a": 12, "follow_s": 5, "noise_a": 0.5}],
            "charger": {"delay_s": 2, "cable_a": 32, "no_ext": True}}
    s, w, _ = run_sim(tmp_path, scen, hours=0.3, speed=120)
    assert s["firmware_exit"] == 0
    times = [x[0] for x in w["writes"]]
    assert times[0] > w["t0"], "the meter wrote the charger while the world stood still"
    assert len(set(times)) == len(times), "writes at one frozen instant"
    amps = [x[1] for x in w["writes"][-5:]]
    assert amps and min(amps) >= 12, amps     # the car takes 12 A; 17 A would fit
    assert w["charger_applied_a"] >= 12
