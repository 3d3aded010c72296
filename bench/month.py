"""The realistic month through the whole meter: is the departure answer right?

    .venv/bin/python -m bench.month [--days N] [--label today] [--jobs 2] [--speed 2400]
                                    [--only family] [--no-docs]

Runs sim/scenarios/month_<household>.json (python -m bench.make_month) through the whole meter:
the firmware's ROMFS image on the MicroPython unix port (64-bit, 52K board-equivalent cap), the
emulated PZEM + charger and the NETPIE stand-in, one `python -m sim.run` per household, `--jobs`
of them side by side. For every charging session it takes

  * predicted: the plan's SOC at the departure time as the meter showed it 30 minutes after
    plug-in: the last plan it wrote to its NETPIE shadow at or before plug-in + 30 min
    (`bench.month_run` records each shadow write of the plan; the departure is sent as `target`
    at plug-in + 2 min, so that plan knows it), and whether it said "full" (feasible);
  * reached: the SOC the emulated car had when it left at that departure (world.json sessions).

The last line is JSON: sessions, median_abs_error_pts, p95_abs_error_pts, max_optimistic_pts
(largest predicted minus reached), max_pessimistic_pts, false_full (predicted full, reached
< 99 %: more than 1 point short), label, wall_s, speed. With the whole month run (no --days, or
--days >= the scenarios' days) and without --no-docs it stores the run under its label in
docs/month.json and rewrites docs/month.md and docs/month.png from every label stored, so a
later rule (e.g. `--label learned`) goes beside today's.
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.make_month import HOUSEHOLDS, path as scen_path  # noqa: E402

CFG = os.path.join(ROOT, "firmware", "config.json.example")
DOCS = os.path.join(ROOT, "docs")
PRED_AFTER_S = 1800         # the prediction judged: 30 minutes after plug-in
FULL_SHORT = 99.0           # "full" promised, fewer than 99 % reached: a false full
WORLD_MIN = 60              # world.json every simulated hour (the series of a month is ~1.7 MB)


def run_household(name, hours, speed, sim_dir, log):
    """Start one headless sim.run; returns the Popen."""
    env = dict(os.environ, SIM_WORLD_MIN=str(WORLD_MIN))
    return subprocess.Popen(
        [sys.executable, "-m", "bench.month_run", "--scenario", scen_path(name), "--hours", str(hours),
         "--speed", str(speed), "--sim-dir", sim_dir, "--dashboard-port", "0"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def prediction(plans, plug_t):
    """The last plan the meter wrote to its shadow in (plug-in, plug-in + 30 min]:
    (simulated UTC s, feasible, SOC at the departure), or None."""
    best = None
    for t, p in plans:
        if t > plug_t + PRED_AFTER_S:
            break
        if t > plug_t:
            best = (t, bool(p["feasible"]), p["reachable_soc_pct"]) if p else None
    return best


def analyse(name, world, plans, tz_min):
    out = []
    plans = sorted(plans, key=lambda x: x[0])
    for s in world.get("sessions", []):
        if s.get("unplug_t") is None:
            continue                        # the run ended first (--days)
        p = prediction(plans, s["plug_t"])
        loc = datetime.datetime.fromtimestamp(s["plug_t"] + tz_min * 60, datetime.timezone.utc)
        dep = datetime.datetime.fromtimestamp(s["unplug_t"] + tz_min * 60,
                                              datetime.timezone.utc)
        row = {"household": name, "plug_t": s["plug_t"], "plug": loc.strftime("%a %d %H:%M"),
               "depart": dep.strftime("%H:%M"), "soc_start": round(s["soc_start"], 1),
               "reached": round(s["soc_end"], 1), "predicted": None, "predicted_full": None}
        if p:
            row["plan_after_min"] = round((p[0] - s["plug_t"]) / 60, 1)
            row["predicted"] = p[2]
            row["predicted_full"] = p[1]
            row["error"] = round(row["predicted"] - row["reached"], 1)
        out.append(row)
    return out


def pct(xs, q):
    """Percentile by linear interpolation (numpy's default)."""
    xs = sorted(xs)
    if not xs:
        return None
    k = (len(xs) - 1) * q / 100.0
    i = int(k)
    j = min(i + 1, len(xs) - 1)
    return xs[i] + (xs[j] - xs[i]) * (k - i)


def figures(rows):
    judged = [r for r in rows if r["predicted"] is not None]
    err = [r["error"] for r in judged]
    ab = [abs(e) for e in err]
    # the nights that matter: the car left below 99 % (a full car is easy to predict)
    nf = [abs(r["error"]) for r in judged if r["reached"] < FULL_SHORT]
    return {
        "sessions": len(judged),
        "sessions_without_prediction": len(rows) - len(judged),
        "median_abs_error_pts": round(pct(ab, 50), 1) if ab else None,
        "p95_abs_error_pts": round(pct(ab, 95), 1) if ab else None,
        "max_optimistic_pts": round(max(err), 1) if err else None,
        "max_pessimistic_pts": round(-min(err), 1) if err else None,
        "median_abs_error_not_full_pts": round(pct(nf, 50), 1) if nf else None,
        "sessions_not_full": len(nf),
        "false_full": sum(1 for r in judged if r["predicted_full"] and r["reached"] < FULL_SHORT),
        "predicted_full": sum(1 for r in judged if r["predicted_full"]),
        "reached_full": sum(1 for r in judged if r["reached"] >= FULL_SHORT),
    }


# ------------------------------------------------------------------ docs
def load_store():
    try:
        with open(os.path.join(DOCS, "month.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def write_docs(store):
    with open(os.path.join(DOCS, "month.json"), "w") as f:
        json.dump(store, f, indent=1, sort_keys=True)
        f.write("\n")
    plot(store, os.path.join(DOCS, "month.png"))
    with open(os.path.join(DOCS, "month.md"), "w") as f:
        f.write(markdown(store))


def markdown(store):
    labels = sorted(store, key=lambda k: store[k].get("when", ""))
    L = ["# The departure answer over a realistic month",
         "",
         "Generated by `python -m bench.month` (do not edit by hand: the data are in "
         "`docs/month.json`). The scenarios are `sim/scenarios/month_<household>.json` from "
         "`python -m bench.make_month`: household load from the CREST stochastic domestic "
         "demand model (PyPI `richardsonpy`, 1-minute curve averaged to 5-minute steps), one "
         "file per household type, the EV home most evenings with arrival, departure and "
         "arrival SOC drawn day by day, the departure sent from the app as the `target` at "
         "plug-in + 2 min and the car leaving at that minute. Config: "
         "`firmware/config.json.example` (5 kW sanctioned, peak 17:00-22:00, 60 kWh at 90 %).",
         "",
         "**Predicted**: the SOC at the departure in the last plan the meter wrote to its "
         "NETPIE shadow at or before 30 minutes after plug-in (what the dashboard showed). "
         "**Reached**: the emulated car's SOC when it left (world.json). Error = predicted - "
         "reached (positive: the meter promised more than the night gave). A *false full* is "
         "a plan that said full (feasible) where the car left below 99 %.",
         "",
         "Goal (issue 10): median absolute error <= 3 points, p95 <= 8, never full when the "
         "car was not (at most 1 point optimistic).",
         "",
         "![predicted vs reached](month.png)",
         "",
         "## Summary",
         "",
         "| figure | " + " | ".join("`%s`" % k for k in labels) + " |",
         "|---|" + "---|" * len(labels)]
    keys = [("sessions", "sessions judged"),
            ("median_abs_error_pts", "median abs error (points)"),
            ("p95_abs_error_pts", "p95 abs error (points)"),
            ("median_abs_error_not_full_pts", "median abs error, nights the car left < 99 %"),
            ("sessions_not_full", "nights the car left < 99 %"),
            ("max_optimistic_pts", "max optimistic (predicted - reached)"),
            ("max_pessimistic_pts", "max pessimistic (reached - predicted)"),
            ("false_full", "false full"),
            ("predicted_full", "predicted full / reached >= 99 %"),
            ("sessions_without_prediction", "sessions without a plan at +30 min")]
    for k, title in keys:
        cells = []
        for lb in labels:
            f = store[lb]["figures"]
            if k == "predicted_full":
                cells.append("%s / %s" % (f.get("predicted_full"), f.get("reached_full")))
            else:
                cells.append(str(f.get(k)))
        L.append("| %s | %s |" % (title, " | ".join(cells)))
    L.append("| commit | " + " | ".join(
        "`%s`" % store[lb].get("commit", "?") for lb in labels) + " |")
    L.append("| run | " + " | ".join(
        "%s, x%g, %d jobs, %s wall" % (store[lb].get("when", "?")[:10], store[lb]["speed"],
                                       store[lb].get("jobs", 1),
                                       mmss(store[lb].get("wall_s", 0)))
        for lb in labels) + " |")
    L += ["", "## Per household", "",
          "| household | " + " | ".join(
              "`%s` sessions, median / p95 / max optimistic, false full" % lb for lb in labels)
          + " |", "|---|" + "---|" * len(labels)]
    for h in HOUSEHOLDS:
        cells = []
        for lb in labels:
            rows = [r for r in store[lb]["rows"] if r["household"] == h]
            if not rows:
                cells.append("-")
                continue
            f = figures(rows)
            cells.append("%d, %s / %s / %s, %d" % (f["sessions"], f["median_abs_error_pts"],
                                                   f["p95_abs_error_pts"],
                                                   f["max_optimistic_pts"], f["false_full"]))
        L.append("| %s (%s) | %s |" % (h, HOUSEHOLDS[h]["about"], " | ".join(cells)))
    L += ["", "## How it is run", "",
          "`python -m bench.month --label today` runs the four households side by side "
          "(`--jobs 4`) at x2400 on the 64-bit unix port with the cloud on. A run is bound by "
          "latency, not CPU (four of them take about one core of this 2-core machine), so four "
          "at once take as long as one. The emulator writes world.json every simulated hour "
          "(`SIM_WORLD_MIN=60`; a month's series is ~1.7 MB and a write every simulated minute "
          "would be 25 ms real at x2400). The plan is taken from the meter's shadow writes "
          "(`bench.month_run`), every ~4 simulated minutes at x2400; the firmware's report "
          "line carries it only every 500 ms real (20 simulated minutes).",
          "",
          "Highest speed that still measures the same night (first 2 days of the four "
          "households; the SOC reached at the two family departures, the firmware and harness "
          "unchanged):",
          "",
          "| speed, jobs | wall for 48 h | family: reached at departure 1 / 2 | note |",
          "|---|---|---|---|",
          "| x600, 1 | 4 min 51 s | 91.1 / 98.0 % | the headless default |",
          "| x1200, 4 | 2 min 31 s | 90.3 / 97.4 % | |",
          "| x2400, 1 | 1 min 15 s | 90.2 / 97.7 % | |",
          "| **x2400, 4** | **1 min 18 s** | **90.0-90.2 / 97.0-97.4 %** | **the bench's default** |",
          "| x4800, 1 | 0 min 39 s | 87.5 / 97.1 % | too fast: ~2 simulated min per control "
          "tick, cuts and ramps lose 3 points |",
          "",
          "At x2400 a control tick is ~1 simulated minute apart (x600: ~17 s), so the car gets "
          "~1 point less than at x600 on a night with many household steps; the predictions "
          "at +30 min were the same at x1200 and x2400. So a reached SOC 1-2 points below "
          "the prediction may be the speed's, not the plan's. Faults, control ticks dropped for "
          "MemoryError (52K cap) and heap peaks of each household's run are under `runs` in "
          "docs/month.json.",
          "",
          "For the \"at most 1 point optimistic\" goal the speed is not small enough: "
          "`python -m bench.month_offline --world <sim dir>` replays the scenarios' load "
          "through the firmware's `meter.learn` and `scheduler.plan` on CPython and charges an "
          "ideal car minute by minute at the whole amps each minute's true load leaves. Against "
          "the x2400 run of the learned rule, the car reached up to 4.2 points less than that "
          "ideal (0.9 A short on average while charging): each household step that cuts the "
          "car is followed by a ramp of 2 A per pair of steady readings, which takes seconds on "
          "a board and ~3 simulated minutes per step at x2400 (at x600, the first 10 days: about "
          "a third of that loss). The `learned` column is therefore run at x1200 (`--speed "
          "1200`, ~36 min wall for the four households side by side, ticks ~40 s apart; its run "
          "row says so); x600 would take ~72 min. Since cf617a9 the control loop ramps by "
          "`ramp_a_per_s` per second gone by and waits for a second of steady EV power, not for "
          "two readings, so a tick 40 s apart ramps as far as a board's 80 ticks would: at x1200 "
          "the car now reaches at most 0.9 points less than the ideal car (median 0.1; 2.1 / 0.2 "
          "before). The host's wall clock must not move against "
          "its monotonic clock during a run (a step, a suspended VM): the emulator's clock "
          "follows time.time(), the firmware's its monotonic ticks from its start, so the two "
          "part (an x600 attempt had the meter 1.46 simulated hours behind the world from day "
          "10, its cars charging from 23:30; it was discarded). In an earlier x1200 run with the "
          "host shared the emulated charger fell back to 0 A (its Modbus timeout, "
          "`counts.fallbacks` in world.json) 15-38 times per household, mostly in the last week, "
          "when the hourly world.json write is largest: a few minutes without charge each time. "
          "The `learned` run here had 5-8 per household (a twin run of the week beside it).",
          "", "## Every session", "",
          "Local time (UTC+5); *full* marks a plan that said the car would be full.", "",
          "| household | plug-in | SOC in | departs | " + " | ".join(
              "`%s` predicted | `%s` reached" % (lb, lb) for lb in labels) + " |",
          "|---|---|---|---|" + "---|---|" * len(labels)]
    by = {}
    for lb in labels:
        for r in store[lb]["rows"]:
            by.setdefault((r["household"], r["plug_t"]), {})[lb] = r
    order = list(HOUSEHOLDS)
    for key in sorted(by, key=lambda k: (order.index(k[0]) if k[0] in order else 99, k[1])):
        first = next(iter(by[key].values()))
        cells = []
        for lb in labels:
            r = by[key].get(lb)
            if r is None:
                cells += ["", ""]
                continue
            p = "-" if r["predicted"] is None else "%s%s" % (
                r["predicted"], " full" if r["predicted_full"] else "")
            cells += [p, "%.1f" % r["reached"]]
        L.append("| %s | %s | %.0f %% | %s | %s |" % (first["household"], first["plug"],
                                                      first["soc_start"], first["depart"],
                                                      " | ".join(cells)))
    return "\n".join(L) + "\n"


def mmss(s):
    s = int(round(s))
    return "%d min %02d s" % (s // 60, s % 60)


def plot(store, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    labels = sorted(store, key=lambda k: store[k].get("when", ""))
    fig, ax = plt.subplots(figsize=(6.5, 6.2))
    ax.fill_between([0, 100], [-3, 97], [3, 103], color="tab:green", alpha=0.12, lw=0,
                    label="within 3 points (the goal's median)")
    ax.plot([0, 100], [0, 100], color="gray", lw=0.8)
    marks = "o^sDv"
    colors = {h: c for h, c in zip(HOUSEHOLDS, ("tab:blue", "tab:orange", "tab:green",
                                                  "tab:red", "tab:purple"))}
    for i, lb in enumerate(labels):
        for h in HOUSEHOLDS:
            rows = [r for r in store[lb]["rows"] if r["household"] == h and
                    r["predicted"] is not None]
            if not rows:
                continue
            ax.scatter([r["reached"] for r in rows], [r["predicted"] for r in rows],
                       marker=marks[i % len(marks)], s=18, alpha=0.75, color=colors.get(h),
                       facecolors="none" if i else colors.get(h),
                       label="%s: %s" % (lb, h))
    ax.set_xlim(0, 102)
    ax.set_ylim(0, 102)
    ax.set_xlabel("SOC reached at departure (%)")
    ax.set_ylabel("SOC predicted 30 min after plug-in (%)")
    ax.set_title("Departure answer over a month (above the line: over-promised)", fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def git_commit():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True).stdout.strip() or "?"
    except OSError:
        return "?"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--days", type=float, default=None,
                    help="simulate only the first N days of each month (default: all)")
    ap.add_argument("--label", default="today", help="the rule measured (docs column)")
    ap.add_argument("--speed", type=float, default=2400)
    ap.add_argument("--jobs", type=int, default=len(HOUSEHOLDS),
                    help="households run side by side (a run is latency-bound: ~0.25 core)")
    ap.add_argument("--only", action="append", choices=sorted(HOUSEHOLDS))
    ap.add_argument("--sim-dir", default=os.path.join(ROOT, "build", "month"))
    ap.add_argument("--no-docs", action="store_true", help="do not store/rewrite docs/month.*")
    ap.add_argument("--analyse-only", action="store_true",
                    help="analyse the runs already in --sim-dir")
    ap.add_argument("--docs-only", action="store_true",
                    help="rewrite docs/month.md and month.png from docs/month.json, run nothing")
    a = ap.parse_args(argv)
    if a.docs_only:
        write_docs(load_store())
        return None
    with open(CFG) as f:
        cfg = json.load(f)
    names = a.only or list(HOUSEHOLDS)
    full = True
    hours = {}
    for n in names:
        with open(scen_path(n)) as f:
            h = json.load(f)["hours"]
        hours[n] = h if a.days is None else min(h, a.days * 24)
        full = full and hours[n] >= h
    os.makedirs(a.sim_dir, exist_ok=True)
    t0 = time.time()
    # the emulator's clock follows the wall clock, the firmware's its monotonic ticks: a wall
    # clock that moves against the monotonic one (a step, a suspended VM) parts them
    skew0 = t0 - time.monotonic()
    summaries = {}
    if not a.analyse_only:
        queue = list(names)
        running = {}
        while queue or running:
            while queue and len(running) < max(1, a.jobs):
                n = queue.pop(0)
                d = os.path.join(a.sim_dir, n)
                log = open(os.path.join(a.sim_dir, n + ".log"), "w")
                running[n] = (run_household(n, hours[n], a.speed, d, log), log, time.time())
                print("month: %s started (%.1f h at x%g)" % (n, hours[n], a.speed), flush=True)
            time.sleep(1)
            for n, (p, log, ts) in list(running.items()):
                if p.poll() is None:
                    continue
                log.close()
                del running[n]
                with open(os.path.join(a.sim_dir, n + ".log")) as f:
                    last = (f.read().strip().splitlines() or ["{}"])[-1]
                try:
                    summaries[n] = json.loads(last)
                except ValueError:
                    summaries[n] = {"error": last}
                summaries[n]["wall_s"] = round(time.time() - ts)
                print("month: %s done in %s: %s" % (n, mmss(time.time() - ts), last), flush=True)
    wall = time.time() - t0
    step = 0.0 if a.analyse_only else time.time() - time.monotonic() - skew0
    rows = []
    for n in names:
        d = os.path.join(a.sim_dir, n)
        with open(os.path.join(d, "world.json")) as f:
            world = json.load(f)
        with open(os.path.join(d, "plans.json")) as f:
            plans = json.load(f)
        rows += analyse(n, world, plans, cfg["tz_offset_min"])
    for r in rows:
        print("%-7s %s  in %5.1f%%  dep %s  predicted %5s%s  reached %5.1f" % (
            r["household"], r["plug"], r["soc_start"], r["depart"], r["predicted"],
            " full" if r["predicted_full"] else "     ", r["reached"]))
    fig = figures(rows)
    fig.update({"label": a.label, "speed": a.speed, "jobs": a.jobs, "wall_s": round(wall),
                "households": names})
    bad = {n: s for n, s in summaries.items() if s.get("error") or s.get("faults")
           or s.get("ticks_lost_oom")}
    if bad:
        fig["run_problems"] = {n: {k: s.get(k) for k in ("error", "faults", "ticks_lost_oom")}
                               for n, s in bad.items()}
    if abs(step) > 2:
        fig["wall_clock_step_s"] = round(step, 1)
        print("month: the wall clock moved %.1f s against the monotonic clock during the run: "
              "the meter and the world parted by %.1f simulated h; not stored"
              % (step, step * a.speed / 3600), flush=True)
    elif full and not a.no_docs and not a.analyse_only and set(names) == set(HOUSEHOLDS):
        store = load_store()
        store[a.label] = {"figures": figures(rows), "rows": rows, "speed": a.speed,
                          "jobs": a.jobs, "wall_s": round(wall), "commit": git_commit(),
                          "when": datetime.datetime.now(datetime.timezone.utc).isoformat(
                              timespec="seconds"),
                          "runs": {n: {k: s.get(k) for k in (
                              "hours", "ev_energy_wh", "over_limit_s", "faults",
                              "ticks_lost_oom", "tick_gap_max_ms", "heap_peak_bytes",
                              "wall_s")} for n, s in summaries.items()}}
        write_docs(store)
        fig["docs"] = "docs/month.md"
    print(json.dumps(fig), flush=True)
    return fig


if __name__ == "__main__":
    main()
