# MicroPython: the time the Cloud takes to compose one full telemetry write (every field, the
# plan and the once-a-minute ones included) into its packet buffer: the longest synchronous
# piece of a Cloud step in normal operation.
#     build/twin/micropython bench/mp_tele_cost.py [firmware dir]
# Prints one JSON line. The ESP8266 runs the same bytecode roughly 50x slower than a PC core.
import json
import sys
import time

sys.path[:0] = [sys.argv[1] if len(sys.argv) > 1 else "firmware", "sim/hostboard", "build/lib",
                ".frozen"]
import config  # noqa: E402
import meter  # noqa: E402
import netpie  # noqa: E402
import state  # noqa: E402

cfg = config.load("firmware/config.json.example")
st = state.State(len(cfg["loads"]))
st.counters = meter.new()
st.error = "cloud: broker refused the credentials (5)"
st.plan = (True, 790000000, 240, 91, 95, 790001000, 99, 790002000, 12.345, 5)
st.advice = 3
st.faults = 5


class _Board:
    def wifi_ok(self):
        return True


cloud = netpie.Cloud(cfg, st, _Board())
buf = bytearray(1280)
n = 0
runs = 200
t0 = time.ticks_us()
for _ in range(runs):
    for i in range(len(cloud.h)):
        cloud.h[i] = -1         # nothing sent yet: every field goes out
    cloud.sd = 1
    n = cloud._tele(buf)
us = time.ticks_diff(time.ticks_us(), t0)
print(json.dumps({"bytes": n, "us_per_full_write": us // runs}))
