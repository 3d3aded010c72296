"""SimBench LV feeders in pandapower: the homes, their per-minute household profiles, and a
batch power flow over every minute of the study.

The batch power flow is the Z-bus fixed-point method on pandapower's own admittance matrices
(net._ppc["internal"]: Ybus, Yf, Yt, built by pp.runpp from the SimBench data), vectorised over
all minutes at once; loading uses pandapower's own definitions (line: max end current over
max_i_ka x df x parallel; trafo: max side current over rated current). tests check it against
pp.runpp at sample minutes (host_tests/test_grid_parts.py).
"""
import logging
import os
import pickle
import warnings
from dataclasses import dataclass

import numpy as np

warnings.filterwarnings("ignore")
logging.getLogger("pandapower").setLevel(logging.ERROR)
import pandapower as pp      # noqa: E402
import simbench as sb        # noqa: E402

GRIDS = ("semiurb4", "urban6", "rural2", "semiurb5", "rural3", "rural1")
CACHE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         "build", "grid")
_CACHE = {}


def _base(name):
    # simbench's CSV reader takes ~6 s a grid: keep the net (solved once, so its admittance
    # matrices exist) and its year of profiles (float32, W) in build/grid/NAME.pkl
    if name in _CACHE:
        return _CACHE[name]
    path = os.path.join(CACHE_DIR, "%s-%s.pkl" % (name, sb.__version__))
    try:
        with open(path, "rb") as f:
            _CACHE[name] = pickle.load(f)
        return _CACHE[name]
    except (OSError, EOFError, pickle.UnpicklingError):
        pass
    net = sb.get_simbench_net("1-LV-%s--0-no_sw" % name)
    prof = sb.get_absolute_values(net, profiles_instead_of_study_cases=True)
    pp.runpp(net, numba=False)
    prof = {k: (prof[k].values * 1e6).astype("float32") for k in
            (("load", "p_mw"), ("load", "q_mvar"), ("sgen", "p_mw"))}
    os.makedirs(CACHE_DIR, exist_ok=True)
    tmp = path + ".%d" % os.getpid()
    with open(tmp, "wb") as f:
        pickle.dump((net, prof), f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)
    _CACHE[name] = (net, prof)
    return _CACHE[name]


@dataclass
class Feeder:
    name: str
    net: object
    homes: np.ndarray       # net.load indices of the households (H0 profiles)
    load_p: np.ndarray      # (loads, minutes) W, every load (households and others)
    load_q: np.ndarray      # (loads, minutes) var
    sgen_p: np.ndarray      # (sgens, minutes) W (PV)
    home_row: np.ndarray    # row of each home in load_p

    @property
    def house_w(self):
        return self.load_p[self.home_row]


def _minutes(a15, start_q, n_min):
    # 15-minute means -> per-minute values, linear between quarter-hour midpoints
    n_q = n_min // 15 + 2
    seg = a15[start_q:start_q + n_q]
    t = np.arange(n_min) / 15.0 - 0.5
    idx = np.clip(t, 0, n_q - 1)
    i0 = np.floor(idx).astype(int)
    i1 = np.minimum(i0 + 1, n_q - 1)
    f = idx - i0
    return (seg[i0] * (1 - f)[:, None] + seg[i1] * f[:, None]).T


def load_feeder(name, start_day, n_min):
    """A feeder with its profiles from `start_day` (day of 2016 in the SimBench year) for
    n_min minutes."""
    net, prof = _base(name)
    q0 = start_day * 96
    lp = prof[("load", "p_mw")]
    lq = prof[("load", "q_mvar")]
    sp = prof[("sgen", "p_mw")]
    if q0 + n_min // 15 + 2 > len(lp):
        raise ValueError("study runs past the SimBench year")
    homes = np.flatnonzero(net.load.profile.str.startswith("H").values)
    return Feeder(name, net, net.load.index.values[homes], _minutes(lp, q0, n_min),
                  _minutes(lq, q0, n_min), _minutes(sp, q0, n_min), homes)


