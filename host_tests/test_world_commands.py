"""The emulated world takes cloud commands by the firmware's rules (firmware/netpie.py apply() and
firmware/control.py): the same payloads accepted and rejected, choice emergency, DR limits only
lowering the limit, no DR without a clock; and the harness side (sim/run.py): command checks,
the publish topic's alias, the scenario's run length."""
import json
import math
import os
import shutil

import pytest

from conftest import FIRMWARE, ROOT
from sim import run as simrun
from sim import world as W

import netpie
import state as S
from simkit import base_config, run_sim
from test_netpie_apply import BAD, GOOD

CFG = json.load(open(os.path.join(FIRMWARE, "config.json.example")))
SANCTIONED, BREAKER = CFG["sanctioned_w"], CFG["breaker_w"]     # 5000, 7400


def make(scen, **kw):
    s = {"start": "2025-01-15 06:00"}
    s.update(scen)
    return W.World(CFG, s, **kw)


def cmd(at, name, value):
    return {"at": at, "cmd": name, "value": value}


# ---------------------------------------------------------------- same verdicts as apply()
EXTRA = [("dr", {"limit_w": 3000, "minutes": 30.0}), ("dr", {"limit_w": 3000.5, "minutes": 30}),
         ("dr", {"limit_w": 200001, "minutes": 30}), ("dr", '{"limit_w":3000,"minutes":0}'),
         ("dr", " {\"limit_w\": 0, \"minutes\": 0} "), ("dr", None), ("dr", ""),
         ("emergency", "yes"), ("emergency", " On "), ("emergency", ""), ("emergency", "٣"),
         ("choice", "EMERGENCY"), ("choice", "emergency!"), ("choice", 2), ("target", "٠٧:٣٠"),
         ("target", 1439), ("target", -1), ("target", "7:30 ")]
CASES = [(n, p) for n, p, *_ in GOOD + BAD if n in W.WORLD_CMDS and not isinstance(p, bytes)]


@pytest.mark.parametrize("name,value", CASES + EXTRA)
@pytest.mark.parametrize("clock", [True, False])
def test_world_accepts_what_apply_accepts(name, value, clock):
    st = S.State(len(CFG["loads"]))
    w = make({}, clock_from=-math.inf if clock else math.inf)
    st.now = int(w.t) if clock else 0
    fw_ok = netpie.apply(st, CFG, name, value if isinstance(value, str) else json.dumps(value))
    ok = w.command(name, W.payload(value))
    assert ok == (fw_ok is None)
    assert (w.emergency, w.choice, w.target_min, w.dr_limit_w) == (
        st.emergency, st.choice, st.target_min, st.dr_limit_w)
    assert (w.dr_until > w.t) == (st.dr_until > st.now) and (
        not st.dr_until or w.dr_until == st.dr_until)


# ---------------------------------------------------------------- choice emergency
def peak_run(commands):
    """16:00-21:00 (peak 17:00-22:00), 10 A from 16:00: -> world, EV power."""
    w = make({"start": "2025-01-15 16:00", "ev": [{"at": "16:00", "soc": 20}],
              "commands": commands})
    w.charger_write(1000, [10])
    w.advance(w.t0 + 5 * 3600)
    return w, 10 * w.voltage


def test_choice_emergency_until_its_departure():
    w, p = peak_run([cmd("16:30", "target", "19:00"), cmd("18:00", "choice", "emergency")])
    assert w.ev_energy_peak_wh == pytest.approx(p * 3, rel=0.01)    # 17-18 and 19-21
    assert w.choice == 0 and w.limit_w() == SANCTIONED
    lim = {row[0]: row[3] for row in w.series}
    assert lim[w.t0 + 2.5 * 3600] == BREAKER                         # 18:30
    assert lim[w.t0 + 3.5 * 3600] == SANCTIONED                      # 19:30


