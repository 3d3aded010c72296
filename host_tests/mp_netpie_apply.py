# Runs under the MicroPython unix port (MICROPYPATH=firmware:.frozen): netpie.apply() on cases
# from a JSON file, one JSON result line per case, for the CPython/MicroPython comparison in
# host_tests/test_netpie_apply.py. Case: [name, payload, kind]; kind "b" = payload is latin-1
# text to send as bytes.
import sys
import json
import state
import netpie

cfg = json.load(open(sys.argv[1]))
for name, p, kind in json.load(open(sys.argv[2])):
    if kind == "b":
        p = bytes(ord(ch) for ch in p)
    st = state.State(len(cfg["loads"]))
    st.now = 1795600000
    st.loads[0] = 1
    r = netpie.apply(st, cfg, name, p)
    print(json.dumps([r, st.target_min, st.emergency, st.choice, list(st.loads),
                      st.trip_soc_pct, st.dr_limit_w, st.dr_until, st.start_soc_pct]))
