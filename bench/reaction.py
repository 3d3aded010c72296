"""Reaction time: household load step -> the meter's new charger current, over many steps.

    .venv/bin/python -m bench.reaction [--steps 60] [--speed 5]

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


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--speed", type=float, default=5)
    a = ap.parse_args(argv)
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
