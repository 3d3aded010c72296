"""Heap: the smallest board-equivalent -X heapsize at which the headless 24-hour default day
completes (cloud on), and its high-water mark.

    .venv/bin/python -m bench.heap [--hours 24] [--speed 600] [--lo 32] [--hi 48]

A run "completes" when the firmware boots, reaches the end without a reset or a traceback, and
loses no control tick to a MemoryError (ticks_lost_oom 0). Bisects in 1 KiB steps between --lo
and --hi (KiB). The cap printed is the board-equivalent one (sim.run adds the ROMFS image and the
frozen-on-board libraries).
"""
import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from sim import run as simrun  # noqa: E402


def completes(kib, hours, speed, d):
    s = simrun.Sim(simrun.main_args(["--hours", str(hours), "--speed", str(speed), "--heap",
                                     "%dK" % kib, "--sim-dir", d])).run()
    with open(os.path.join(d, "firmware.log")) as f:
        log = f.read()
    # complete = the whole day, one boot, no reset, no traceback, and no control tick lost to a
    # MemoryError (control drops such a tick and goes on, so the log alone does not show it)
    ok = (not s.get("error") and s.get("boot") and s.get("firmware_exit") in (0, None, -2)
          and s.get("hours", 0) >= hours - 0.01 and not s.get("ticks_lost_oom")
          and "MemoryError" not in log and "Traceback" not in log
          and log.count('"boot":1') == 1)
    return ok, s


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--hours", type=float, default=24)
    ap.add_argument("--speed", type=float, default=600)
    ap.add_argument("--lo", type=int, default=32)
    ap.add_argument("--hi", type=int, default=48)
    a = ap.parse_args(argv)
    d = os.path.join(ROOT, "build", "bench-heap")
    lo, hi = a.lo, a.hi
    ok, best = completes(hi, a.hours, a.speed, d)
    if not ok:
        print(json.dumps({"smallest_heap_kib": None, "note": "fails at --hi", "summary": best}))
        return
    while hi - lo > 1:
        mid = (lo + hi) // 2
        ok, s = completes(mid, a.hours, a.speed, d)
        if ok:
            hi, best = mid, s
        else:
            lo = mid
    out = {"smallest_heap_kib": hi, "heap_peak_bytes": best["heap_peak_bytes"],
           "hours": a.hours, "speed": a.speed}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
