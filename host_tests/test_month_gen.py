"""The month scenarios (bench.make_month): the shipped files are valid scenarios the harness runs,
their sessions are consistent (each plug-in has its departure, sent as the target), and the
generator makes exactly the shipped files again (seeded; needs richardsonpy, the `month` extra).
The month itself is a benchmark (python -m bench.month), not a test."""
import json
import os

import pytest

from conftest import FIRMWARE, ROOT
from sim import world as W
from sim.run import main_args

from bench import make_month as MM

CFG = json.load(open(os.path.join(FIRMWARE, "config.json.example")))


@pytest.mark.parametrize("name", sorted(MM.HOUSEHOLDS))
def test_shipped_month_is_a_valid_scenario(name):
    p = MM.path(name)
    assert os.path.getsize(p) < 250_000, "keep the shipped month small"
    scen = json.load(open(p))
    world = W.World(CFG, scen)              # ScenarioError on anything it cannot run
    t0 = W.scenario_epoch(CFG, scen)
    end = t0 + scen["hours"] * 3600
    plugs = [W.parse_at(e["at"], CFG, scen) for e in scen["ev"] if e["plug"]]
    unplugs = [W.parse_at(e["at"], CFG, scen) for e in scen["ev"] if not e["plug"]]
    assert len(plugs) == len(unplugs) >= 20
    targets = [(W.parse_at(c["at"], CFG, scen), c["value"]) for c in scen["commands"]
               if c["cmd"] == "target"]
    assert len(targets) == len(plugs)
    tz = CFG["tz_offset_min"] * 60
    for p_t, u_t, (c_t, value) in zip(plugs, unplugs, targets):
        assert t0 < p_t < c_t < u_t <= end
        assert c_t - p_t == 120
        assert 4 * 3600 < u_t - p_t < 24 * 3600    # the target is its next occurrence
        loc = int(u_t + tz) % 86400
        assert value == "%02d:%02d" % (loc // 3600, loc % 3600 // 60)   # leaves at the target
    ws = [h["w"] for h in scen["house"]]
    assert 0 < min(ws) and max(ws) < CFG["breaker_w"]
    assert sum(ws) / len(ws) > 150          # a household, not a standby fridge
    # the harness takes it: its own length, headless
    assert main_args(["--scenario", p]).hours == scen["hours"]
    # two simulated hours of the world with the car plugged in, no meter (nothing charges)
    world.advance(plugs[0] + 7200)
    assert world.plugged and len(world.series) >= 60


def test_generator_makes_the_shipped_files():
    pytest.importorskip("richardsonpy")
    name = "single"
    text = MM.dump(MM.month(name))
    assert text == MM.dump(MM.month(name))              # seeded: the same twice
    with open(MM.path(name)) as f:
        assert f.read() == text                         # and what is shipped


def test_a_hold_out_month_differs_and_never_overwrites_the_shipped_one(tmp_path):
    with pytest.raises(SystemExit):         # argparse error: the shipped files stay
        MM.main(["--seed-offset", "1"])
    pytest.importorskip("richardsonpy")
    other = MM.month("single", seed_offset=1)
    assert other["house"] != MM.month("single")["house"]
    assert "seed %d" % (MM.HOUSEHOLDS["single"]["seed"] + 1000) in other["description"]


def test_the_offline_judge_takes_other_months(capsys):
    from bench import month_offline as MO
    MO.main(["--scen-dir", os.path.join(ROOT, "sim", "scenarios")])
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(os.path.join(ROOT, "sim", "scenarios") + ": learned - ideal:")
    assert out[-1].startswith("all: learned - ideal:") and ", n 110" in out[-1]
    assert out[0].endswith("false full 0")
