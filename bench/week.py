"""A simulated week, headless, with a plot and the figures of docs/benchmarks.md.

    .venv/bin/python -m bench.week [--speed 1200] [--out docs/week.png]

Runs sim/scenarios/week.json through the whole meter (firmware ROMFS image on the MicroPython
unix port at the 52K board-equivalent heap cap, emulated PZEM + charger, NETPIE stand-in), then:
  * plan accuracy: SOC the meter predicted shortly after each plug-in vs the SOC reached at the
    07:30 target (or at unplug if earlier);
  * cost: the EV energy the meter bought (smart charging) vs charging at plug-in at full allowed
    power until full or unplugged, on the same household load;
  * cloud: shadow write operations per day, against NETPIE's 500 k per month free quota;
  * a PNG: household load, EV power, the applicable limit, tariff periods shaded, SOC, DR events
    and plan outcomes.
Prints one JSON line with the figures.
"""
import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from sim import run as simrun  # noqa: E402
from sim.world import in_windows, parse_at, peak_windows  # noqa: E402

CFG = os.path.join(ROOT, "firmware", "config.json.example")
WEEK = os.path.join(ROOT, "sim", "scenarios", "week.json")


def price_at(cfg, t, emergency):
    if emergency:
        return cfg["price"]["emergency"]
    peak = in_windows(t, peak_windows(cfg), cfg["tz_offset_min"])
    return cfg["price"]["peak" if peak else "offpeak"]


