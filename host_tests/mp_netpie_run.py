# Runs under the MicroPython unix port (MICROPYPATH=firmware:build/lib:.frozen; umqtt.simple from
# build/lib or the test's variant): netpie.Cloud against a broker, with a fake board and a State
# a fake control task keeps changing. Driven by host_tests/test_netpie_mp.py.
#   micropython mp_netpie_run.py CONFIG.json CONTROL.json
# CONTROL.json (rewritten by the test at any time): {"wifi": true, "power": 1234, "quit": false}
# Prints one JSON line about every 200 ms: the user settings, faults, error, Cloud phase, the
# longest Cloud step and the longest gap of a 5 ms heartbeat task (both in ms).
import sys
import json
import time
import asyncio
import gc
import state
import meter

gc.collect()
m0 = gc.mem_free()
import netpie   # noqa: E402

gc.collect()
m1 = gc.mem_free()

cfg = json.load(open(sys.argv[1]))
ctl_path = sys.argv[2]


class Board:
    wifi = True

    def wifi_ok(self):
        return self.wifi


st = state.State(len(cfg["loads"]))
board = Board()
cloud = netpie.Cloud(cfg, st, board)
gc.collect()
m2 = gc.mem_free()
R = {"step": 0, "gap": 0, "steps": 0, "slow": 0}
_orig = cloud._step


def timed_step():
    t0 = time.ticks_us()
    try:
        _orig()
    finally:
        d = time.ticks_diff(time.ticks_us(), t0)
        R["steps"] += 1
        if d > R["step"]:
            R["step"] = d
        if d > 100000:
            R["slow"] += 1


cloud._step = timed_step


async def heartbeat():
    t = time.ticks_us()
    while True:
        await asyncio.sleep_ms(5)
        n = time.ticks_us()
        d = time.ticks_diff(n, t)
        if d > R["gap"]:
            R["gap"] = d
        t = n


async def control():
    # stands in for main.py's 1 s control task
    n = 0
    c = meter.new()
    for i in range(meter.N):
        c[i] = 0
    c[meter.C_DAY_OFF] = 4200
    c[meter.C_DAY_PEAK] = 1300
    c[meter.C_MON_OFF] = 88000
    c[meter.C_MON_PEAK] = 21000
    c[meter.C_DAY_EV] = 3000
    c[meter.C_MON_EV] = 60000
    st.counters = c
    st.ev_state = 3
    st.ev_soc_pct = 42
    st.ev_current_a = 16
    st.limit_w = 5000
    last = None
    while True:
        st.now = int(time.time())
        try:
            with open(ctl_path) as f:
                ctl = json.loads(f.read())
        except (OSError, ValueError):
            ctl = {}
        if ctl.get("quit"):
            return
        board.wifi = ctl.get("wifi", True)
        p = ctl.get("power", 2000)
        if p != st.power_w:
            st.power_w = p
            st.ev_power_w = p // 2
            st.dirty = True
        st.plan = (False, st.now + 7200, 180, 80, 95, st.now + 5400, 100, st.now + 3600, 45.5, 3)
        st.advice = 1
        sig = (st.target_min, st.emergency, st.choice, tuple(st.loads), st.trip_soc_pct,
               st.dr_limit_w, st.dr_until, st.start_soc_pct, st.error, cloud.ph)
        if n % 5 == 0 or sig != last:       # at once on a change (the fuzz test waits on it)
            last = sig
            print(json.dumps({
                "target": st.target_min, "emergency": st.emergency, "choice": st.choice,
                "loads": list(st.loads), "trip": st.trip_soc_pct, "dr_w": st.dr_limit_w,
                "dr_until": st.dr_until, "start_soc": st.start_soc_pct, "faults": st.faults,
                "error": st.error, "ph": cloud.ph, "step_ms": R["step"] / 1000,
                "gap_ms": R["gap"] / 1000, "steps": R["steps"], "slow": R["slow"],
                "now": st.now, "import_b": m0 - m1, "cloud_b": m1 - m2}))
        n += 1
        await asyncio.sleep_ms(40)


async def main():
    asyncio.create_task(cloud.run())
    asyncio.create_task(heartbeat())
    await control()


asyncio.run(main())
