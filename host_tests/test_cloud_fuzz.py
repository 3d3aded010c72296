"""No cloud input takes the meter offline: seeded fuzz cases (host_tests/cloudfuzz.py) through the
real broker and the NETPIE stand-in, by publishMsg and by writeShadow, to netpie.Cloud on the
MicroPython unix port. Every case must end in its documented error with the settings unchanged
(or be ignored, for what the docs say is ignored), with one connection for the whole run and the
loop never blocked. This is a slice; `python -m bench.cloud_fuzz` runs the long version."""
import time

import cloudfuzz
from test_netpie_mp import MP, WDT_S, cfg_for, shadow_until, si  # noqa: F401 - si is a fixture

SEED = 20261204


def test_a_slice_of_fuzzed_cloud_input_gets_its_documented_error_and_never_drops_the_link(
        si, tmp_path):  # noqa: F811
    mp = MP(tmp_path, cfg_for(si.port))
    dash = si.dashboard_client()
    try:
        mp.wait(lambda r: r["ph"] == 4, 10, "connected")
        todo = cloudfuzz.cases(SEED, 120, 80)
        kinds = {(c[0], c[3] is None) for c in todo}
        assert {("msg", False), ("shadow", False), ("shadow", True)} <= kinds
        bad = cloudfuzz.run(mp, dash, "meter", todo)
        assert not bad, "%d of %d cases failed, first: %s" % (len(bad), len(todo), bad[:3])
        st = si.stats()["meter-1"]
        assert st["connects"] == 1, st          # zero link drops
        r = mp.last
        end = cloudfuzz.settings(r)
        assert r["ph"] == 4 and r["faults"] & 8 == 0, r     # no cloud fault either
        assert r["step_ms"] < WDT_S * 1000 and r["gap_ms"] < WDT_S * 1000, r
        # a bad value written to the shadow does not stay there to come back after a reconnect:
        # the meter wrote its own setting (target, emergency, choice) or null (the others) over it
        # (at the telemetry's own pace: a dirty state is written within a few seconds)
        shadow_until(si, lambda sh: sh.get("emergency") is False and sh.get("choice") == "accept"
                     and sh.get("target") == "" and sh.get("dr") is None and
                     sh.get("trip") is None, 15, "bad values overwritten")
        # and after a reconnect the shadow's get response brings back nothing to refuse again
        mp.ctl(wifi=False)
        mp.wait(lambda r: r["ph"] != 4, 30, "link down")
        mp.ctl(wifi=True)
        mp.wait(lambda r: r["ph"] == 4, 30, "link back")
        time.sleep(2)
        # settings restored; a huge value left in a field no one reads is only reported as cut
        assert cloudfuzz.settings(mp.last) == end, mp.last
        assert mp.last["error"] in ("",) or mp.last["error"].startswith("cloud: message of "), \
            mp.last
        assert si.stats()["meter-1"]["connects"] == 2
    finally:
        dash.disconnect()
        dash.loop_stop()
        mp.stop()
