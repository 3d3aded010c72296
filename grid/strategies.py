"""Charging strategies for one feeder's fleet, minute by minute. Same households, same cars.

unmanaged       full charger power from plug-in until full or departure.
meter_no_delay  the firmware's rule as it is: scheduler.allocate under the sanctioned limit,
                blocked in the peak window, a plan at plug-in (scheduler.plan; a car whose trip
                the plan cannot cover off-peak is warned and its owner picks emergency).
meter_fast      the same plus the firmware's random start delay after each peak window
                (charger.start_delay_max_s, uniform per home and day).
meter           meter_fast plus scheduler.spread (the lowest current that still fills the car
                by the departure, from a random start point).
ideal           a coordinated valley-filling LP per feeder and night (scipy linprog / HiGHS).
ideal_offpeak   the same LP with charging allowed off-peak only: the floor for any controller
                that keeps the tariff's peak windows, as these meters do.

How the firmware's 0.5 s control loop is represented: one step per minute. Within a minute the
household load is constant (SimBench has 15-min values, interpolated), so the meter's loop is
run at its own per-second ramp (allocate with t_s advancing 1 s per tick, ramp_a_per_s) until
the current settles, and that current holds for the minute; the 60 s restart hold spans one
minute step. The start delay ends inside a minute: that minute charges for the part after it.
"""
import json
import os

import numpy as np
from scipy import sparse
from scipy.optimize import linprog

from grid import FIRMWARE
import config as fw_config      # firmware/config.py
import scheduler as S           # firmware/scheduler.py

from grid import ev as EV

STRATEGIES = ("unmanaged", "meter", "meter_fast", "meter_no_delay", "ideal", "ideal_offpeak")
PEAK = ["17:00-22:00"]


