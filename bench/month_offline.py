"""The month's departure answer offline: where does an optimistic prediction come from?

    .venv/bin/python -m bench.month_offline [--rule fw] [--rows] [--world build/month]

CPython, no emulator: replays the household load of sim/scenarios/month_<household>.json through
the firmware's own `meter.learn` (a half-hour's mean folded in when it ends, as control.py does)
and, for every session, calls the firmware's `scheduler.plan` at plug-in + 30 min three ways:

  * learned: with the profile learned so far (what the meter shows);
  * oracle:  with a profile holding that night's true half-hour means (a perfect profile);
  * ideal:   no plan at all: a minute-by-minute charge of the emulated car (sim/world.py's taper)
             at the whole amps the true load of each minute leaves, from the end of the peak
             window (+ the mean start delay) to the departure.

learned - oracle is the profile's error, oracle - ideal the plan's model (half-hour means, the
FOLLOW_A margin, the floor to whole %), ideal - reached (with --world, a bench run's sim dir)
the control loop's and the harness's losses (ramps, pauses, the random delay, the emulator's
tick). `--rule` picks an alternative learning rule to compare (see RULES; the firmware's is
`fw`), `--follow-a 0` the plan without its margin. Findings: docs/benchmarks.md section 8.
"""
import argparse
import datetime
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "firmware"))
sys.path.insert(0, ROOT)

import config  # noqa: E402
import meter  # noqa: E402
import scheduler as S  # noqa: E402
from bench.make_month import HOUSEHOLDS, path as scen_path  # noqa: E402

EPOCH = datetime.datetime(2000, 1, 1)
PRED_AFTER = 30                 # minutes after plug-in


def _fold(prof, i, w, up, down):
    # meter.learn with other rise/fall fractions (1/up of a rise, 1/down of a fall)
    v = prof[2 * i] | prof[2 * i + 1] << 8
    n = prof[192 + i]
    if not n:
        v = w
    elif w > v:
        v += (w - v + up - 1) // up
    else:
        v -= (v - w) // down
    v = min(v, 65535)
    prof[2 * i] = v & 255
    prof[2 * i + 1] = v >> 8
    prof[192 + i] = min(n + 1, 255)


RULES = {
    "fw": meter.learn,
    "d16": lambda p, i, w: _fold(p, i, w, 2, 16),
    "d32": lambda p, i, w: _fold(p, i, w, 2, 32),
    "u1d16": lambda p, i, w: _fold(p, i, w, 1, 16),
    "u1d32": lambda p, i, w: _fold(p, i, w, 1, 32),
    "max": lambda p, i, w: _fold(p, i, w, 1, 1 << 30),
}


