"""docs/grid.md and its plots from a study run (grid.study)."""
import json
import os

import numpy as np

from grid import ROOT
from grid import strategies as ST

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt     # noqa: E402

COLORS = {"unmanaged": "tab:red", "meter": "tab:green", "meter_fast": "tab:orange",
          "meter_no_delay": "tab:purple", "ideal": "tab:blue", "ideal_offpeak": "tab:cyan"}
SCALING = os.path.join(ROOT, "docs", "grid_scaling.json")


def _plots(outs, img_dir):
    os.makedirs(img_dir, exist_ok=True)
    # 1: all transformers together, kVA, the mean day and the highest minute of each day-minute
    fig, ax = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
    for s in ST.STRATEGIES:
        kva = sum(o["res"][s]["trafo"] * o["sn_kva"] / 100 for o in outs)
        n = len(kva) // 1440 * 1440
        d = kva[:n].reshape(-1, 1440)
        h = np.arange(1440) / 60
        ax[0].plot(h, d.mean(0), color=COLORS[s], label=s, lw=1.2)
        ax[1].plot(h, d.max(0), color=COLORS[s], label=s, lw=1.2)
    for a, t in zip(ax, ("mean day", "highest of all days, minute by minute")):
        a.axvspan(17, 22, color="0.9", zorder=0)
        a.set_xlabel("local hour (peak window shaded)")
        a.set_title("all transformers, summed load (kVA): " + t, fontsize=9)
        a.set_xticks(range(0, 25, 3))
    ax[0].set_ylabel("kVA")
    ax[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(img_dir, "grid_day.png"), dpi=90)
    plt.close(fig)
    # 2: the feeder with the highest unmanaged peak, 3 days around that peak
    w = max(outs, key=lambda o: o["res"]["unmanaged"]["trafo_peak_pct"])
    m = int(np.argmax(w["res"]["unmanaged"]["trafo"]))
    a0 = max(0, m // 1440 * 1440 - 1440)
    fig, ax = plt.subplots(figsize=(12, 4))
    for s in ST.STRATEGIES:
        tr = w["res"][s]["trafo"][a0:a0 + 3 * 1440]
        ax.plot(np.arange(len(tr)) / 60, tr, color=COLORS[s], label=s, lw=1)
    ax.axhline(100, color="k", lw=0.8, ls="--")
    ax.set_xlabel("hours from midnight of day %d" % (a0 // 1440))
    ax.set_ylabel("transformer loading %")
    ax.set_title("%s (%d homes, %d EVs, %.0f kVA): the days around its unmanaged peak"
                 % (w["name"], w["homes"], w["cars"], w["sn_kva"]), fontsize=9)
    ax.legend(fontsize=8, ncol=3)
    fig.tight_layout()
    fig.savefig(os.path.join(img_dir, "grid_worst.png"), dpi=90)
    plt.close(fig)


def _table(summary):
    keys = ("trafo_peak_pct", "trafo_peak_mean_pct", "min_voltage_pu", "max_line_loading_pct",
            "overload_h", "ev_peak_kwh", "ev_kwh", "trip_ok_share", "warned_share", "bill_ev_home")
    lines = ["| strategy | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for s, r in summary.items():
        lines.append("| %s | %s |" % (s, " | ".join(str(r[k]) for k in keys)))
    return "\n".join(lines)


def _feeders(outs):
    ss = ST.STRATEGIES
    lines = ["| feeder | homes | EVs | kVA | " + " | ".join(ss) + " |", "|---" * (len(ss) + 4) + "|"]
    for o in outs:
        lines.append("| %s | %d | %d | %.0f | %s |" % (
            o["name"], o["homes"], o["cars"], o["sn_kva"],
            " | ".join("%.1f" % o["res"][s]["trafo_peak_pct"] for s in ss)))
    return "\n".join(lines)


def _scaling(meta):
    try:
        with open(SCALING) as f:
            runs = json.load(f)
    except (OSError, ValueError):
        runs = []
    runs = [r for r in runs if r["homes"] != meta["homes"] or r["days"] != meta["days"]]
    runs.append({k: meta[k] for k in ("homes", "feeders", "cars", "days", "workers", "wall_s",
                                      "cpu_s")})
    runs.sort(key=lambda r: r["homes"] * r["days"])
    out = ["| homes | feeders | EVs | days | workers | wall s | work s (CPU) | work s per home-month |",
           "|---|---|---|---|---|---|---|---|"]
    per = []
    for r in runs:
        hm = r["homes"] * r["days"] / 30
        out.append("| %d | %d | %d | %d | %d | %.1f | %.1f | %.3f |" % (
            r["homes"], r["feeders"], r["cars"], r["days"], r["workers"], r["wall_s"], r["cpu_s"],
            r["cpu_s"] / hm))
        per.append((hm, r["cpu_s"]))
    hm = np.array([p[0] for p in per])
    cpu = np.array([p[1] for p in per])
    k, c0 = np.polyfit(hm, cpu, 1) if len(per) > 1 else (cpu[0] / hm[0], 0.0)
    big = k * 100000 + c0
    out.append("")
    out.append("Least-squares fit over these runs: work = %.3f s per home-month %+.1f s. "
               "For 100 000 homes and a month: %.0f s of work = %.1f h on one core, %.1f h on "
               "this 2-core machine, %.0f min on a 32-core machine (feeders are independent)."
               % (k, c0, big, big / 3600, big / 7200, big / 32 / 60))
    return "\n".join(out) + "\n"


def write(path, outs, summary, meta, args):
    img = os.path.join(os.path.dirname(path), "img")
    _plots(outs, img)
    u = summary["unmanaged"]["trafo_peak_pct"]
    m = summary["meter"]["trafo_peak_pct"]
    i = summary["ideal"]["trafo_peak_pct"]
    io = summary["ideal_offpeak"]["trafo_peak_pct"]
    feeders = ", ".join(sorted({"%s (%d homes)" % (o["name"], o["homes"]) for o in outs}))
    goal = ("- meter vs unmanaged: peak %.1f %% vs %.1f %%: **%.0f %% lower** (goal: at least 40 %% "
            "lower): **%s**\n"
            "- meter vs ideal: %.1f %% vs %.1f %%: **%+.0f %%** (goal: within 15 %%): **%s**; vs the "
            "off-peak-only ideal (%.1f %%): %+.0f %%\n"
            "- cars meeting their trip need: %.2f %% (goal: >= 99 %%): **%s**; warned by the plan at "
            "plug-in (and so charged as emergency): %.2f %%\n"
            "- lowest voltage %.3f p.u. (EN 50160 limit 0.90), most loaded line %.0f %%, overload "
            "%.1f h (unmanaged: %.3f p.u., %.0f %%, %.1f h)\n" % (
                m, u, (1 - m / u) * 100, "met" if m <= 0.6 * u else "NOT met",
                m, i, (m / i - 1) * 100, "met" if m <= 1.15 * i else "NOT met", io, (m / io - 1) * 100,
                summary["meter"]["trip_ok_share"] * 100,
                "met" if summary["meter"]["trip_ok_share"] >= 0.99 else "NOT met",
                summary["meter"]["warned_share"] * 100,
                summary["meter"]["min_voltage_pu"], summary["meter"]["max_line_loading_pct"],
                summary["meter"]["overload_h"], summary["unmanaged"]["min_voltage_pu"],
                summary["unmanaged"]["max_line_loading_pct"], summary["unmanaged"]["overload_h"]))
    mu = summary["unmanaged"]["trafo_peak_mean_pct"]
    mm = summary["meter"]["trafo_peak_mean_pct"]
    mi = summary["ideal"]["trafo_peak_mean_pct"]
    goal += ("- the same on each feeder's own peak, averaged over the feeders: meter %.1f %%, "
             "unmanaged %.1f %% (%.0f %% lower), ideal %.1f %% (meter %+.0f %%)\n"
             % (mm, mu, (1 - mm / mu) * 100, mi, (mm / mi - 1) * 100))
    with open(os.path.join(os.path.dirname(__file__), "grid_md.txt")) as f:
        tmpl = f.read()
    text = tmpl.format(
        cmd="python -m grid.study --grid %s --homes %d --ev-share %g --days %d" % (
            args.grid, args.homes, meta["ev_share"], args.days),
        homes=meta["homes"], cars=meta["cars"], feeders=meta["feeders"], days=meta["days"],
        share=meta["ev_share"] * 100, wall=meta["wall_s"], workers=meta["workers"],
        cpu=meta["cpu_s"], feeder_list=feeders, start_day=args.start_day, seed=args.seed,
        table=_table(summary), goal=goal, scaling=_scaling(meta), per_feeder=_feeders(outs),
        json=json.dumps(summary))
    with open(path, "w") as f:
        f.write(text)
