# Load and validate config.json. A bad config raises ValueError("<field>: <why>") and the firmware
# refuses to run on it (main.py shows the message on the OLED and the console).
import json

# One compact spec string instead of a dict of tuples (RAM): "path kind min max", kinds:
# i = int, n = number, b = bool, s = string (min/max = length). Missing optional groups get the
# defaults in DEFAULTS before checking.
_SPEC = """sanctioned_w i 100 200000
breaker_w i 100 200000
voltage_v i 90 400
tz_offset_min i -720 840
price.offpeak n 0 100000
price.peak n 0 100000
price.emergency n 0 100000
charger.addr i 1 247
charger.min_a i 6 6
charger.max_a i 6 80
charger.phases i 1 3
charger.restart_hold_s i 0 3600
charger.ramp_a_per_s i 1 80
charger.start_delay_max_s i 0 3600
charger.spread b 0 0
pzem.addr i 1 247
pzem.ev_addr i 0 247
battery.capacity_wh i 1000 300000
battery.efficiency n 0.5 1
battery.taper_soc_pct i 50 100
battery.taper_floor_pct i 1 100
trip.wh_per_km i 50 1000
trip.reserve_pct i 0 50
netpie.client_id s 0 64
netpie.token s 0 64
netpie.secret s 0 64
netpie.host s 1 64
netpie.port i 1 65535
netpie.alias s 1 32
wifi.ssid s 0 32
wifi.password s 0 64
ntp_host s 1 64"""

_DEFAULTS = {
    "charger": {"addr": 2, "min_a": 6, "max_a": 16, "phases": 1, "restart_hold_s": 60,
                "ramp_a_per_s": 2, "start_delay_max_s": 600,
                "spread": False},
    "pzem": {"addr": 1, "ev_addr": 0},
    "battery": {"taper_soc_pct": 100, "taper_floor_pct": 10},
    "trip": {"wh_per_km": 170, "reserve_pct": 10},
    "netpie": {"client_id": "", "token": "", "secret": "", "host": "mqtt.netpie.io",
               "port": 1883, "alias": "meter"},
    "wifi": {"ssid": "", "password": ""},
    "ntp_host": "pool.ntp.org",
    "loads": [],
    "weekend": ["sat", "sun"],
    "holidays": [],
}
_DAYS = "mon tue wed thu fri sat sun"


def _hhmm(text, field):
    # "HH:MM" -> minute of day (digits only: int() would also take " 7" and "+7")
    if len(text) != 5 or text[2] != ":" or not (text[:2] + text[3:]).isdigit():
        raise ValueError(field + ": want HH:MM")
    h = int(text[:2])
    m = int(text[3:])
    if not (0 <= h < 24 and 0 <= m < 60):
        raise ValueError(field + ": want HH:MM 00:00-23:59")
    return h * 60 + m


def _windows(peak, name):
    # ["HH:MM-HH:MM", ...] -> (start0, end0, ...) local minutes of the day
    if not isinstance(peak, list) or len(peak) > 8:
        raise ValueError(name + ": want a list of up to 8 \"HH:MM-HH:MM\" windows")
    win = []
    for i, w in enumerate(peak):
        f = "%s[%d]" % (name, i)
        if not isinstance(w, str) or len(w) != 11 or w[5] != "-":
            raise ValueError(f + ": want \"HH:MM-HH:MM\"")
        s = _hhmm(w[:5], f)
        e = _hhmm(w[6:], f)
        if s == e:
            raise ValueError(f + ": start equals end")
        win.append(s)
        win.append(e)
    return tuple(win)


def _date(text, field):
    # "YYYY-MM-DD" (2000-2099) -> days since 2000-01-01, the meter's epoch
    try:
        if len(text) != 10 or text[4] != "-" or text[7] != "-" or not (
                text[:4] + text[5:7] + text[8:]).isdigit():
            raise ValueError
        y = int(text[:4])
        m = int(text[5:7])
        d = int(text[8:])
    except (ValueError, TypeError):
        raise ValueError(field + ": want \"YYYY-MM-DD\"")
    leap = y % 4 == 0 and (y % 100 or y % 400 == 0)
    if not (2000 <= y <= 2099 and 1 <= m <= 12 and
            1 <= d <= (31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)[m - 1]):
        raise ValueError(field + ": want a real date 2000-01-01..2099-12-31")
    # days from the civil date (March-based years: the leap day falls at the end)
    y -= m <= 2
    doy = (153 * (m - 3 if m > 2 else m + 9) + 2) // 5 + d - 1
    return y * 365 + y // 4 - y // 100 + y // 400 + doy - 730425


