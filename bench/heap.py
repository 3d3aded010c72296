"""Heap: the smallest board heap (free heap when `main` starts) at which the headless 24-hour
default day completes with the cloud on, and its high-water mark.

    .venv/bin/python -m bench.heap --twin            # the board twin: the figure that counts
    .venv/bin/python -m bench.heap --frozen          # the twin with the firmware frozen in
    .venv/bin/python -m bench.heap                   # the 64-bit unix port (a fast proxy)
    options: [--hours 24] [--speed 600] [--lo KIB] [--hi KIB] [--scenario S.json]

A run "completes" when the firmware boots once, reaches the end without a reset or a traceback,
loses no control tick to a MemoryError (ticks_lost_oom 0) and skips no shadow write for want of
memory (shadow_writes_skipped 0). Bisects in 1 KiB steps between --lo and --hi. The cap is the
board's own free heap: sim.run adds the ROMFS image (in flash on the board) and, on the 64-bit
binary, the libraries the board freezes; nothing else is credited.
"""
import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from sim import run as simrun  # noqa: E402


def completes(kib, a, d):
    argv = ["--hours", str(a.hours), "--speed", str(a.speed), "--heap", "%dK" % kib,
            "--sim-dir", d] + (["--twin"] if a.twin else []) + (["--frozen"] if a.frozen else [])
    if a.scenario:
        argv += ["--scenario", a.scenario]
    s = simrun.Sim(simrun.main_args(argv)).run()
    with open(os.path.join(d, "firmware.log")) as f:
        log = f.read()
    ok = (not s.get("error") and s.get("boot") and s.get("firmware_exit") in (0, None, -2)
          and s.get("hours", 0) >= a.hours - 0.01 and not s.get("ticks_lost_oom")
          and not s.get("shadow_writes_skipped")
          and "MemoryError" not in log and "Traceback" not in log
          and log.count('"boot":1') == 1)
    print("%3d KiB %s boot free %s, high-water %s, skipped %s, lost %s" % (
        kib, "ok  " if ok else "FAIL", (s.get("boot") or {}).get("free"),
        s.get("heap_peak_bytes"), s.get("shadow_writes_skipped"), s.get("ticks_lost_oom")),
        file=sys.stderr)
    return ok, s


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--hours", type=float, default=24)
    ap.add_argument("--speed", type=float, default=600)
    ap.add_argument("--scenario", default=None)
    ap.add_argument("--twin", action="store_true", help="on the board twin")
    ap.add_argument("--frozen", action="store_true", help="on the twin, firmware frozen in")
    ap.add_argument("--lo", type=int, default=None, help="KiB known to fail")
    ap.add_argument("--hi", type=int, default=None, help="KiB expected to pass")
    a = ap.parse_args(argv)
    lo = a.lo if a.lo is not None else 16 if a.twin or a.frozen else 32
    hi = a.hi if a.hi is not None else 40 if a.twin or a.frozen else 56
    d = os.path.join(ROOT, "build", "bench-heap")
    ok, best = completes(hi, a, d)
    if not ok:
        print(json.dumps({"smallest_heap_kib": None, "note": "fails at --hi", "summary": best}))
        return
    while hi - lo > 1:
        mid = (lo + hi) // 2
        ok, s = completes(mid, a, d)
        if ok:
            hi, best = mid, s
        else:
            lo = mid
    out = {"smallest_heap_kib": hi, "binary": "frozen twin" if a.frozen else
           "twin" if a.twin else "64-bit", "boot_free_bytes": (best.get("boot") or {}).get("free"),
           "heap_peak_bytes": best["heap_peak_bytes"], "image_bytes": best.get("image_bytes"),
           "hours": a.hours, "speed": a.speed}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
