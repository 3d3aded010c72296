"""Generate sim/scenarios/month_<household>.json: a realistic month per household type (seeded).

    .venv/bin/python -m bench.make_month [--days 30] [--step-min 5] [--only family]

The household load comes from richardsonpy (PyPI, `pip install -e '.[month]'`), the Python port
of the CREST stochastic domestic demand model (Richardson et al. 2010): an occupancy Markov chain
for the number of people at home and awake, and from it appliance switch-on events and lighting
at 1-minute resolution, with separate weekday and weekend statistics. Electric space and water
heating are left out (prev_heat_dev): the meter's household has its heaters on the relays. The
1-minute curve is averaged to `--step-min` minute steps (rounded to 10 W) to keep the files
small; a kettle then shows as its 5-minute mean.

Each household type also has its own EV habits: arrival, departure and arrival SOC drawn per day
(weekday and weekend differ), now and then a night without the car. The departure is sent as
the `target` from the app two minutes after plug-in and the car leaves at that minute.

Deterministic: the same seed gives the same file (richardsonpy draws from Python's `random`,
seeded here, and numpy's, seeded too).
"""
import argparse
import json
import os
import random

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "sim", "scenarios")
START = "2025-03-03"            # a Monday; the config's tz (UTC+5), peak 17:00-22:00
CAPACITY_WH = 60000             # the example config's battery, so the plan knows the car

# name: occupants (CREST: 1-5), annual kWh (CREST's SFH reference), seed, EV habits:
#   weekday/weekend arrival and departure (mean minute of day, sd minutes), arrival SOC range,
#   share of nights without the car
HOUSEHOLDS = {
    "single": dict(occ=1, kwh=2700, seed=101,
                   wd_arr=(18 * 60 + 30, 50), wd_dep=(7 * 60 + 30, 25),
                   we_arr=(17 * 60, 150), we_dep=(10 * 60, 60), soc=(30, 75), away=0.10,
                   about="one person, commutes by car"),
    "couple": dict(occ=2, kwh=3200, seed=202,
                   wd_arr=(19 * 60, 60), wd_dep=(7 * 60, 30),
                   we_arr=(16 * 60, 180), we_dep=(9 * 60 + 30, 70), soc=(20, 70), away=0.05,
                   about="two adults, one car for both commutes"),
    "family": dict(occ=4, kwh=4400, seed=303,
                   wd_arr=(17 * 60 + 45, 45), wd_dep=(7 * 60 + 15, 20),
                   we_arr=(18 * 60, 120), we_dep=(9 * 60, 60), soc=(15, 60), away=0.03,
                   about="two adults, two children; school run and commute"),
    "large": dict(occ=5, kwh=5500, seed=404,
                  wd_arr=(20 * 60 + 30, 60), wd_dep=(6 * 60 + 30, 20),
                  we_arr=(19 * 60, 150), we_dep=(8 * 60 + 30, 60), soc=(10, 55), away=0.0,
                  about="five people, a long daily drive, late home"),
}


