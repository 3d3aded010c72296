"""The same few hundred cases through CPython and the MicroPython unix port: identical answers."""
import json
import os
import random
import subprocess
import sys

from conftest import FIRMWARE, micropython_bin

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(FIRMWARE, "config.json.example")


def make_cases(seed=2026):
    r = random.Random(seed)
    with open(EXAMPLE) as f:
        base = json.load(f)
    cases = []
    for _ in range(150):
        cfg = json.loads(json.dumps(base))
        wins = []
        for _ in range(r.randrange(0, 4)):
            s, e = r.randrange(1440), r.randrange(1440)
            if s != e:
                wins.append("%02d:%02d-%02d:%02d" % (s // 60, s % 60, e // 60, e % 60))
        cfg["peak"] = wins
        cfg["tz_offset_min"] = r.randrange(-720, 841)
        cfg["sanctioned_w"] = r.randrange(1000, 12000)
        cfg["breaker_w"] = cfg["sanctioned_w"] + r.randrange(0, 5000)
        cfg["battery"]["capacity_wh"] = r.randrange(5000, 100000)
        cfg["charger"]["max_a"] = r.randrange(6, 41)
        cfg["charger"]["phases"] = r.choice([1, 3])
        args = [r.randrange(1_600_000_000, 1_900_000_000), r.randrange(1440), r.randrange(101),
                r.randrange(6000), r.randrange(3000), r.randrange(101)]
        cases.append(["plan", cfg, args])
    ch = base["charger"]
    for _ in range(150):
        c = dict(ch, phases=r.choice([1, 3]), max_a=r.randrange(6, 81),
                 restart_hold_s=r.randrange(0, 120), ramp_a_per_s=r.randrange(1, 8))
        cases.append(["alloc", [r.randrange(10000), r.randrange(-100, 25000),
                                r.randrange(1000, 25000), r.randrange(180, 260),
                                r.randrange(0, 40), r.randrange(-1, 10000), c,
                                r.random() < 0.2]])
    for _ in range(30):
        cases.append(["advice", base, r.random() < 0.5, r.randrange(8)])
    for _ in range(60):
        t = r.randrange(1_600_000_000, 1_900_000_000)
        ss = []
        reg = r.choice([-1, r.randrange(10_000_000)])
        for _ in range(r.randrange(1, 60)):
            dt = r.randrange(1, 90_000)
            t += dt // 1000
            if reg >= 0:
                reg = (reg + r.randrange(0, 40)) % 10_000_000
            ss.append([dt, r.randrange(20000), r.randrange(20000), r.random() < 0.4,
                       r.random() < 0.2, reg, t])
        cases.append(["meter", t, ss, {"offpeak": 23.0, "peak": 42.5, "emergency": 60.0}])
    for _ in range(30):
        cfg = json.loads(json.dumps(base))
        k = r.choice(["sanctioned_w", "voltage_v", "peak", "loads", "tz_offset_min"])
        cfg[k] = r.choice([-1, "x", 5.5, [], ["25:00-01:00"], [{"name": "a"}], 100000])
        cases.append(["config", cfg])
    return cases


def run_with(interp, path):
    env = dict(os.environ, MICROPYPATH=FIRMWARE, PYTHONPATH=FIRMWARE)
    out = subprocess.run([interp, os.path.join(HERE, "mp_core_cases.py"), path], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_cpython_and_micropython_agree(tmp_path):
    cases = make_cases()
    assert len(cases) >= 400
    p = tmp_path / "cases.json"
    p.write_text(json.dumps(cases))
    cp = run_with(sys.executable, str(p))
    mp = run_with(micropython_bin(), str(p))
    assert len(cp) == len(mp) == len(cases)
    for case, a, b in zip(cases, cp, mp):
        assert a == b, (case[0], a, b)
    # the cases exercise both answers of the plan
    feas = [r[0] for c, r in zip(cases, cp) if c[0] == "plan"]
    assert any(feas) and not all(feas)