def home_cfg(max_a, phases, cap_wh, sanctioned_w, peak=PEAK):
    """The firmware config of one EV home: the example, with this home's car and connection."""
    with open(os.path.join(FIRMWARE, "config.json.example")) as f:
        raw = json.load(f)
    raw["sanctioned_w"] = int(sanctioned_w)
    raw["breaker_w"] = int(sanctioned_w * 3 // 2)
    raw["tz_offset_min"] = 0                # the study's clock is local time
    raw["peak"] = list(peak)
    raw["charger"].update(max_a=int(max_a), phases=int(phases))
    raw["charger"].setdefault("start_delay_max_s", EV.START_DELAY_MAX_S)
    raw["battery"].update(capacity_wh=int(cap_wh), efficiency=EV.EFFICIENCY, taper_soc_pct=100)
    raw["trip"].update(wh_per_km=EV.WH_PER_KM, reserve_pct=EV.RESERVE_PCT)
    return fw_config.validate(raw)


class Result:
    """Per car and night: EV grid power per minute, battery energy gained, trip outcome."""

    def __init__(self, fleet, n_min):
        n, d = fleet.arr.shape
        self.ev_w = np.zeros((n, n_min), np.float32)
        self.gain_wh = np.zeros((n, d))     # battery energy in
        self.grid_wh = np.zeros((n, d))     # grid energy out, for the energy balance
        self.em_wh = np.zeros((n, d))       # grid energy drawn under emergency charging
        self.em_pk_wh = np.zeros((n, d))    # the part of it in peak windows
        self.soc_end = np.zeros((n, d))
        self.trip_pct = np.zeros((n, d), int)
        self.warned = np.zeros((n, d), bool)


def _trip(fleet, i, d):
    return S.trip_need_pct(int(round(fleet.km_next[i, d])), EV.WH_PER_KM, EV.RESERVE_PCT,
                           int(fleet.cap_wh[i]))


def unmanaged(fleet, house_w, n_min):
    r = Result(fleet, n_min)
    for i in range(fleet.n):
        cap = fleet.cap_wh[i]
        p = fleet.max_a[i] * 230 * fleet.phases[i]
        for d in range(fleet.arr.shape[1]):
            a, b = fleet.arr[i, d], min(fleet.dep[i, d], n_min)
            need = cap * (100 - fleet.soc0[i, d]) / 100 / EV.EFFICIENCY   # grid Wh
            full_min = need / (p / 60)
            k = int(full_min)
            k_end = min(a + k, b)
            r.ev_w[i, a:k_end] = p
            got = (k_end - a) * p / 60
            if k_end < b and got < need:
                r.ev_w[i, k_end] = (need - got) * 60
                got = need
            r.grid_wh[i, d] = got
            r.gain_wh[i, d] = got * EV.EFFICIENCY
            r.soc_end[i, d] = fleet.soc0[i, d] + r.gain_wh[i, d] * 100 / cap
            r.trip_pct[i, d] = _trip(fleet, i, d)
    return r


def meter(fleet, house_w, n_min, delay=True, spread=False, peak=PEAK):
    """The firmware's decisions for each car and night (see the module doc)."""
    r = Result(fleet, n_min)
    for i in range(fleet.n):
        cfg = home_cfg(fleet.max_a[i], fleet.phases[i], fleet.cap_wh[i], fleet.sanctioned_w[i],
                       peak)
        c = cfg["charger"]
        win = cfg["_win"]
        ends = win[1::2]
        volt = cfg["voltage_v"]
        per_a = volt * c["phases"]
        cap = cfg["battery"]["capacity_wh"]
        eff_pct = cfg["_eff_pct"]
        eff = eff_pct / 100
        hw = house_w[fleet.home[i]]
        row = r.ev_w[i]
        for d in range(fleet.arr.shape[1]):
            arr, dep = int(fleet.arr[i, d]), int(fleet.dep[i, d])
            soc0 = int(fleet.soc0[i, d])
            trip = _trip(fleet, i, d)
            e_wh = soc0 * cap / 100.0
            p = S.plan(arr * 60, dep % 1440, soc0, int(hw[arr]), 0, trip, cfg)
            # the plan at plug-in: a trip that off-peak charging cannot cover is warned, and the
            # owner picks emergency (charging at the breaker limit, all hours, emergency price)
            emerg = not (p[S.P_TRIP] & 1)
            lim = cfg["breaker_w"] if emerg else cfg["sanctioned_w"]
            dl = fleet.delay_s[i, d] if delay else 0.0
            rnd = int(fleet.rnd[i, d])
            cur = 0
            ok = -1
            grid = 0.0
            for m in range(arr, min(dep, n_min)):
                if e_wh >= cap:
                    break
                mod = m % 1440
                frac = 1.0
                blocked = False
                if not emerg:
                    if S.is_peak(mod, win):
                        blocked = True
                    elif dl > 0:
                        since = min((mod - e) % 1440 for e in ends) * 60
                        if since + 60 <= dl:
                            blocked = True
                        elif since < dl:
                            frac = (since + 60 - dl) / 60
                capa = c["max_a"]
                if spread and not emerg and not blocked:
                    capa = S.spread(m * 60, dep * 60, win, int((cap - e_wh) * 100), eff_pct,
                                    per_a, c, rnd, cur)
                    if capa == 0:
                        blocked = True
                hwm = int(hw[m])
                t = m * 60
                for k in range(60):
                    a, ok = S.allocate(t + k, hwm, lim, volt, cur, ok, c, blocked)
                    if a > capa:
                        a = capa
                    if a == cur:
                        break
                    cur = a
                if cur == 0:
                    continue
                pw = cur * per_a * frac
                g = pw / 60 * eff
                if e_wh + g > cap:
                    g = cap - e_wh
                    pw = g / eff * 60
                e_wh += g
                grid += pw / 60
                row[m] = pw
                if emerg:
                    r.em_wh[i, d] += pw / 60
                    if S.is_peak(mod, win):
                        r.em_pk_wh[i, d] += pw / 60
            r.grid_wh[i, d] = grid
            r.gain_wh[i, d] = e_wh - soc0 * cap / 100.0
            r.soc_end[i, d] = e_wh * 100 / cap
            r.trip_pct[i, d] = trip
            r.warned[i, d] = emerg
    return r


def ideal(fleet, base_w, n_min, slot=15, peak=PEAK, offpeak_only=False):
    """Valley filling: per night (noon to noon), the charging schedule of every car on the
    feeder that delivers what full power from plug-in would (to full, or as much as the stay
    allows) with the lowest peak of the feeder's net active load (households + other loads - PV
    + EVs), in `slot`-minute steps; power bounded by each charger. One LP per night (HiGHS).
    base_w: the feeder's net load per minute without EVs."""
    r = Result(fleet, n_min)
    n, days = fleet.arr.shape
    pmax = fleet.max_a * 230 * fleet.phases
    win = home_cfg(16, 1, 60000, 5000, peak)["_win"]
    pkslot = np.array([S.is_peak((720 + k * slot) % 1440, win) for k in range(1440 // slot)], float)
    for d in range(days):
        w0 = d * 1440 + 720
        ns = 1440 // slot
        mins = np.arange(w0, w0 + 1440)
        base = np.array([base_w[min(w0 + k * slot, n_min - 1):min(w0 + (k + 1) * slot, n_min)].mean()
                         for k in range(ns)])
        rows, cols, ub, cars = [], [], [], []
        need = []
        nv = 0
        for i in range(n):
            a, b = fleet.arr[i, d], min(fleet.dep[i, d], n_min)
            if b <= a:
                continue
            plugged = (mins >= a) & (mins < b)
            if offpeak_only:
                plugged &= np.repeat(pkslot == 0, slot)
            cnt = plugged.reshape(ns, slot).sum(1)
            ks = np.flatnonzero(cnt)
            want = fleet.cap_wh[i] * (100 - fleet.soc0[i, d]) / 100 / EV.EFFICIENCY
            can = pmax[i] * cnt.sum() / 60
            cars.append((i, ks, cnt[ks], nv))
            need.append(min(want, can * 0.999))
            ub.extend(pmax[i] * cnt[ks] / slot)
            nv += len(ks)
        if not cars:
            continue
        # variables: x (average W of each car in each slot it is plugged), then the peak P
        cpeak = np.zeros(nv + 1)
        cpeak[-1] = 1
        # a tie-break: among the lowest-peak schedules, the one with the least peak-tariff
        # energy (1e-4 of a W of peak per W in a peak slot: never trades the peak away)
        for ci, (i, ks, cnt, v0) in enumerate(cars):
            cpeak[v0:v0 + len(ks)] = 1e-4 * pkslot[ks]
        ai, aj = [], []
        for ci, (i, ks, cnt, v0) in enumerate(cars):
            ai.extend(ks)
            aj.extend(range(v0, v0 + len(ks)))
        ai.extend(range(ns))
        aj.extend([nv] * ns)
        vals = np.concatenate([np.ones(nv), -np.ones(ns)])
        a_ub = sparse.csr_matrix((vals, (ai, aj)), shape=(ns, nv + 1))
        ei, ej = [], []
        for ci, (i, ks, cnt, v0) in enumerate(cars):
            ei.extend([ci] * len(ks))
            ej.extend(range(v0, v0 + len(ks)))
        a_eq = sparse.csr_matrix((np.full(nv, slot / 60), (ei, ej)), shape=(len(cars), nv + 1))
        res = linprog(cpeak, A_ub=a_ub, b_ub=-base, A_eq=a_eq, b_eq=np.array(need),
                      bounds=list(zip(np.zeros(nv), ub)) + [(None, None)], method="highs")
        if res.status != 0:
            raise RuntimeError("ideal LP night %d: %s" % (d, res.message))
        x = np.clip(res.x[:nv], 0, None)
        for ci, (i, ks, cnt, v0) in enumerate(cars):
            a, b = fleet.arr[i, d], min(fleet.dep[i, d], n_min)
            for j, k in enumerate(ks):
                s0 = max(w0 + k * slot, a)
                s1 = min(w0 + (k + 1) * slot, b)
                r.ev_w[i, s0:s1] = x[v0 + j] * slot / cnt[j]
            got = float(r.ev_w[i, a:b].sum()) / 60
            r.grid_wh[i, d] = got
            r.gain_wh[i, d] = got * EV.EFFICIENCY
            r.soc_end[i, d] = fleet.soc0[i, d] + r.gain_wh[i, d] * 100 / fleet.cap_wh[i]
            r.trip_pct[i, d] = _trip(fleet, i, d)
    return r


def run(name, fleet, house_w, base_w, n_min):
    if name == "unmanaged":
        return unmanaged(fleet, house_w, n_min)
    if name == "ideal":
        return ideal(fleet, base_w, n_min)
    if name == "ideal_offpeak":
        return ideal(fleet, base_w, n_min, offpeak_only=True)
    return meter(fleet, house_w, n_min, delay=name != "meter_no_delay", spread=name == "meter")
