"""Generate sim/scenarios/week.json: a realistic week for the meter (seeded, reproducible).

Weekday and weekend household profiles, the EV home in the evening at a varying SOC with a
departure target sent from the app, one emergency charge, one "shed" choice, two grid
demand-response events. Run: .venv/bin/python -m bench.make_week
"""
import json
import os
import random

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def hm(day, minute):
    minute = int(minute)
    t = "%02d:%02d" % (minute // 60 % 24, minute % 60)
    day += minute // 1440
    return t if day == 0 else "+%dd %s" % (day, t)


def week(seed=7):
    r = random.Random(seed)
    house, loads, ev, cmds = [], [], [], []
    for d in range(7):
        weekend = d in (5, 6)
        house += [
            {"at": hm(d, 6 * 60), "w": 420},
            {"at": hm(d, 6 * 60 + 30 + r.randrange(30)), "w": 1500 + r.randrange(400)},
            {"at": hm(d, 7 * 60 + 30 + r.randrange(20)), "w": 900},
            {"at": hm(d, 9 * 60), "w": 1100 if weekend else 380},
            {"at": hm(d, 13 * 60), "w": 1600 if weekend else 520},
            {"at": hm(d, 14 * 60 + 30), "w": 700 if weekend else 380},
            {"at": hm(d, 17 * 60 + 30), "w": 850 + r.randrange(300)},
            {"at": hm(d, 18 * 60 + 30 + r.randrange(30)), "w": 1500 + r.randrange(500)},
            {"at": hm(d, 19 * 60 + 15), "w": 2000 + r.randrange(700)},
            {"at": hm(d, 21 * 60), "w": 1400 + r.randrange(300)},
            {"at": hm(d, 22 * 60 + 30), "w": 600},
            {"at": hm(d, 23 * 60 + 30), "w": 330},
        ]
        loads += [{"at": hm(d, 6 * 60), "name": "heater", "use": True},
                  {"at": hm(d, 7 * 60), "name": "heater", "use": False},
                  {"at": hm(d, 6 * 60), "name": "fridge", "use": True}]
        if r.random() < 0.6:
            loads += [{"at": hm(d, 19 * 60), "name": "ac", "use": True},
                      {"at": hm(d, 23 * 60), "name": "ac", "use": False}]
        plug = 17 * 60 + 45 + r.randrange(105)
        soc = 18 + r.randrange(45)
        ev.append({"at": hm(d, plug), "plug": True, "soc": soc, "capacity_wh": 60000})
        if d < 6:
            ev.append({"at": hm(d + 1, 7 * 60 + 35 + r.randrange(20)), "plug": False})
        cmds.append({"at": hm(d, plug + 3), "cmd": "target", "value": "07:30"})
        cmds.append({"at": hm(d, plug + 4), "cmd": "trip", "value": str(30 + r.randrange(170))})
    cmds.append({"at": hm(0, 6 * 60 + 5), "cmd": "load/fridge", "value": "on"})
    cmds.append({"at": hm(0, 6 * 60 + 5), "cmd": "load/heater", "value": "on"})
    cmds.append({"at": hm(0, 6 * 60 + 5), "cmd": "load/ac", "value": "on"})
    # one evening the family needs the car early: emergency for 45 minutes in peak
    cmds += [{"at": hm(3, 19 * 60), "cmd": "emergency", "value": "on"},
             {"at": hm(3, 19 * 60 + 45), "cmd": "emergency", "value": "off"}]
    # one evening they shed the non-critical loads for a fuller battery
    cmds.append({"at": hm(5, 20 * 60), "cmd": "choice", "value": "shed"})
    # two grid demand-response requests
    cmds += [{"at": hm(2, 25 * 60), "cmd": "dr", "value": {"limit_w": 3000, "minutes": 45}},
             {"at": hm(4, 23 * 60), "cmd": "dr", "value": {"limit_w": 2500, "minutes": 30}}]
    return {"name": "week",
            "description": "A week at UTC+5: weekday/weekend household profiles, the EV home "
                           "every evening with 18-62 % SOC, departure 07:30 from the app, one "
                           "emergency charge, one shed choice, two grid DR events.",
            "start": "2025-01-13 06:00", "hours": 168, "house": house, "loads": loads,
            "ev": ev, "charger": {"no_ext": False, "delay_s": 2, "cable_a": 32},
            "commands": sorted(cmds, key=lambda c: (c["at"].startswith("+"), c["at"]))}


if __name__ == "__main__":
    p = os.path.join(ROOT, "sim", "scenarios", "week.json")
    with open(p, "w") as f:
        json.dump(week(), f, indent=1)
    print(p)