def analyse(cfg, scen, world, reports, stats):
    rows = [dict(zip(world["series_fields"], r)) for r in world["series"]]
    em_spans = []
    on = None
    for c in scen.get("commands", []):
        if c["cmd"] == "emergency":
            t = parse_at(c["at"], cfg, scen)
            if str(c["value"]).lower() in ("on", "true", "1"):
                on = t
            elif on is not None:
                em_spans.append((on, t))
                on = None

    def em(t):
        return any(a <= t < b for a, b in em_spans)

    # cost of what the meter did, minute by minute
    smart = sum(r["ev_w"] / 60 / 1000 * price_at(cfg, r["t"], em(r["t"])) for r in rows)
    ev_kwh = sum(r["ev_w"] / 60 / 1000 for r in rows)
    # naive: at plug-in, charge at what the sanctioned limit leaves (whole amps, <= max) until
    # full or unplugged, same battery model without taper (optimistic for naive)
    cap_ch = cfg["charger"]
    naive = 0.0
    naive_kwh = 0.0
    sessions = world.get("sessions", [])
    for s in sessions:
        soc = s["soc_start"]
        end = s.get("unplug_t", world["t"])
        for r in rows:
            if not s["plug_t"] <= r["t"] < end or soc >= 100:
                continue
            room = cfg["sanctioned_w"] - r["house_w"]
            a = min(cap_ch["max_a"], max(0, int(room // cfg["voltage_v"])))
            w = a * cfg["voltage_v"] if a >= cap_ch["min_a"] else 0
            soc += w / 60 * cfg["battery"]["efficiency"] / 60000 * 100
            naive += w / 60 / 1000 * price_at(cfg, r["t"], False)
            naive_kwh += w / 60 / 1000
    # plan accuracy: first plan reported after each plug-in (+ target set) vs SOC at target
    acc = []
    for s in sessions:
        pred = next((p for p in reports if p.get("plan") and s["plug_t"] + 300 <= p["t"]
                     <= s["plug_t"] + 3600), None)
        if not pred:
            continue
        g = time.gmtime(s["plug_t"] + cfg["tz_offset_min"] * 60)
        day0 = s["plug_t"] - ((g.tm_hour * 60 + g.tm_min) * 60 + g.tm_sec)
        target = day0 + 86400 + 7 * 3600 + 30 * 60
        t_end = min(target, s.get("unplug_t", target))
        reached = None
        for r in rows:
            if r["t"] <= t_end and r["soc"] >= 0:
                reached = r["soc"]
        acc.append({"plug_t": s["plug_t"], "soc_start": s["soc_start"],
                    "predicted_soc": pred["plan"][2], "predicted_full": bool(pred["plan"][0]),
                    "reached_soc": reached,
                    "cut": bool(rows) and rows[-1]["t"] < t_end})  # the run ended first
    dev = stats.get(next(iter(stats), ""), {}) if stats else {}
    days = world["hours"] / 24
    writes = dev.get("shadow_write_ops", 0)
    return {
        "ev_kwh": round(ev_kwh, 1), "smart_cost": round(smart, 1),
        "naive_kwh": round(naive_kwh, 1), "naive_cost": round(naive, 1),
        "saving_pct": round(100 * (1 - (smart / ev_kwh) / (naive / naive_kwh)), 1)
        if ev_kwh and naive_kwh else None,
        "plan_accuracy": acc,
        "plan_abs_err_pct_max": max((abs(a["predicted_soc"] - a["reached_soc"]) for a in acc
                                     if a["reached_soc"] is not None), default=None),
        "shadow_write_ops_per_day": round(writes / days, 1) if days else None,
        "shadow_ops_per_30_days": round(dev.get("shadow_ops", 0) / days * 30) if days else None,
    }, em_spans


def plot(cfg, scen, world, reports, em_spans, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import datetime
    tz = datetime.timezone(datetime.timedelta(minutes=cfg["tz_offset_min"]))
    rows = [dict(zip(world["series_fields"], r)) for r in world["series"]]
    x = [datetime.datetime.fromtimestamp(r["t"], tz) for r in rows]
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(14, 7), sharex=True,
                                  gridspec_kw={"height_ratios": [3, 1.3]})
    # tariff periods
    pk = peak_windows(cfg)
    start = None
    for r, xi in zip(rows, x):
        p = in_windows(r["t"], pk, cfg["tz_offset_min"])
        if p and start is None:
            start = xi
        if not p and start is not None:
            for a in (ax, ax2):
                a.axvspan(start, xi, color="orange", alpha=0.15, lw=0)
            start = None
    ax.plot(x, [r["house_w"] for r in rows], lw=0.8, label="household load (W)", color="tab:blue")
    ax.plot(x, [r["ev_w"] for r in rows], lw=0.8, label="EV power (W)", color="tab:green")
    ax.plot(x, [r["limit_w"] for r in rows], lw=1.0, ls="--", color="tab:red",
            label="applicable limit (W)")
    for c in scen.get("commands", []):
        if c["cmd"] == "dr":
            t = parse_at(c["at"], cfg, scen)
            ax.axvline(datetime.datetime.fromtimestamp(t, tz), color="purple", lw=1)
            ax.text(datetime.datetime.fromtimestamp(t, tz), ax.get_ylim()[1] * 0.95, " DR",
                    color="purple", fontsize=8)
    for a, b in em_spans:
        ax.axvspan(datetime.datetime.fromtimestamp(a, tz), datetime.datetime.fromtimestamp(b, tz),
                   color="red", alpha=0.25, lw=0)
    ax.set_ylabel("W")
    ax.legend(loc="upper left", fontsize=8, ncol=3)
    ax.set_title("Simulated week: peak windows shaded orange, emergency charging red, DR events purple")
    soc = [(xi, r["soc"]) for xi, r in zip(x, rows) if r["soc"] >= 0]
    ax2.plot([a for a, _ in soc], [b for _, b in soc], ".", ms=1.5, color="tab:green",
             label="EV SOC (%)")
    pts = [p for p in reports if p.get("plan")]
    ax2.plot([datetime.datetime.fromtimestamp(p["t"], tz) for p in pts],
             [p["plan"][2] for p in pts], "x", ms=3, color="black",
             label="plan: SOC reachable by 07:30 (%)")
    ax2.set_ylim(0, 105)
    ax2.set_ylabel("%")
    ax2.legend(loc="lower left", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--speed", type=float, default=1200)
    ap.add_argument("--hours", type=float, default=168)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "week.png"))
    ap.add_argument("--sim-dir", default=os.path.join(ROOT, "build", "week"))
    a = ap.parse_args(argv)
    with open(CFG) as f:
        cfg = json.load(f)
    with open(WEEK) as f:
        scen = json.load(f)
    s = simrun.Sim(simrun.main_args(["--hours", str(a.hours), "--speed", str(a.speed),
                                     "--scenario", WEEK, "--sim-dir", a.sim_dir])).run()
    with open(os.path.join(a.sim_dir, "world.json")) as f:
        world = json.load(f)
    with open(os.path.join(a.sim_dir, "reports.json")) as f:
        reports = json.load(f)
    try:
        with open(os.path.join(a.sim_dir, "netpie", "stats.json")) as f:
            stats = json.load(f)
    except OSError:
        stats = {}
    fig, em_spans = analyse(cfg, scen, world, reports, stats)
    plot(cfg, scen, world, reports, em_spans, a.out)
    fig["summary"] = s
    fig["plot"] = os.path.relpath(a.out, ROOT)
    print(json.dumps(fig))
    return fig


if __name__ == "__main__":
    main()