def load_scenario(name, scen_dir=None):
    with open(os.path.join(scen_dir, "month_%s.json" % name) if scen_dir else scen_path(name)) as f:
        sc = json.load(f)
    start = datetime.datetime.strptime(sc["start"], "%Y-%m-%d %H:%M")
    m0 = int((start - EPOCH).total_seconds()) // 60       # local minutes since 2000

    def at(s):
        d = 0
        if s.startswith("+"):
            d, s = s[1:].split("d ")
            d = int(d)
        hh, mm = s.split(":")
        return d * 1440 + int(hh) * 60 + int(mm) - (start.hour * 60 + start.minute)

    n = int(sc["hours"] * 60) + 1
    house = [0] * n
    steps = [(at(e["at"]), e["w"]) for e in sc["house"]]
    for k, (t, w) in enumerate(steps):
        e = steps[k + 1][0] if k + 1 < len(steps) else n
        for m in range(max(t, 0), min(e, n)):
            house[m] = w
    sessions = []
    ev = sc["ev"]
    cmds = [c for c in sc["commands"] if c["cmd"] == "target"]
    for k in range(0, len(ev), 2):
        hh, mm = cmds[k // 2]["value"].split(":")
        sessions.append({"plug": at(ev[k]["at"]), "unplug": at(ev[k + 1]["at"]),
                         "soc": ev[k]["soc"], "target": int(hh) * 60 + int(mm)})
    return m0, house, sessions


def ideal(house, m0, a, b, soc, cfg, delay_min):
    """SOC reached charging from local minute a to b at the whole amps each minute's true load
    leaves (no ramps, no restart hold), off-peak only, after delay_min past each peak window."""
    c = cfg["charger"]
    per_a = cfg["voltage_v"] * c["phases"]
    lim = cfg["sanctioned_w"]
    cap = cfg["battery"]["capacity_wh"]
    eff = cfg["battery"]["efficiency"]
    x = float(soc)
    hold = -1
    for m in range(a, b):
        loc = m0 + m
        win = S.day_windows(loc // 1440, cfg)
        if S.is_peak(loc % 1440, win):
            hold = m + 1 + delay_min
            continue
        if m < hold or x >= 100:
            continue
        amps = min((lim - house[m]) // per_a, c["max_a"])
        if amps < c["min_a"]:
            continue
        if x > 80:      # the emulated car's taper (sim/world.py defaults: 80 %, floor 0.1)
            amps = min(amps, c["max_a"] * (1 - 0.9 * (x - 80) / 20))
        x = min(100.0, x + amps * per_a * eff / 60 / cap * 100)
    return x


def run(name, cfg, rule, delay_s, margin=0, scen_dir=None):
    m0, house, sessions = load_scenario(name, scen_dir)
    off = cfg["tz_offset_min"]
    prof = bytearray(meter.PROFILE_SIZE)
    learned_upto = 0            # minutes index (relative) of the next half-hour to fold
    first = (30 - (m0 % 30)) % 30
    out = []

    def fold_until(m):
        nonlocal learned_upto
        # fold every whole half-hour that ended at or before relative minute m
        s = learned_upto if learned_upto else first
        while s + 30 <= m:
            loc = m0 + s
            i = S.day_type(loc // 1440, cfg) * 48 + loc % 1440 // 30
            rule(prof, i, sum(house[s:s + 30]) // 30)
            s += 30
        learned_upto = s

    for se in sessions:
        t = se["plug"] + PRED_AFTER
        fold_until(t)
        now = (m0 + t - off) * 60
        loc = m0 + t
        # the emulated SOC at +30 is the plug-in SOC unless it charged off-peak already
        soc = se["soc"]
        if not S.is_peak(loc % 1440, S.day_windows(loc // 1440, cfg)) and \
                not S.is_peak((loc - PRED_AFTER) % 1440, S.day_windows(loc // 1440, cfg)):
            soc = ideal(house, m0, se["plug"], t, soc, cfg, 0)
        soc = int(soc)
        p_l = S.plan(now, se["target"], soc, house[t] + margin, 0, 0, cfg, 0, delay_s, prof)
        # the oracle: the night's true half-hour means in every slot it crosses
        orc = bytearray(meter.PROFILE_SIZE)
        s = t - (loc % 30)
        while s < se["unplug"] + 30:
            lo = m0 + s
            i = S.day_type(lo // 1440, cfg) * 48 + lo % 1440 // 30
            seg = house[max(s, 0):s + 30]
            w = sum(seg) // len(seg) if seg else 0
            orc[2 * i] = w & 255
            orc[2 * i + 1] = w >> 8
            orc[192 + i] = 255
            s += 30
        rest = house[t:t + 30 - loc % 30]
        p_o = S.plan(now, se["target"], soc, sum(rest) // len(rest), 0, 0, cfg, 0, delay_s, orc)
        idl = ideal(house, m0, t, se["unplug"], soc, cfg, delay_s // 60)
        d = datetime.datetime(2000, 1, 1) + datetime.timedelta(minutes=m0 + se["plug"])
        out.append({"household": name, "plug": d.strftime("%a %d %H:%M"),
                    "plug_t": (m0 + se["plug"] - off) * 60 + 946684800,
                    "learned": p_l[S.P_SOC], "learned_full": p_l[S.P_OK],
                    "oracle": p_o[S.P_SOC], "ideal": round(idl, 1)})
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rule", default="fw", choices=sorted(RULES))
    ap.add_argument("--delay-s", type=int, default=300, help="start delay after the peak")
    ap.add_argument("--margin", type=int, default=0, help="W added to the reading (test)")
    ap.add_argument("--follow-a", type=int, default=None,
                    help="scheduler.FOLLOW_A for this run (0: the rule before it)")
    ap.add_argument("--world", default=None,
                    help="a bench.month --sim-dir: compare with the SOC its cars reached")
    ap.add_argument("--profile-days", type=int, default=None,
                    help="scheduler.PROFILE_DAYS for this run")
    ap.add_argument("--scen-dir", action="append", default=None,
                    help="judge on the month_<household>.json of this folder instead (repeatable; "
                         "hold-out months: bench.make_month --seed-offset K --out-dir DIR); "
                         "against the ideal car, figures per folder and for all together")
    ap.add_argument("--rows", action="store_true", help="print every session")
    a = ap.parse_args(argv)
    if a.follow_a is not None:
        S.FOLLOW_A = a.follow_a
    if a.profile_days is not None:
        S.PROFILE_DAYS = a.profile_days
    if a.scen_dir:
        return holdout(a)
    with open(os.path.join(ROOT, "firmware", "config.json.example")) as f:
        cfg = config.validate(json.load(f))
    rows = []
    for n in HOUSEHOLDS:
        r = run(n, cfg, RULES[a.rule], a.delay_s, a.margin)
        if a.world:
            with open(os.path.join(a.world, n, "world.json")) as f:
                ses = {s["plug_t"]: s for s in json.load(f)["sessions"]}
            for x in r:
                s = ses.get(x["plug_t"])
                x["reached"] = s["soc_end"] if s and s.get("soc_end") is not None else None
        rows += r
    def figs(key, ref):
        e = [x[key] - x[ref] for x in rows if x.get(ref) is not None]
        ab = sorted(abs(v) for v in e)
        return "max opt %+.1f, median abs %.1f, p95 abs %.1f, n %d" % (
            max(e), ab[len(ab) // 2], ab[int(0.95 * (len(ab) - 1))], len(e))
    ref = "reached" if a.world else "ideal"
    if a.rows:
        for x in rows:
            print("%-7s %s  learned %3d%s oracle %3d ideal %5.1f%s  L-O %+3d  O-I %+5.1f" % (
                x["household"], x["plug"], x["learned"], "F" if x["learned_full"] else " ",
                x["oracle"], x["ideal"],
                "  reached %5.1f" % x["reached"] if x.get("reached") is not None else "",
                x["learned"] - x["oracle"], x["oracle"] - x["ideal"]))
    print("rule %s: learned - oracle: %s" % (a.rule, figs("learned", "oracle")))
    print("rule %s: learned - %s: %s" % (a.rule, ref, figs("learned", ref)))
    print("oracle - ideal: %s" % figs("oracle", "ideal"))
    if a.world:
        print("ideal - reached: %s" % figs("ideal", "reached"))
    ff = sum(1 for x in rows if x["learned_full"] and x[ref] is not None and x[ref] < 99)
    print("false full vs %s: %d" % (ref, ff))


def _figs(e):
    ab = sorted(abs(v) for v in e)
    return "max opt %+.1f, median abs %.1f, p95 abs %.1f, optimistic > 1: %d, n %d" % (
        max(e), _pct(ab, 50), _pct(ab, 95), sum(1 for v in e if v > 1), len(e))


def _pct(ab, q):
    # linear interpolation between ranks, as bench.month's figures
    k = (len(ab) - 1) * q / 100
    f = int(k)
    c = min(f + 1, len(ab) - 1)
    return ab[f] + (ab[c] - ab[f]) * (k - f)


def holdout(a):
    """The learned rule against the ideal car on other months (no bench run needed)."""
    with open(os.path.join(ROOT, "firmware", "config.json.example")) as f:
        cfg = config.validate(json.load(f))
    every = []
    for d in a.scen_dir:
        e, ff = [], 0
        for n in HOUSEHOLDS:
            for x in run(n, cfg, RULES[a.rule], a.delay_s, a.margin, d):
                e.append(x["learned"] - x["ideal"])
                ff += x["learned_full"] and x["ideal"] < 99
        print("%s: learned - ideal: %s, false full %d" % (d, _figs(e), ff))
        every += e
    print("all: learned - ideal: %s" % _figs(every))


if __name__ == "__main__":
    main()
