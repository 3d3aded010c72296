"""Reaction time: household load step -> the meter's new charger current, over many steps.

    .venv/bin/python -m bench.reaction [--steps 60] [--speed 5]
    .venv/bin/python -m bench.reaction --models [--speed 1]

--models runs the plain-charger scenarios instead (sim/scenarios/plain_car_1s.json, _5s, _16a:
registers 1000-1006 only, cars that follow in 1 s or 5 s, a car at its own 16 A offered 32 A,
+-0.5 A noise) at x1 with paced frames, one JSON line per car model: per house step the
reaction (s), the seconds over the limit, the cuts written (1 = no second cut) and the pauses
(0 A written while 6 A fitted).

The emulator times each step that makes the charger's commanded current too big for the limit
until the meter writes a current that fits (world.json "reactions_s", simulated seconds; at
SPEED=5 the tick and the bus are scaled the same way, so the figure is what a board would see
with an instant bus). Also reports the longest gap between two control ticks.
Prints one JSON line: count, min, median, p95, max (s).
"""
import argparse
import json
import os
import random
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from sim import run as simrun  # noqa: E402


def scenario(steps, seed=3):
    r = random.Random(seed)
    house = [{"at": 0, "w": 500}]
    t = 120
    for _ in range(steps):
        house.append({"at": t, "w": 2200 + r.randrange(1500)})     # forces a cut
        house.append({"at": t + 10, "w": 300 + r.randrange(500)})   # room to ramp back up
        t += 30
    return {"start": "2025-01-15 22:05", "house": house,
            "ev": [{"at": 0, "plug": True, "soc": 20, "capacity_wh": 100000}]}, t + 30


MODELS = ("plain_car_1s", "plain_car_5s", "plain_car_16a")


def step_figures(world):
    """Per over-limit spell (one per house step up): seconds over, cuts written while the house
    stayed high (the next 15 s), 0 A writes. From world.json's over_log and writes."""
    spells = world["over_log"]
    writes = world["writes"]
    out = []
    for i, (t0, over_s) in enumerate(spells):
        if i and t0 - spells[i - 1][0] < 15:
            out[-1]["over_s"] += over_s     # the same step, over again (counted against it)
            continue
        w = [x for x in writes if t0 - 1 <= x[0] < t0 + 15]
        prev = [x for x in writes if x[0] < t0 - 1]
        a = prev[-1][1] if prev else None
        cuts = pauses = 0
        for x in w:
            if a is not None and x[1] < a:
                cuts += 1
                pauses += x[1] == 0
            a = x[1]
        out.append({"t": t0, "over_s": over_s, "cuts": cuts, "pauses": pauses})
    return out


def models(speed):
    res = []
    for name in MODELS:
        d = tempfile.mkdtemp(prefix="bench-reaction-%s-" % name)
        sp = os.path.join(ROOT, "sim", "scenarios", name + ".json")
        s = simrun.Sim(simrun.main_args(["--speed", str(speed), "--scenario", sp, "--no-cloud",
                                         "--sim-dir", os.path.join(d, "run")])).run()
        with open(os.path.join(d, "run", "world.json")) as f:
            world = json.load(f)
        steps = step_figures(world)
        rs = sorted(world["reactions_s"])
        out = {"model": name, "speed": speed, "steps": len(steps),
               "reaction_median_s": rs[len(rs) // 2] if rs else None,
               "reaction_max_s": rs[-1] if rs else None,
               "over_s_per_step_max": max([x["over_s"] for x in steps] or [0]),
               "over_limit_s": s["over_limit_s"],
               "second_cuts": sum(x["cuts"] > 1 for x in steps),
               "pauses": sum(x["pauses"] for x in steps),
               "tick_gap_max_ms": s.get("tick_gap_max_ms"), "per_step": steps}
        print(json.dumps(out))
        sys.stdout.flush()
        res.append(out)
    return res


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--speed", type=float, default=5)
    ap.add_argument("--models", action="store_true")
    a = ap.parse_args(argv)
    if a.models:
        return models(a.speed if "--speed" in (argv or sys.argv) else 1)
    scen, dur = scenario(a.steps)
    d = tempfile.mkdtemp(prefix="bench-reaction-")
    sp = os.path.join(d, "scen.json")
    cp = os.path.join(d, "cfg.json")
    with open(sp, "w") as f:
        json.dump(scen, f)
    with open(os.path.join(ROOT, "firmware", "config.json.example")) as f:
        cfg = json.load(f)
    cfg["peak"] = []
    cfg["charger"]["restart_hold_s"] = 5
    cfg["charger"]["ramp_a_per_s"] = 8
    with open(cp, "w") as f:
        json.dump(cfg, f)
    s = simrun.Sim(simrun.main_args(["--hours", str(dur / 3600), "--speed", str(a.speed),
                                     "--scenario", sp, "--config", cp, "--no-cloud",
                                     "--sim-dir", os.path.join(d, "run")])).run()
    with open(os.path.join(d, "run", "world.json")) as f:
        rs = sorted(json.load(f)["reactions_s"])
    out = {"steps": len(rs), "speed": a.speed,
           "min_s": rs[0] if rs else None, "median_s": rs[len(rs) // 2] if rs else None,
           "p95_s": rs[int(len(rs) * 0.95)] if rs else None, "max_s": rs[-1] if rs else None,
           "tick_gap_max_ms": s.get("tick_gap_max_ms"), "over_limit_s": s["over_limit_s"]}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
