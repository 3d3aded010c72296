"""Helpers for tests that run the whole simulated meter (sim.run) with their own scenario/config."""
import json
import os
import time

from conftest import FIRMWARE
from sim import run as simrun


def base_config(**over):
    with open(os.path.join(FIRMWARE, "config.json.example")) as f:
        cfg = json.load(f)
    cfg.update(over)
    return cfg


def run_sim(tmp_path, scenario, hours, speed, config=None, cloud=False, name="run", **kw):
    """Run sim.run headless; returns (summary, world, firmware log text)."""
    d = tmp_path / name
    scen_p = tmp_path / (name + "-scenario.json")
    scen_p.write_text(json.dumps(scenario))
    cfg_p = tmp_path / (name + "-config.json")
    cfg_p.write_text(json.dumps(config or base_config()))
    argv = ["--hours", str(hours), "--speed", str(speed), "--scenario", str(scen_p),
            "--config", str(cfg_p), "--sim-dir", str(d)]
    if not cloud:
        argv.append("--no-cloud")
    for k, v in kw.items():
        flag = "--" + k.replace("_", "-")
        argv += [flag] if v is True else [flag, str(v)]
    a = simrun.main_args(argv)
    summary = simrun.Sim(a).run()
    with open(d / "world.json") as f:
        world = json.load(f)
    log = (d / "firmware.log").read_text() if (d / "firmware.log").exists() else ""
    return summary, world, log


def series(world):
    """world.json minute samples as dicts, with local minute-of-day 'm'."""
    f = world["series_fields"]
    out = []
    for row in world["series"]:
        r = dict(zip(f, row))
        out.append(r)
    return out


def local_min(t, tz_min=300):
    g = time.gmtime(t + tz_min * 60)
    return g.tm_hour * 60 + g.tm_min
