"""dashboard/view.js, the page's pure functions, on Node (skipped without node): formats, the
plan card model, the shadow form of a command for an offline meter, the SVG gauge and chart."""
import json
import os
import shutil
import subprocess

import pytest

from conftest import ROOT

NODE = shutil.which("node") or shutil.which("nodejs")
pytestmark = pytest.mark.skipif(not NODE, reason="needs node (Debian nodejs) to run view.js")

SCRIPT = """
import * as V from %s;
const s = {target: "07:30", choice: "shed", trip_soc_pct: 44, peak: true, dr_w: 0,
  loads: {ac: "on", fridge: "on"}, advice: ["ac"], advice_w: 1500,
  plan: {feasible: false, full_at: "", charge_minutes: -1, reachable_soc_pct: 30,
         shed: {soc_pct: 72, full_at: ""}, emergency: {soc_pct: 100, full_at: "05:10", extra_cost: 12.5},
         trip_ok: {accept: false, shed: true, emergency: true}}};
const w = {title: "Power", units: "W", min: 0, max: 7400,
           colors: [{to: 5000, color: "#2e9e5b"}, {to: 7400, color: "#d64545"}]};
console.log(JSON.stringify({
  hhmm: [V.hhmm(0), V.hhmm(450), V.hhmm(1439), V.hhmm(-1)],
  min: [V.minOfDay("7:30"), V.minOfDay("25:99"), V.minOfDay("")],
  soc: [V.soc(-1), V.soc(null), V.soc(55)],
  watts: [V.watts(480), V.watts(4850)],
  plan: V.planModel(s), noplan: V.planModel({target: ""}).verdict,
  loads: V.loadsModel(s, [{name: "ac", rated_w: 1500, critical: false},
                          {name: "fridge", rated_w: 150, critical: true}]),
  advice: V.advice(s), advice_dr: V.advice({dr_w: 3000, advice: ["ac"], advice_w: 1500}),
  shadow: [V.shadowForm("load/ac", "off"), V.shadowForm("emergency", "on"),
           V.shadowForm("dr", '{"limit_w":3000,"minutes":30}'), V.shadowForm("target", "450"),
           V.shadowForm("trip", "120"), V.shadowForm("choice", "shed")],
  headline: [V.headline({power_w: 4000, limit_w: 5000}), V.headline({faults: ["pzem"]}),
             V.headline({})],
  gauge: V.gaugeSvg(w, 6000, 5000),
  chart: V.chartSvg([[0, 100, 50, 50, 5000], [3600e3, 4000, 1000, 3000, 5000]],
                    [{i: 1, color: "#111"}], 300, 900, 220),
}));
"""


def test_view_functions(tmp_path):
    p = tmp_path / "t.mjs"
    p.write_text(SCRIPT % json.dumps(os.path.join(ROOT, "dashboard", "view.js")))
    r = subprocess.run([NODE, str(p)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    o = json.loads(r.stdout)
    assert o["hhmm"] == ["00:00", "07:30", "23:59", ""]
    assert o["min"] == [450, None, None]
    assert o["soc"] == ["SOC ?", "SOC ?", "55 %"]
    assert o["watts"] == ["480 W", "4.85 kW"]
    assert o["headline"] == ["4.00 kW of 5.00 kW limit (80 %)", "supply not read (PZEM silent)",
                             "waiting for the meter…"]
    p = o["plan"]
    assert p["verdict"] == "Not full by 07:30: reaches 30 %" and p["cls"] == "bad"
    assert p["chosen"] == "shed"
    opts = {x["key"]: x for x in p["options"]}
    assert opts["accept"]["trip"] == "short of the trip" and opts["shed"]["tripOk"] is True
    assert opts["emergency"]["full"] == "full by 05:10" and opts["shed"]["soc"] == 72
    assert o["noplan"] == "Set a departure to get a plan"
    ac, fridge = o["loads"]
    assert ac["advise"] and ac["shed"] and not fridge["shed"] and fridge["on"]
    assert o["advice"] == "Peak time: switch off ac to save 1500 W"
    assert o["advice_dr"].startswith("Demand response: switch off ac")
    assert o["shadow"] == [{"load": {"ac": "off"}}, {"emergency": True},
                           {"dr": {"limit_w": 3000, "minutes": 30}}, {"target": "450"},
                           {"trip": 120}, {"choice": "shed"}]
    assert o["gauge"].startswith("<svg") and "6.00 kW" in o["gauge"] and "<line" in o["gauge"]
    assert "#d64545" in o["gauge"]              # over the sanctioned load: the red range
    assert o["chart"].count("<path") == 1 and "stroke=\"#111\"" in o["chart"]
