"""EV fleet draws: which homes have an EV, and each car's battery, charger, sanctioned load and,
per day, arrival, departure, arrival SOC and the next trip's distance.

Every draw comes from one seeded numpy Generator, so all strategies see the same households and
the same cars. The distributions (documented with their sources in docs/grid.md, section 2):

- arrival at home: normal, mean 18:00, sd 1.5 h, clipped to 14:00..23:30; departure next morning:
  normal, mean 07:30, sd 1 h, clipped to 05:00..10:00 (home-charging connection/disconnection
  times of the UK "My Electric Avenue" trial, Quiros-Tortos et al., IEEE PES GM 2015, and the
  ElaadNL open data: plug-in peak 17-19 h, plug-out 7-8 h).
- daily distance: lognormal, median 30 km, sigma 0.6 (mean 36 km: MiD 2017, Germany, about 36-40
  km per car and day); energy 170 Wh/km (the firmware's trip.wh_per_km default).
- arrival SOC: the SOC the car left with, uniform 70..100 % (not every owner charges to full),
  minus the day's distance, clipped to 5..95 %.
- battery: 40 / 60 / 77 / 100 kWh with weights 0.25 / 0.40 / 0.25 / 0.10 (the 2023 European BEV
  mix: Leaf/e-208, ID.3/Model 3 SR, ID.4/Ioniq 5 LR, large SUVs).
- charger: 16 A 1-phase (3.7 kW) 0.30, 32 A 1-phase (7.4 kW) 0.50, 16 A 3-phase (11 kW) 0.20.
- sanctioned load: 5 / 7 / 10 kW with weights 0.3 / 0.4 / 0.3 (the firmware example's 5 kW and
  two larger connections); breaker limit 1.5 x that.
- the firmware's random start delay after a peak window: uniform 0..charger.start_delay_max_s
  (600 s) per home and day; the spread rule's per-session random draw: uniform 0..99.
"""
from dataclasses import dataclass

import numpy as np

BATTERY_KWH = (40, 60, 77, 100)
BATTERY_P = (0.25, 0.40, 0.25, 0.10)
CHARGER = ((16, 1), (32, 1), (16, 3))       # (max_a, phases)
CHARGER_P = (0.30, 0.50, 0.20)
SANCTIONED_W = (5000, 7000, 10000)
SANCTIONED_P = (0.3, 0.4, 0.3)
WH_PER_KM = 170
RESERVE_PCT = 10
EFFICIENCY = 0.9
START_DELAY_MAX_S = 600


@dataclass
class Fleet:
    home: np.ndarray        # index of the home (within the feeder's homes) that has this car
    cap_wh: np.ndarray      # battery capacity, Wh
    max_a: np.ndarray
    phases: np.ndarray
    sanctioned_w: np.ndarray
    arr: np.ndarray         # (cars, days) arrival, absolute minute
    dep: np.ndarray         # (cars, days) departure, absolute minute (next morning)
    soc0: np.ndarray        # (cars, days) arrival SOC %
    km_next: np.ndarray     # (cars, days) the next trip's distance, km
    delay_s: np.ndarray     # (cars, days) firmware start delay after the evening peak window
    rnd: np.ndarray         # (cars, days) spread rule's random draw 0..99

    @property
    def n(self):
        return len(self.home)


def draw(n_homes, share, days, seed):
    """EVs for `share` of `n_homes` homes over `days` nights (night d: arrive on day d, leave on
    day d + 1). Absolute minutes count from the study's first midnight."""
    rng = np.random.default_rng(seed)
    n = int(round(n_homes * share))
    home = np.sort(rng.choice(n_homes, size=n, replace=False))
    cap = np.array(BATTERY_KWH)[rng.choice(4, size=n, p=BATTERY_P)] * 1000
    ch = rng.choice(3, size=n, p=CHARGER_P)
    max_a = np.array([c[0] for c in CHARGER])[ch]
    phases = np.array([c[1] for c in CHARGER])[ch]
    sanc = np.array(SANCTIONED_W)[rng.choice(3, size=n, p=SANCTIONED_P)]
    d = np.arange(days)[None, :] * 1440
    arr = d + np.clip(rng.normal(18 * 60, 90, (n, days)), 14 * 60, 23 * 60 + 30).astype(int)
    dep = d + 1440 + np.clip(rng.normal(7.5 * 60, 60, (n, days)), 5 * 60, 10 * 60).astype(int)
    km = np.exp(rng.normal(np.log(30), 0.6, (n, days + 1)))
    left = rng.uniform(70, 100, (n, days))
    soc0 = np.clip(left - km[:, :days] * WH_PER_KM * 100 / cap[:, None], 5, 95).astype(int)
    delay = rng.uniform(0, START_DELAY_MAX_S, (n, days))
    rnd = rng.integers(0, 100, (n, days))
    return Fleet(home, cap, max_a, phases, sanc, arr, dep, soc0, km[:, 1:], delay, rnd)