def hm(day, minute):
    minute = int(minute)
    day += minute // 1440
    t = "%02d:%02d" % (minute // 60 % 24, minute % 60)
    return t if day == 0 else "+%dd %s" % (day, t)


def crest_load(occ, kwh, days, seed):
    """1-minute household load (W) for `days` days from a Monday, CREST via richardsonpy."""
    import numpy as np
    import richardsonpy.classes.appliance as app_model
    import richardsonpy.classes.lighting as light_model
    import richardsonpy.classes.occupancy as occupancy
    import richardsonpy.classes.stochastic_el_load_wrapper as wrapper
    import richardsonpy.functions.load_radiation as loadrad
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    src = os.path.dirname(os.path.abspath(app_model.__file__))
    inputs = os.path.join(os.path.dirname(src), "inputs")
    occ_obj = occupancy.Occupancy(number_occupants=occ, initial_day=1, nb_days=days)
    apps = app_model.Appliances(os.path.join(inputs, "Appliances.csv"),
                                annual_consumption=0.91 * kwh,  # as ElectricLoad: 9 % is light
                                randomize_appliances=True, prev_heat_dev=True)
    lights = light_model.load_lighting_profile(os.path.join(inputs, "LightBulbs.csv"), 0)
    prof = wrapper.ElectricityProfile(apps, lights)
    # the library's test reference year (hourly direct + diffuse, kW/m2) from its first day,
    # i.e. early-year daylight for the lighting model
    q_dir, q_dif = loadrad.get_rad_from_try_path()
    irr = np.asarray(q_dir, dtype=float) + np.asarray(q_dif, dtype=float)
    out = []
    for d in range(days):
        # (d + 1) % 7: 1-5 Monday-Friday, 6 and 0 the weekend, as ElectricLoad does it
        weekend = (d + 1) % 7 in (0, 6)
        irr_day = np.interp(np.arange(1440), 60 * np.arange(24), irr[24 * d:24 * d + 24])
        el, _, _ = prof.power_sim(irradiation=irr_day, weekend=weekend, day=d,
                                  occupancy=occ_obj.occupancy[144 * d:144 * (d + 1)])
        out.extend(float(x) for x in el)
    return out


def steps(load, step_min, start):
    """Mean of each step from minute `start`, rounded to 10 W; equal neighbours merged."""
    out = []
    for i in range(start, len(load), step_min):
        part = load[i:i + step_min]
        w = int(round(sum(part) / len(part), -1))
        if not out or out[-1][1] != w:
            out.append((i, w))
    return out


def clamp(x, lo, hi):
    return max(lo, min(hi, x))


def month(name, days=30, step_min=5, seed_offset=0):
    # seed_offset > 0: another month of the same households (hold-out months that judge a rule
    # tuned on the shipped one; bench.month_offline --scen-dir)
    h = dict(HOUSEHOLDS[name], seed=HOUSEHOLDS[name]["seed"] + 1000 * seed_offset)
    r = random.Random(h["seed"] * 7919 + days)
    # the scenario starts at noon of day 0 (the first car comes in the evening) and runs until
    # the last departure, on the morning of day `days`
    load = crest_load(h["occ"], h["kwh"], days + 1, h["seed"])
    t0 = 12 * 60
    ev, cmds = [], []
    last = t0
    for d in range(days):
        weekend_eve = d % 7 in (4, 5)       # Friday and Saturday evenings: a free next morning
        arr_m, arr_sd = h["we_arr"] if d % 7 in (5, 6) else h["wd_arr"]
        dep_m, dep_sd = h["we_dep"] if weekend_eve else h["wd_dep"]
        arr = int(clamp(r.gauss(arr_m, arr_sd), t0 + 30, 23 * 60 + 45))
        dep = int(clamp(r.gauss(dep_m, dep_sd), 5 * 60, 11 * 60 + 30))
        soc = r.randint(*h["soc"])
        if r.random() < h["away"]:
            continue                        # a night away: no session
        ev.append({"at": hm(d, arr), "plug": True, "soc": soc, "capacity_wh": CAPACITY_WH})
        ev.append({"at": hm(d + 1, dep), "plug": False})
        cmds.append({"at": hm(d, arr + 2), "cmd": "target",
                     "value": "%02d:%02d" % (dep // 60, dep % 60)})
        last = (d + 1) * 1440 + dep
    end = last + 30                         # the run ends half an hour after the last departure
    house = [{"at": hm(0, m), "w": w} for m, w in steps(load, step_min, t0) if m < end]
    hours = (end - t0) / 60.0
    return {"name": "month_" + name,
            "description": "%d days at UTC+5 from %s 12:00 (Monday), household '%s' (%s): "
                           "CREST stochastic demand (richardsonpy, %d occupants, %d kWh/year "
                           "reference, no electric heating), %d-minute steps; the EV home most "
                           "evenings at %d-%d %% SOC, the departure sent as the target at "
                           "plug-in + 2 min, the car leaves at that minute. Generated by "
                           "python -m bench.make_month (seed %d)."
                           % (days, START, name, h["about"], h["occ"], h["kwh"], step_min,
                              h["soc"][0], h["soc"][1], h["seed"]),
            "start": "%s %02d:%02d" % (START, t0 // 60, t0 % 60), "hours": round(hours, 2),
            "house": house, "ev": ev,
            "charger": {"no_ext": False, "delay_s": 2, "cable_a": 32},
            "commands": cmds}


def dump(scen):
    """Compact JSON, one event per line: small files that still diff well."""
    lines = ["{"]
    keys = list(scen)
    for i, k in enumerate(keys):
        v = scen[k]
        end = "," if i < len(keys) - 1 else ""
        if isinstance(v, list):
            lines.append(' "%s": [' % k)
            lines += ["  " + json.dumps(x, separators=(",", ":")) + ("," if j < len(v) - 1 else "")
                      for j, x in enumerate(v)]
            lines.append(" ]" + end)
        else:
            lines.append(' "%s": %s%s' % (k, json.dumps(v, separators=(",", ":")), end))
    return "\n".join(lines) + "\n}\n"


def path(name):
    return os.path.join(OUT, "month_%s.json" % name)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--step-min", type=int, default=5)
    ap.add_argument("--only", action="append", choices=sorted(HOUSEHOLDS),
                    help="one household type (repeatable); default all")
    ap.add_argument("--out-dir", default=OUT)
    ap.add_argument("--seed-offset", type=int, default=0,
                    help="K > 0: another month (each household's seed + 1000 K), e.g. into "
                         "--out-dir build/holdout1 for bench.month_offline --scen-dir")
    a = ap.parse_args(argv)
    if a.seed_offset and os.path.abspath(a.out_dir) == OUT:
        ap.error("--seed-offset would overwrite the shipped scenarios: give --out-dir")
    os.makedirs(a.out_dir, exist_ok=True)
    for name in a.only or HOUSEHOLDS:
        scen = month(name, a.days, a.step_min, a.seed_offset)
        p = os.path.join(a.out_dir, "month_%s.json" % name)
        with open(p, "w") as f:
            f.write(dump(scen))
        print("%s: %d house steps, %d sessions, %.1f h" % (
            os.path.relpath(p, ROOT), len(scen["house"]), len(scen["ev"]) // 2, scen["hours"]))


if __name__ == "__main__":
    main()
