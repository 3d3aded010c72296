"""python -m grid.study [--grid NAME] [--homes N] [--ev-share P] [--days D]

A street of these meters on SimBench LV feeders (pandapower), against unmanaged charging and the
ideal. Writes docs/grid.md (+ docs/img/grid_*.png) and prints one JSON object (keyed by
strategy) as its last line."""
import argparse
import json
import multiprocessing as mp
import os
import sys
import time

import numpy as np

from grid import ROOT
from grid import ev as EV
from grid import feeders as F
from grid import strategies as ST
import scheduler as S

PRICE = {"offpeak": 23.0, "peak": 42.0, "emergency": 60.0}   # firmware config.json.example


def peak_mask(n_min, peak=ST.PEAK):
    win = ST.home_cfg(16, 1, 60000, 5000, peak)["_win"]
    day = np.array([S.is_peak(m, win) for m in range(1440)])
    return np.resize(day, n_min)


def run_feeder(job):
    k, name, start_day, share, days, seed, strategies = job
    t0 = time.time()
    n_min = days * 1440 + 720
    f = F.load_feeder(name, start_day, n_min)
    fleet = EV.draw(len(f.homes), share, days, seed * 1000 + k)
    house = f.house_w
    base = f.load_p.sum(0) - f.sgen_p.sum(0)
    pf = F.BatchPF(f.net)
    pk = peak_mask(n_min)
    t_load = time.time() - t0
    out = {"name": name, "homes": len(f.homes), "cars": fleet.n, "sn_kva": float(f.net.trafo.sn_mva.sum() * 1000),
           "t_load": t_load, "res": {}}
    ev_homes = f.home_row[fleet.home]
    house_kwh_pk = (f.load_p[ev_homes] * pk).sum(1) / 60000
    house_kwh_op = f.load_p[ev_homes].sum(1) / 60000 - house_kwh_pk
    for s in strategies:
        t1 = time.time()
        r = ST.run(s, fleet, house, base, n_min)
        t2 = time.time()
        lp = f.load_p.copy()
        np.add.at(lp, ev_homes, r.ev_w)
        vm, line, tr = pf.run(lp, f.load_q, f.sgen_p)
        t3 = time.time()
        trs = tr.max(0)
        over = (tr > 100).any(0) | (line > 100).any(0)
        ev_tot = r.ev_w.sum(0)
        em = r.em_wh.sum(1) / 1000
        em_pk = r.em_pk_wh.sum(1) / 1000
        ev_kwh = r.ev_w.sum(1) / 60000
        ev_pk = (r.ev_w * pk).sum(1) / 60000
        # the firmware's meter.add: house energy by period, EV energy under emergency at the
        # emergency price, the rest of the EV energy by period
        bill = (house_kwh_op * PRICE["offpeak"] + house_kwh_pk * PRICE["peak"]
                + (ev_kwh - ev_pk - (em - em_pk)) * PRICE["offpeak"]
                + (ev_pk - em_pk) * PRICE["peak"] + em * PRICE["emergency"])
        out["res"][s] = {
            "trafo_peak_pct": float(trs.max()), "min_voltage_pu": float(vm.min()),
            "max_line_loading_pct": float(line.max()), "overload_min": int(over.sum()),
            "ev_peak_kwh": float(ev_pk.sum()), "ev_kwh": float(ev_kwh.sum()),
            "trips": int(r.trip_pct.size), "trip_ok": int((r.soc_end + 1e-3 >= r.trip_pct).sum()),
            "warned": int(r.warned.sum()), "bill_sum": float(bill.sum()),
            "balance_err_wh": float(np.abs(r.grid_wh * EV.EFFICIENCY - r.gain_wh).max()
                                    if r.gain_wh.size else 0),
            "trafo": trs.astype(np.float32), "ev_w": ev_tot.astype(np.float32),
            "t_strategy": t2 - t1, "t_pf": t3 - t2,
        }
    out["t_total"] = time.time() - t0
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[2])
    ap.add_argument("--grid", default="all", help="one of %s, or all (cycled)" % ", ".join(F.GRIDS))
    ap.add_argument("--homes", type=int, default=1000)
    ap.add_argument("--ev-share", type=float, default=0.5)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--start-day", type=int, default=10, help="day of the SimBench year (2016)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "grid.md"))
    ap.add_argument("--no-doc", action="store_true", help="print the JSON only")
    a = ap.parse_args(argv)
    share = a.ev_share / 100 if a.ev_share > 1 else a.ev_share
    t0 = time.time()
    grids = F.GRIDS if a.grid == "all" else (a.grid,)
    # which feeders: whole SimBench grids, cycled, until they hold --homes homes
    names = []
    got = 0
    for k in range(10000):
        if got >= a.homes:
            break
        n = grids[k % len(grids)]
        names.append((n, a.start_day + 7 * (k // len(grids))))
        got += _homes(n)
    for n, _ in names:
        F._base(n)                      # fill the cache once, before the workers fork
    jobs = [(k, n, sd, share, a.days, a.seed, ST.STRATEGIES) for k, (n, sd) in enumerate(names)]
    if a.workers > 1 and len(jobs) > 1:
        with mp.get_context("fork").Pool(a.workers) as pool:
            outs = list(pool.imap(run_feeder, sorted(jobs, key=lambda j: -_homes(j[1]))))
    else:
        outs = [run_feeder(j) for j in jobs]
    wall = time.time() - t0
    summary = summarise(outs)
    meta = {"homes": sum(o["homes"] for o in outs), "cars": sum(o["cars"] for o in outs),
            "feeders": len(outs), "days": a.days, "ev_share": share, "wall_s": round(wall, 1),
            "workers": a.workers, "cpu_s": round(sum(o["t_total"] for o in outs), 1)}
    if not a.no_doc:
        from grid import report
        report.write(a.out, outs, summary, meta, a)
    meta["per_feeder"] = [(o["name"], o["homes"], round(o["t_total"], 1)) for o in outs]
    print("homes %(homes)d cars %(cars)d feeders %(feeders)d days %(days)d: wall %(wall_s).1f s "
          "(%(workers)d workers, %(cpu_s).1f s of work)" % meta)
    print(json.dumps(summary), flush=True)
    return summary, meta


_HOMES = {}


def _homes(name):
    if name not in _HOMES:
        net = F._base(name)[0]
        _HOMES[name] = int(net.load.profile.str.startswith("H").sum())
    return _HOMES[name]


def summarise(outs):
    res = {}
    for s in ST.STRATEGIES:
        rs = [o["res"][s] for o in outs]
        trips = sum(r["trips"] for r in rs)
        n_ev = sum(o["cars"] for o in outs)
        res[s] = {
            "trafo_peak_pct": round(max(r["trafo_peak_pct"] for r in rs), 1),
            "trafo_peak_mean_pct": round(float(np.mean([r["trafo_peak_pct"] for r in rs])), 1),
            "min_voltage_pu": round(min(r["min_voltage_pu"] for r in rs), 4),
            "max_line_loading_pct": round(max(r["max_line_loading_pct"] for r in rs), 1),
            "overload_h": round(sum(r["overload_min"] for r in rs) / 60, 2),
            "ev_peak_kwh": round(sum(r["ev_peak_kwh"] for r in rs), 1),
            "ev_kwh": round(sum(r["ev_kwh"] for r in rs), 1),
            "trip_ok_share": round(sum(r["trip_ok"] for r in rs) / trips, 4) if trips else 1.0,
            "warned_share": round(sum(r["warned"] for r in rs) / trips, 4) if trips else 0.0,
            "bill_ev_home": round(sum(r["bill_sum"] for r in rs) / n_ev, 1) if n_ev else 0.0,
        }
    return res


if __name__ == "__main__":
    main()