def test_choice_without_departure_reverts_at_once():
    w, p = peak_run([cmd("18:00", "choice", "emergency")])
    assert w.ev_energy_peak_wh == pytest.approx(p * 4, rel=0.01)    # 17-21: no emergency
    assert w.choice == 0


def test_choice_departure_is_fixed_when_made_and_resent_choice_keeps_it():
    # departure 19:00 when the choice is made: a later target does not extend it, nor does
    # sending the same choice again (control.py keeps choice_until while st.choice is unchanged)
    w, p = peak_run([cmd("16:30", "target", "19:00"), cmd("18:00", "choice", "emergency"),
                     cmd("18:10", "target", "20:00"), cmd("18:20", "choice", "emergency")])
    assert w.ev_energy_peak_wh == pytest.approx(p * 3, rel=0.01)


def test_choice_departure_before_now_means_tomorrow():
    w, p = peak_run([cmd("16:30", "target", "07:30"), cmd("18:00", "choice", "emergency")])
    assert w.ev_energy_peak_wh == pytest.approx(p * 1, rel=0.01)    # 17-18 only
    assert w.choice == 2


def test_choice_needs_the_clock_to_end():
    # no valid clock: control.py never evaluates the choice, so it stays in force
    w = make({"commands": [cmd("06:05", "choice", "emergency")]}, clock_from=math.inf)
    w.advance(w.t0 + 3600)
    assert w.choice == 2 and w.limit_w() == BREAKER
    # clock valid from 06:10: then, with no departure, it reverts
    w = make({"commands": [cmd("06:05", "choice", "emergency")]}, clock_from=W.scenario_epoch(
        CFG, {"start": "2025-01-15 06:00"}) + 600)
    w.advance(w.t0 + 599)
    assert w.choice == 2
    w.advance(w.t0 + 601)
    assert w.choice == 0
    w.advance(w.t0 + 620)
    assert w.limit_w() == SANCTIONED


# ---------------------------------------------------------------- DR
def test_dr_as_json_text_and_cancel():
    w = make({"commands": [cmd("06:10", "dr", '{"limit_w":3000,"minutes":30}'),
                           cmd("06:20", "dr", '{"limit_w":0,"minutes":30}'),
                           cmd("06:30", "dr", {"limit_w": 2000, "minutes": 30}),
                           cmd("06:40", "dr", {"limit_w": 2000, "minutes": 0})]})
    w.advance(w.t0 + 3600)
    lim = {row[0]: row[3] for row in w.series}
    assert lim[w.t0 + 15 * 60] == 3000
    assert lim[w.t0 + 25 * 60] == SANCTIONED          # limit_w 0 cancels, no 0 W limit
    assert lim[w.t0 + 35 * 60] == 2000
    assert lim[w.t0 + 45 * 60] == SANCTIONED          # minutes 0 cancels


def test_dr_rejected_by_apply_is_ignored():
    w = make({"commands": [cmd("06:10", "dr", {"limit_w": 3000.0, "minutes": 30}),
                           cmd("06:10", "dr", {"limit_w": 3000, "minutes": 30, "why": "grid"}),
                           cmd("06:10", "dr", {"limit_w": 3000, "minutes": 1441})]})
    w.advance(w.t0 + 3600)
    assert {row[3] for row in w.series} == {SANCTIONED}


def test_dr_only_lowers_the_limit():
    w = make({"commands": [cmd("06:10", "dr", {"limit_w": 9000, "minutes": 20}),
                           cmd("06:40", "emergency", "on"),
                           cmd("06:40", "dr", {"limit_w": 9000, "minutes": 10}),
                           cmd("06:55", "dr", {"limit_w": 6000, "minutes": 10})]})
    w.advance(w.t0 + 3600)
    lim = {row[0]: row[3] for row in w.series}
    assert lim[w.t0 + 15 * 60] == SANCTIONED          # 9 kW DR > sanctioned: no raise
    assert lim[w.t0 + 45 * 60] == BREAKER             # nor above the breaker in emergency
    assert lim[w.t0 + 58 * 60] == 6000                # a DR below the breaker does apply


