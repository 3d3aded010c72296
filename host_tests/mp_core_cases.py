# Runs under CPython AND the MicroPython unix port: feeds shared cases through the pure core and
# prints one JSON result per line. The differential test compares both outputs.
import json
import sys

import config
import meter
import scheduler


def run(path):
    with open(path) as f:
        cases = json.load(f)
    for case in cases:
        kind = case[0]
        if kind == "plan":
            cfg = config.validate(case[1])
            a = case[2]
            out = list(scheduler.plan(a[0], a[1], a[2], a[3], a[4], a[5], cfg))
            out[scheduler.P_EM_COST] = round(out[scheduler.P_EM_COST], 6)
        elif kind == "alloc":
            out = list(scheduler.allocate(*case[1]))
        elif kind == "advice":
            cfg = config.validate(case[1])
            out = list(scheduler.advice(case[2], case[3], cfg))
        elif kind == "meter":
            c = meter.new()
            meter.roll(c, case[1])
            for s in case[2]:
                meter.add(c, s[0], s[1], s[2], s[3], s[4], s[5])
                meter.roll(c, s[6])
            rec = meter.record(c)
            assert meter.restore(rec) == c
            out = c + [round(meter.bill(c, {"price": case[3]}, False), 6),
                       round(meter.bill(c, {"price": case[3]}, True), 6)]
        elif kind == "config":
            try:
                cfg = config.validate(case[1])
                out = [list(cfg["_win"]), cfg["_eff_pct"], cfg["_noncrit"]]
            except ValueError as e:
                out = ["error", str(e)]
        else:
            out = ["unknown"]
        print(json.dumps(out))


run(sys.argv[1])