def validate(cfg):
    """Check a parsed config dict in place, fill defaults, add derived fields; return it.
    The calendar's strings are replaced by the derived fields: validate a dict once."""
    if not isinstance(cfg, dict):
        raise ValueError("config: want a JSON object")
    for k in _DEFAULTS:
        d = _DEFAULTS[k]
        if k not in cfg:
            cfg[k] = d.copy() if isinstance(d, (dict, list)) else d
        elif isinstance(d, dict) and isinstance(cfg[k], dict):
            for kk in d:
                cfg[k].setdefault(kk, d[kk])
    for line in _SPEC.split("\n"):
        path, kind, lo, hi = line.split()
        node = cfg
        keys = path.split(".")
        for k in keys[:-1]:
            node = node.get(k) if isinstance(node, dict) else None
        if not isinstance(node, dict) or keys[-1] not in node:
            raise ValueError(path + ": missing")
        v = node[keys[-1]]
        if kind == "s":
            ok = isinstance(v, str) and int(lo) <= len(v) <= int(hi)
            want = "a string of %s-%s chars" % (lo, hi)
        elif kind == "b":
            ok = isinstance(v, bool)
            want = "true or false"
        else:
            num = (int,) if kind == "i" else (int, float)
            ok = isinstance(v, num) and not isinstance(v, bool) and float(lo) <= v <= float(hi)
            want = "%s %s..%s" % ("an integer" if kind == "i" else "a number", lo, hi)
        if not ok:
            raise ValueError(path + ": want " + want)
    a = cfg["pzem"]["ev_addr"]
    if a and a in (cfg["pzem"]["addr"], cfg["charger"]["addr"]):
        raise ValueError("pzem.ev_addr: must differ from pzem.addr and charger.addr")
    if cfg["pzem"]["addr"] == cfg["charger"]["addr"]:
        raise ValueError("pzem.addr: must differ from charger.addr")
    if cfg["breaker_w"] < cfg["sanctioned_w"]:
        raise ValueError("breaker_w: must be >= sanctioned_w")
    # the tariff calendar: `peak` on weekdays (and every day without `peak_weekend`),
    # `peak_weekend` on the weekend days and on holidays
    cfg["_win"] = _windows(cfg.get("peak"), "peak")
    cfg["_win_we"] = _windows(cfg["peak_weekend"], "peak_weekend") if "peak_weekend" in cfg \
        else cfg["_win"]
    wk = cfg["weekend"]
    if not isinstance(wk, list) or len(wk) > 7:
        raise ValueError("weekend: want a list of day names mon..sun")
    m = 0
    for d in wk:
        i = _DAYS.find(d) if isinstance(d, str) and len(d) == 3 else -1
        if i < 0 or i % 4:      # a whole name, not "on " or "n t" out of _DAYS
            raise ValueError("weekend: want a list of day names mon..sun")
        m |= 1 << i // 4
    cfg["_wkend"] = m
    hol = cfg["holidays"]
    if not isinstance(hol, list) or len(hol) > 32:
        raise ValueError("holidays: want a list of up to 32 \"YYYY-MM-DD\" dates")
    cfg["_hol"] = tuple(_date(d, "holidays[%d]" % i) for i, d in enumerate(hol))
    # the meter keeps only the derived calendar: the user's strings (up to 48 of them, ~1.5 KB
    # on the board) would sit in the heap for good
    for k in ("peak", "peak_weekend", "weekend", "holidays"):
        cfg.pop(k, None)
    loads = cfg["loads"]
    if not isinstance(loads, list) or len(loads) > 8:
        raise ValueError("loads: want a list of up to 8 loads")
    names = []
    pins = []
    for i, ld in enumerate(loads):
        f = "loads[%d]" % i
        if not isinstance(ld, dict):
            raise ValueError(f + ": want an object")
        n = ld.get("name")
        if not isinstance(n, str) or not 0 < len(n) <= 16 or n in names or "/" in n:
            raise ValueError(f + ".name: want a unique name of 1-16 chars without '/'")
        names.append(n)
        p = ld.get("pin")
        if not isinstance(p, int) or isinstance(p, bool) or p not in (12, 14, 16) or p in pins:
            # 13/15 are the bus, 4/5 the OLED, 0 the safe-mode button, 2 the LED
            raise ValueError(f + ".pin: want a free, unused GPIO: 12, 14 or 16")
        pins.append(p)
        w = ld.get("rated_w")
        if not isinstance(w, int) or isinstance(w, bool) or not 0 <= w <= 20000:
            raise ValueError(f + ".rated_w: want an integer 0..20000")
        if not isinstance(ld.get("critical"), bool):
            raise ValueError(f + ".critical: want true or false")
    # derived, used by the scheduler and meter (underscore: not user fields)
    cfg["_eff_pct"] = int(cfg["battery"]["efficiency"] * 100 + 0.5)
    m = 0
    for i, ld in enumerate(loads):
        if not ld["critical"]:
            m |= 1 << i
    cfg["_noncrit"] = m
    return cfg


def load(path):
    try:
        with open(path) as f:
            cfg = json.load(f)
    except OSError:
        raise ValueError("config: cannot read " + path)
    except ValueError:
        raise ValueError("config: not valid JSON")
    return validate(cfg)
