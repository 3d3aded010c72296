"""`python -m sim.run` that also records every plan the meter writes to its shadow.

    python -m bench.month_run <sim.run arguments>

The firmware reports its plan on its report line only every 500 ms of real time (its watchdog
task), i.e. every 20 simulated minutes at x2400; the shadow gets each new plan as the meter
sends it. This wraps the NETPIE stand-in's shadow write (nothing else changes) and writes
`<sim-dir>/plans.json`: [[simulated UTC s, the shadow's "plan" object or null], ...].
"""
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tools"))

import netpie_standin  # noqa: E402  (the module sim.run imports: patched once, here)
from sim import run as simrun  # noqa: E402

PLANS = []
_write = netpie_standin.Standin._write


def _recording_write(self, cid, data, merged=True, ts=None, notify=True):
    ok = _write(self, cid, data, merged, ts, notify)
    if ok and cid == self.meter["client_id"] and isinstance(data, dict) and "plan" in data:
        PLANS.append([self.now_ms() / 1000.0, data["plan"]])
    return ok


def main(argv=None):
    a = simrun.main_args(argv)
    netpie_standin.Standin._write = _recording_write
    try:
        simrun.main(argv)
    finally:
        with open(os.path.join(os.path.abspath(a.sim_dir), "plans.json"), "w") as f:
            json.dump(PLANS, f)


if __name__ == "__main__":
    main()