def feeders_for(n_homes, start_day, n_min):
    """Whole SimBench feeders, cycling through GRIDS, until they hold at least n_homes homes;
    the k-th copy of a grid starts its profiles 7 k days later (same weekday, other weather)."""
    out = []
    got = 0
    k = 0
    while got < n_homes:
        name = GRIDS[k % len(GRIDS)]
        f = load_feeder(name, start_day + 7 * (k // len(GRIDS)), n_min)
        out.append(f)
        got += len(f.homes)
        k += 1
    return out


class BatchPF:
    """Power flow of one feeder for many time steps at once."""

    def __init__(self, net):
        ppc = net._ppc["internal"]
        self.base = ppc["baseMVA"]
        ybus = ppc["Ybus"].toarray()
        nb = ybus.shape[0]
        look = net._pd2ppc_lookups["bus"]
        slack = np.array([look[b] for b in net.ext_grid.bus.values])
        self.slack = slack
        self.vs = (net.ext_grid.vm_pu.values * np.exp(1j * np.deg2rad(net.ext_grid.va_degree.values)))
        pq = np.setdiff1d(np.arange(nb), slack)
        self.pq = pq
        self.z = np.linalg.inv(ybus[np.ix_(pq, pq)])
        self.w = -self.z @ (ybus[np.ix_(pq, slack)] @ self.vs)
        self.nb = nb
        self.yf = ppc["Yf"]
        self.yt = ppc["Yt"]
        branch = ppc["branch"]
        vn = ppc["bus"][:, 9]                      # BASE_KV
        self.ibase_f = self.base / (np.sqrt(3) * vn[branch[:, 0].real.astype(int)])
        self.ibase_t = self.base / (np.sqrt(3) * vn[branch[:, 1].real.astype(int)])
        lb = net._pd2ppc_lookups["branch"]
        l0, l1 = lb["line"]
        t0, t1 = lb["trafo"]
        self.lines = np.arange(l0, l1)
        ln = net.line
        self.line_rating = (ln.max_i_ka * ln.df * ln.parallel).values
        self.trafos = np.arange(t0, t1)
        tr = net.trafo
        self.i_hv_n = (tr.sn_mva / (np.sqrt(3) * tr.vn_hv_kv) * tr.parallel).values
        self.i_lv_n = (tr.sn_mva / (np.sqrt(3) * tr.vn_lv_kv) * tr.parallel).values
        self.load_bus = np.array([look[b] for b in net.load.bus.values])
        self.sgen_bus = np.array([look[b] for b in net.sgen.bus.values])
        self.vm_bus = np.array([look[b] for b in net.bus.index.values])

    def run(self, load_p, load_q, sgen_p, tol=1e-7):
        """Loads and PV in W/var, shape (elements, T). Returns (vm (buses, T) p.u. in net.bus
        order, line loading % (lines, T), trafo loading % (trafos, T))."""
        T = load_p.shape[1]
        s = np.zeros((self.nb, T), complex)
        np.add.at(s, self.load_bus, -(load_p + 1j * load_q) / (self.base * 1e6))
        np.add.at(s, self.sgen_bus, sgen_p / (self.base * 1e6))
        s = s[self.pq]
        v = np.repeat(self.w[:, None], T, axis=1)
        for _ in range(30):
            vn = self.w[:, None] + self.z @ np.conj(s / v)
            d = np.abs(vn - v).max()
            v = vn
            if d < tol:
                break
        full = np.empty((self.nb, T), complex)
        full[self.pq] = v
        full[self.slack] = self.vs[:, None]
        i_f = np.abs(self.yf @ full) * self.ibase_f[:, None]
        i_t = np.abs(self.yt @ full) * self.ibase_t[:, None]
        line = np.maximum(i_f[self.lines], i_t[self.lines]) / self.line_rating[:, None] * 100
        tr = np.maximum(i_f[self.trafos] / self.i_hv_n[:, None],
                        i_t[self.trafos] / self.i_lv_n[:, None]) * 100
        return np.abs(full[self.vm_bus]), line, tr
