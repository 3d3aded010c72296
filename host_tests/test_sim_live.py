"""The first minute of `make sim` (sim/agenda.py, sim.run's live start and view) and the
dashboard line every sim.run prints (issue 11, parts 2 and 4)."""
import json
import re
import subprocess
import sys
import time

from conftest import ROOT
from sim import agenda
from sim import run as simrun


def default_day():
    with open(simrun.DEFAULT_SCENARIO) as f:
        scen = json.load(f)
    with open(simrun.DEFAULT_CONFIG) as f:
        cfg = json.load(f)
    return cfg, scen


def local(t, cfg):
    g = time.gmtime(t + cfg["tz_offset_min"] * 60)
    return "%02d:%02d" % (g.tm_hour, g.tm_min)


def test_the_live_view_starts_shortly_before_the_ev_arrives():
    cfg, scen = default_day()
    items = agenda.agenda(cfg, scen)
    whats = [w for _, w in items]
    assert "the EV plugs in at 35 %" in whats and "the EV leaves" in whats
    assert not any("load/" in w for w in whats)          # the initial switches are no event
    assert any(w.startswith("peak tariff starts") for w in whats)
    t0 = agenda.live_start(cfg, scen)
    assert local(t0, cfg) == "18:25"
    nxt = agenda.coming_up(items, t0, cfg)
    assert nxt[0] == "18:30  the EV plugs in at 35 %  (in 5 min simulated)"
    assert len(nxt) == 3
    # a scenario whose EV is there from the start begins at its start
    scen2 = dict(scen, ev=[{"at": "06:00", "plug": True, "soc": 50}])
    from sim.world import scenario_epoch
    assert agenda.live_start(cfg, scen2) == scenario_epoch(cfg, scen2)


def test_start_options(tmp_path):
    a = simrun.main_args([])
    assert a.hours == 0 and a.dashboard_port == simrun.DASHBOARD_PORT == 18880
    s = simrun.Sim(simrun.main_args(["--sim-dir", str(tmp_path)]))
    cfg, scen = default_day()
    assert local(s.epoch, cfg) == "18:25"
    s = simrun.Sim(simrun.main_args(["--start", "+1d 00:50", "--sim-dir",
                                     str(tmp_path)]))
    assert local(s.epoch, cfg) == "00:50"
    # headless runs keep the scenario's own start unless --start is given
    s = simrun.Sim(simrun.main_args(["--hours", "1", "--sim-dir", str(tmp_path)]))
    assert local(s.epoch, cfg) == "06:00"


def test_every_run_prints_the_dashboard_line_and_serves_the_page(tmp_path):
    r = subprocess.run([sys.executable, "-m", "sim.run", "--hours", "0.05", "--speed", "120",
                        "--dashboard-port", "0", "--sim-dir", str(tmp_path / "run")],
                       cwd=ROOT, capture_output=True, text=True, timeout=180)
    lines = r.stdout.strip().splitlines()
    dash = [x for x in lines if x.startswith("dashboard:")]
    assert len(dash) == 1 and re.fullmatch(r"dashboard: http://127\.0\.0\.1:\d+/", dash[0]), \
        r.stdout
    assert json.loads(lines[-1])["cloud"] is True          # the summary stays the last line