def test_dr_needs_a_valid_clock():
    scen = {"commands": [cmd("06:05", "dr", {"limit_w": 3000, "minutes": 30}),
                         cmd("06:15", "dr", {"limit_w": 2500, "minutes": 30})]}
    w = make(scen, clock_from=math.inf)               # sim.run --clock none
    w.advance(w.t0 + 3600)
    assert {row[3] for row in w.series} == {SANCTIONED}
    w = make(scen, clock_from=W.scenario_epoch(CFG, {"start": "2025-01-15 06:00"}) + 600)
    w.advance(w.t0 + 3600)
    lim = {row[0]: row[3] for row in w.series}
    assert lim[w.t0 + 10 * 60] == SANCTIONED and lim[w.t0 + 20 * 60] == 2500


def test_invalid_emergency_changes_nothing():
    w = make({"commands": [cmd("06:10", "emergency", "on"), cmd("06:20", "emergency", "yes")]})
    w.advance(w.t0 + 1800)
    assert w.emergency and w.limit_w() == BREAKER


# ---------------------------------------------------------------- scenario checks, harness
def test_command_without_value_is_a_scenario_error(tmp_path):
    scen = {"start": "2025-01-15 06:00", "commands": [{"at": "06:10", "cmd": "target"}]}
    with pytest.raises(W.ScenarioError, match="value"):
        make(scen)
    p = tmp_path / "s.json"
    p.write_text(json.dumps(scen))
    a = simrun.main_args(["--scenario", str(p), "--hours", "0.1", "--no-cloud",
                          "--sim-dir", str(tmp_path / "run")])
    with pytest.raises(W.ScenarioError):
        simrun.Sim(a)                                 # before any process starts
    assert W.scenario_commands({"commands": [cmd("06:10", "target", "")]}) == [
        ("06:10", "target", "")]


def test_commands_publish_under_the_configured_alias(tmp_path):
    cfg = dict(CFG, netpie=dict(CFG["netpie"], alias="garage"))
    cp = tmp_path / "c.json"
    cp.write_text(json.dumps(cfg))
    sim = simrun.Sim(simrun.main_args(["--config", str(cp), "--hours", "0.1",
                                       "--sim-dir", str(tmp_path / "run")]))
    sent = []

    class Mqtt:
        def publish(self, topic, payload):
            sent.append((topic, payload))

    sim.mqtt = Mqtt()
    sim.send("dr", W.payload({"limit_w": 3000, "minutes": 30}))
    assert sent == [("@msg/garage/dr", '{"limit_w": 3000, "minutes": 30}')]


def test_scenario_hours_is_the_default_run_length(tmp_path):
    p = tmp_path / "s.json"
    p.write_text(json.dumps({"start": "2025-01-15 06:00", "hours": 3}))
    assert simrun.main_args(["--scenario", str(p)]).hours == 3
    assert simrun.main_args(["--scenario", str(p), "--hours", "1.5"]).hours == 1.5
    assert simrun.main_args(["--scenario", str(p), "--hours", "0"]).hours == 0   # live view
    assert simrun.main_args([]).hours == 0            # plain `make sim`: live view as before
    assert os.path.samefile(simrun.main_args([]).scenario,
                            os.path.join(ROOT, "sim", "scenarios", "default_day.json"))


@pytest.mark.skipif(not (shutil.which("mosquitto") or os.path.exists("/usr/sbin/mosquitto")),
                    reason="mosquitto not installed (.ci/run installs it)")
def test_whole_meter_choice_emergency_under_another_alias(tmp_path):
    # the meter (alias "garage") takes choice emergency and charges up to the breaker; the world
    # counts that as within its limit, and the summary carries the world's figures
    cfg = base_config()
    cfg["netpie"]["alias"] = "garage"
    scen = {"start": "2025-01-15 06:00", "house": [{"at": "06:00", "w": 800}],
            "ev": [{"at": "06:00", "soc": 40}],
            "commands": [cmd(30, "target", "07:30"), cmd(60, "choice", "emergency")]}
    s, world, log = run_sim(tmp_path, scen, hours=0.05, speed=60, config=cfg, cloud=True)
    assert s.get("error") is None and s["commands_sent"] == 2, log[-2000:]
    assert world["choice"] == "emergency" and world["limit_w"] == BREAKER
    assert SANCTIONED < s["max_total_w"] <= BREAKER
    assert s["over_limit_s"] == 0 and s["over_breaker_s"] == 0 and s["over_limit_wh"] == 0
    assert s["total_energy_wh"] > s["ev_energy_wh"] > 0


def test_a_config_that_is_not_json_gets_the_meters_refusal_not_a_traceback(tmp_path):
    import subprocess
    import sys
    bad = tmp_path / "bad.json"
    bad.write_text('{"sanctioned_w": 5000,')
    r = subprocess.run([sys.executable, "-m", "sim.run", "--hours", "0.01", "--no-cloud",
                        "--config", str(bad), "--sim-dir", str(tmp_path / "run")],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1]) == {
        "error": "firmware did not run", "fatal": "config: not valid JSON"}


@pytest.mark.parametrize("change, fatal", [
    ({"loads": [{"name": "heater", "critical": False}]},
     "loads[0].pin: want a free, unused GPIO: 12, 14 or 16"),
    ({"peak": "17:00-22:00"}, "peak: want a list of up to 8 'HH:MM-HH:MM' windows"),
    ({"peak": ["1700-2200"]}, "peak[0]: want 'HH:MM-HH:MM'"),
    ({"tz_offset_min": "abc"}, "tz_offset_min: want an integer -720..840"),
    # the emulator cannot serve two devices on one address (found by a black-box run)
    ({"pzem": {"addr": 1, "ev_addr": 1}},
     "pzem.ev_addr: must differ from pzem.addr and charger.addr"),
    ({"pzem": {"addr": 2}}, "pzem.addr: must differ from charger.addr"),
    ({"charger": {"addr": 248}}, "charger.addr: want an integer 1..247"),
])
def test_a_config_the_world_cannot_run_on_gets_the_meters_refusal_not_a_traceback(
        tmp_path, change, fatal):
    # the emulator's world and the harness's agenda cannot be built on these either: the run
    # stops before it starts, with the words the meter would show (docs/scenario.md)
    import subprocess
    import sys
    cfg = base_config()
    for k, v in change.items():     # a section's other fields stay
        cfg[k] = dict(cfg[k], **v) if isinstance(v, dict) and isinstance(cfg.get(k), dict) else v
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(cfg))
    r = subprocess.run([sys.executable, "-m", "sim.run", "--hours", "0.01", "--no-cloud",
                        "--config", str(bad), "--sim-dir", str(tmp_path / "run")],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1]) == {
        "error": "firmware did not run", "fatal": fatal}


def test_the_simulated_clock_starts_after_the_builds(tmp_path, monkeypatch):
    # a fresh clone's first --twin/--frozen run builds for minutes: at x600 each real second
    # is 10 simulated minutes, which must not be taken from the scenario's start
    import time

    class Stop(Exception):
        pass

    built = []

    def slow_build(twin=True):
        time.sleep(1.5)
        built.append(time.time())
        return str(tmp_path / "image"), 0

    def stop(self, env):
        self.ntp.stop()
        raise Stop

    monkeypatch.setattr(simrun, "build_image", slow_build)
    monkeypatch.setattr(simrun.Sim, "start_emulator", stop)     # the first process after it
    sim = simrun.Sim(simrun.main_args(["--hours", "0.1", "--no-cloud",
                                       "--sim-dir", str(tmp_path / "run")]))
    with pytest.raises(Stop):
        sim.run()
    assert sim.anchor >= built[0] + 0.9
